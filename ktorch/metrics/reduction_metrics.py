"""`Sum`, `Mean` and `MeanMetricWrapper`: weighted reductions of per-sample values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ktorch.losses.loss import apply_mask, squeeze_or_expand_to_same_rank, to_tensor
from ktorch.metrics.metric import Metric, divide_no_nan
from ktorch.saving import serialization_lib
from ktorch.utils.dtypes import torch_dtype


def reduce_to_samplewise_values(
    values: Any, sample_weight: Any, reduce_fn: Callable, dtype: torch.dtype, device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weights `values` and reduces them to one value per sample, as Keras does.

    Returns:
        `(values, sample_weight)` where `values` has rank <= 1 and `sample_weight` matches it
        (or is None).
    """
    mask = getattr(values, "_keras_mask", None)
    values = to_tensor(values, dtype, device)
    if sample_weight is not None:
        sample_weight = to_tensor(sample_weight, dtype, device)
        if mask is not None:
            sample_weight = apply_mask(sample_weight, mask, dtype, reduction="sum")
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim = sample_weight.ndim
        if values.ndim > weight_ndim:
            values = reduce_fn(values, dim=tuple(range(weight_ndim, values.ndim)))
        sample_weight = torch.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = reduce_fn(sample_weight, dim=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, dim=tuple(range(1, values.ndim)))
    return values, sample_weight


class Sum(Metric):
    """Computes the (weighted) sum of the given values.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.

    Example:
        ```python
        m = Sum()
        m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
        m.result()  # tensor(4.)
        ```
    """

    def __init__(self, name: str = "sum", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), name="total")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds the (weighted) sum of `values`."""
        device = self._place(values, sample_weight)
        values, _ = reduce_to_samplewise_values(
            values, sample_weight, torch.sum, torch_dtype(self.dtype), device
        )
        self.total.add_(values.sum())

    def result(self) -> torch.Tensor:
        return self.total.clone()


class Mean(Metric):
    """Computes the (weighted) mean of the given values.

    The state is `total` and `count`; the result is `total / count` (0 before any update).

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.

    Example:
        ```python
        m = Mean()
        m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
        m.result()  # tensor(2.)
        ```
    """

    def __init__(self, name: str = "mean", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), name="total")
        self.count = self.add_variable(shape=(), name="count")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Accumulates the (weighted) values and their count (or total weight)."""
        device = self._place(values, sample_weight)
        values, sample_weight = reduce_to_samplewise_values(
            values, sample_weight, torch.mean, torch_dtype(self.dtype), device
        )
        self.total.add_(values.sum())
        if sample_weight is not None:
            self.count.add_(sample_weight.sum())
        else:
            # The count comes from the static shape: no device-to-host read.
            self.count.add_(values.shape[0] if values.ndim >= 1 else 1)

    def result(self) -> torch.Tensor:
        return divide_no_nan(self.total, self.count)


class MeanMetricWrapper(Mean):
    """Wraps a function `fn(y_true, y_pred, **kwargs)` returning per-sample values as a `Mean`.

    Args:
        fn: the metric function.
        name: name of the metric instance.
        dtype: dtype of the metric result.
        **kwargs: keyword arguments passed on to `fn`.

    Example:
        ```python
        def squared_error(y_true, y_pred):
            return (y_true - y_pred) ** 2

        metric = MeanMetricWrapper(fn=squared_error, name="squared_error")
        ```
    """

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Calls `fn(y_true, y_pred)` and accumulates the mean of its values."""
        mask = getattr(y_pred, "_keras_mask", None)
        device = self._place(y_pred, y_true, sample_weight)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        if mask is not None:
            sample_weight = apply_mask(
                None if sample_weight is None else to_tensor(sample_weight, None, device),
                mask,
                torch_dtype(self.dtype),
                reduction="sum",
            )
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["fn"] = serialization_lib.serialize_keras_object(self._fn)
        config.update(serialization_lib.serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MeanMetricWrapper:
        config = dict(config)
        if "fn" in config:
            from ktorch.metrics import ALL_FUNCTIONS_DICT

            config["fn"] = serialization_lib.deserialize_keras_object(
                config["fn"], module_objects=ALL_FUNCTIONS_DICT, printable_module_name="metric"
            )
        return cls(**config)
