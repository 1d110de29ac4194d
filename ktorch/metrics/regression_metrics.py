"""Regression metrics: errors, `CosineSimilarity`, `LogCoshError`, `R2Score`."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ktorch.losses.loss import squeeze_or_expand_to_same_rank, to_tensor
from ktorch.losses.losses import cosine_similarity as cosine_similarity_loss
from ktorch.losses.losses import (
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from ktorch.metrics.metric import Metric
from ktorch.metrics.reduction_metrics import Mean, MeanMetricWrapper
from ktorch.utils.dtypes import torch_dtype


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """Cosine similarity of the L2-normalized labels and predictions along `axis`.

    The loss `cosine_similarity` is its negative; as a metric, 1 means aligned vectors.

    Args:
        y_true: labels.
        y_pred: predictions.
        axis: the axis along which the similarity is computed.

    Returns:
        The per-sample similarity, in `[-1, 1]`.
    """
    return -cosine_similarity_loss(y_true, y_pred, axis=axis)


class MeanSquaredError(MeanMetricWrapper):
    """Computes the mean squared error `mean(square(y_true - y_pred))`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(fn=mean_squared_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsoluteError(MeanMetricWrapper):
    """Computes the mean absolute error `mean(abs(y_true - y_pred))`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(fn=mean_absolute_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Computes `100 * mean(abs((y_true - y_pred) / y_true))`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(fn=mean_absolute_percentage_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Computes `mean(square(log(y_true + 1) - log(y_pred + 1)))`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(fn=mean_squared_logarithmic_error, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class RootMeanSquaredError(Mean):
    """Computes `sqrt(mean(square(y_pred - y_true)))`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the squared errors."""
        device = self._place(y_pred, y_true, sample_weight)
        dtype = torch_dtype(self.dtype)
        y_true = to_tensor(y_true, dtype, device)
        y_pred = to_tensor(y_pred, dtype, device)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        super().update_state(torch.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self) -> torch.Tensor:
        return torch.sqrt(super().result())

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class CosineSimilarity(MeanMetricWrapper):
    """Computes the mean cosine similarity between labels and predictions.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
        axis: the axis along which the similarity is computed.
    """

    _direction = "up"

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1):
        super().__init__(fn=cosine_similarity, name=name, dtype=dtype, axis=axis)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class LogCoshError(MeanMetricWrapper):
    """Computes the mean of `log(cosh(y_pred - y_true))`.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "down"

    def __init__(self, name: str = "logcosh", dtype: Any = None):
        super().__init__(fn=log_cosh, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class R2Score(Metric):
    """Computes the R2 score (coefficient of determination), optionally adjusted.

    `R2 = 1 - sum((y_true - y_pred) ** 2) / sum((y_true - mean(y_true)) ** 2)`, per output
    column, then aggregated. Inputs are `(batch_size, output_dim)`.

    Args:
        class_aggregation: `None` (one score per column), `"uniform_average"` or
            `"variance_weighted_average"`.
        num_regressors: number of independent regressors for the adjusted R2 score; 0 gives
            the standard score.
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "up"

    _AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in self._AGGREGATIONS:
            raise ValueError(
                "Invalid value for argument class_aggregation. Expected one of "
                f"{self._AGGREGATIONS}. Received: class_aggregation={class_aggregation!r}"
            )
        if num_regressors < 0:
            raise ValueError(
                "Invalid value for argument num_regressors. Expected a value >= 0. "
                f"Received: num_regressors={num_regressors}"
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = self.add_variable(shape=(), name="num_samples")
        self._built = False

    def _build(self, num_classes: int) -> None:
        self.squared_sum = self.add_variable(shape=(num_classes,), name="squared_sum")
        self.sum = self.add_variable(shape=(num_classes,), name="sum")
        self.total_mse = self.add_variable(shape=(num_classes,), name="residual")
        self.count = self.add_variable(shape=(num_classes,), name="count")
        self._built = True

    def _build_like(self, other: Metric) -> None:
        if self._built:
            super()._build_like(other)
        self._build(other.sum.shape[0])

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the sums needed for the score."""
        device = self._place(y_pred, y_true, sample_weight)
        dtype = torch_dtype(self.dtype)
        y_true = to_tensor(y_true, dtype, device)
        y_pred = to_tensor(y_pred, dtype, device)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                "R2Score expects 2D inputs with shape (batch_size, output_dim). Received input "
                f"shapes: y_pred.shape={tuple(y_pred.shape)} and "
                f"y_true.shape={tuple(y_true.shape)}."
            )
        if not self._built:
            self._build(y_pred.shape[-1])
        weight = to_tensor(1.0 if sample_weight is None else sample_weight, dtype, device)
        if weight.ndim == 1:
            weight = weight.unsqueeze(1)
        weight = torch.broadcast_to(weight, y_true.shape)
        weighted_y_true = y_true * weight
        self.sum.add_(weighted_y_true.sum(dim=0))
        self.squared_sum.add_((y_true * weighted_y_true).sum(dim=0))
        self.total_mse.add_((torch.square(y_true - y_pred) * weight).sum(dim=0))
        self.count.add_(weight.sum(dim=0))
        self.num_samples.add_(y_true.numel())

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=torch_dtype(self.dtype), device=self._device)
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        raw_scores = 1 - self.total_mse / total
        raw_scores = torch.where(torch.isinf(raw_scores), torch.zeros_like(raw_scores), raw_scores)
        if self.class_aggregation == "uniform_average":
            score = torch.mean(raw_scores)
        elif self.class_aggregation == "variance_weighted_average":
            score = torch.sum(total * raw_scores) / torch.sum(total)
        else:
            score = raw_scores
        if self.num_regressors == 0:
            return score
        # The adjusted score needs the sample count on the host (only in `result`).
        n = float(self.num_samples)
        if self.num_regressors > n - 1:
            warnings.warn(
                "More independent predictors than datapoints in adjusted R2 score. Falling "
                "back to standard R2 score.",
                stacklevel=2,
            )
            return score
        if self.num_regressors == n - 1:
            warnings.warn(
                "Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                stacklevel=2,
            )
            return score
        return 1.0 - (1.0 - score) * (n - 1.0) / (n - self.num_regressors - 1.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
