"""Hinge metrics: `Hinge`, `SquaredHinge`, `CategoricalHinge`."""

from __future__ import annotations

from typing import Any

from ktorch.losses.losses import categorical_hinge, hinge, squared_hinge
from ktorch.metrics.reduction_metrics import MeanMetricWrapper


class Hinge(MeanMetricWrapper):
    """Computes the hinge metric; 0/1 labels are converted to -1/1.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "hinge", dtype: Any = None):
        super().__init__(fn=hinge, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class SquaredHinge(MeanMetricWrapper):
    """Computes the squared hinge metric; 0/1 labels are converted to -1/1.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "squared_hinge", dtype: Any = None):
        super().__init__(fn=squared_hinge, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class CategoricalHinge(MeanMetricWrapper):
    """Computes the categorical hinge metric between one-hot labels and predictions.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(fn=categorical_hinge, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}
