"""Probabilistic metrics: crossentropies, `KLDivergence`, `Poisson`."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.losses.loss import squeeze_or_expand_to_same_rank, to_tensor
from ktorch.losses.losses import binary_crossentropy as binary_crossentropy_loss
from ktorch.losses.losses import (
    categorical_crossentropy,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)
from ktorch.metrics.reduction_metrics import MeanMetricWrapper


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary crossentropy averaged over `axis`, as `ktorch.losses.binary_crossentropy`.

    Unlike the loss function, it also takes labels one axis short of `y_pred` (`(batch,)`
    against `(batch, 1)`): the ranks are aligned first.

    Args:
        y_true: 0/1 labels.
        y_pred: probabilities, or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in `[0, 1]`; labels become `y * (1 - s) + 0.5 * s`.
        axis: the axis to average over.

    Returns:
        The per-sample crossentropy.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return binary_crossentropy_loss(
        y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis
    )


class KLDivergence(MeanMetricWrapper):
    """Computes the Kullback-Leibler divergence `y_true * log(y_true / y_pred)`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    def __init__(self, name: str = "kl_divergence", dtype: Any = None):
        super().__init__(fn=kl_divergence, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class Poisson(MeanMetricWrapper):
    """Computes the Poisson metric `y_pred - y_true * log(y_pred)`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    def __init__(self, name: str = "poisson", dtype: Any = None):
        super().__init__(fn=poisson, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class BinaryCrossentropy(MeanMetricWrapper):
    """Computes the crossentropy between binary labels and predictions.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: in `[0, 1]`; `0.2` uses 0.1 for label 0 and 0.9 for label 1.
    """

    _direction = "down"

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
    ):
        super().__init__(
            fn=binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class CategoricalCrossentropy(MeanMetricWrapper):
    """Computes the crossentropy between one-hot labels and predictions.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: in `[0, 1]`; labels become `y * (1 - s) + s / num_classes`.
        axis: the class axis.
    """

    _direction = "down"

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
        axis: int = -1,
    ):
        super().__init__(
            fn=categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Computes the crossentropy between integer labels and predictions.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
        from_logits: whether `y_pred` holds logits rather than probabilities.
        ignore_class: a label to leave out of the metric, or None.
        axis: the class axis.
    """

    _direction = "down"

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ):
        super().__init__(
            fn=sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "axis": self.axis,
        }
