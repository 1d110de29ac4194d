"""Accuracy metrics and their per-sample functions."""

from __future__ import annotations

from typing import Any

import torch

from ktorch import config
from ktorch.losses.loss import squeeze_or_expand_to_same_rank, to_tensor
from ktorch.metrics.reduction_metrics import MeanMetricWrapper
from ktorch.utils.dtypes import torch_dtype


def _floatx() -> torch.dtype:
    return torch_dtype(config.floatx())


def accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where `y_true == y_pred`, else 0.0."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, y_pred.dtype, y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).to(_floatx())


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> torch.Tensor:
    """1.0 where `y_true` equals `y_pred > threshold`, else 0.0.

    Args:
        y_true: 0/1 labels.
        y_pred: predicted probabilities (or scores).
        threshold: the decision threshold.

    Returns:
        The per-entry matches as floats.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, None, y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = (y_pred > threshold).to(y_true.dtype)
    return (y_true == y_pred).to(_floatx())


def categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where the argmax of one-hot `y_true` equals the argmax of `y_pred`, else 0.0."""
    y_pred = to_tensor(y_pred)
    y_true = torch.argmax(to_tensor(y_true, None, y_pred.device), dim=-1)
    y_true = y_true.to(y_pred.dtype)
    original_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
        reshape = True
    matches = (y_true == torch.argmax(y_pred, dim=-1).to(y_true.dtype)).to(_floatx())
    if reshape:
        matches = matches.reshape(original_shape)
    return matches


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where integer `y_true` equals the argmax of `y_pred`, else 0.0."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, y_pred.dtype, y_pred.device)
    original_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
        reshape = True
    matches = (y_true == torch.argmax(y_pred, dim=-1).to(y_true.dtype)).to(_floatx())
    if reshape:
        matches = matches.reshape(original_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches.squeeze(-1)
    return matches


def _in_top_k(targets: torch.Tensor, predictions: torch.Tensor, k: int) -> torch.Tensor:
    # A target is in the top k when its score reaches the k-th largest (ties count as in).
    k = min(k, predictions.shape[-1])
    kth = torch.topk(predictions, k, dim=-1).values[:, -1]
    target_scores = torch.gather(predictions, 1, targets.long().unsqueeze(1)).squeeze(1)
    return target_scores >= kth


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> torch.Tensor:
    """1.0 where the class of one-hot `y_true` is among the `k` highest `y_pred`, else 0.0."""
    y_pred = to_tensor(y_pred)
    y_true = torch.argmax(to_tensor(y_true, None, y_pred.device), dim=-1)
    original_shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape = y_true.ndim > 1
    if reshape:
        y_true = y_true.reshape(-1)
    matches = _in_top_k(y_true, y_pred, k).to(_floatx())
    if reshape:
        matches = matches.reshape(original_shape)
    return matches


def sparse_top_k_categorical_accuracy(
    y_true: Any, y_pred: Any, k: int = 5, from_sorted_ids: bool = False
) -> torch.Tensor:
    """1.0 where integer `y_true` is among the `k` highest `y_pred`, else 0.0.

    Args:
        y_true: integer class ids.
        y_pred: scores for all classes, or (with `from_sorted_ids=True`) the ids of the
            top classes sorted from highest to lowest score.
        k: how many top entries count.
        from_sorted_ids: whether `y_pred` holds sorted class ids.

    Returns:
        The matches as floats, shaped like `y_true`.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, y_pred.dtype if from_sorted_ids else torch.int64, y_pred.device)
    original_shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    reshape = y_true.ndim > 1
    if reshape:
        y_true = y_true.reshape(-1)
    if from_sorted_ids:
        matches = torch.any(y_true.unsqueeze(1) == y_pred[:, :k], dim=1)
    else:
        matches = _in_top_k(y_true, y_pred, k)
    matches = matches.to(_floatx())
    if reshape:
        matches = matches.reshape(original_shape)
    return matches


class Accuracy(MeanMetricWrapper):
    """Calculates how often predictions equal labels.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.

    Example:
        ```python
        m = Accuracy()
        m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
        m.result()  # tensor(0.7500)
        ```
    """

    _direction = "up"

    def __init__(self, name: str = "accuracy", dtype: Any = None):
        super().__init__(fn=accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """Calculates how often thresholded predictions match binary labels.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
        threshold: predictions above it count as 1.

    Example:
        ```python
        m = BinaryAccuracy()
        m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
        m.result()  # tensor(0.7500)
        ```
    """

    _direction = "up"

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5):
        super().__init__(fn=binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """Calculates how often the argmax of predictions matches one-hot labels.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "up"

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None):
        super().__init__(fn=categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Calculates how often the argmax of predictions matches integer labels.

    Args:
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "up"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None):
        super().__init__(fn=sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """Computes how often one-hot targets are in the top `k` predictions.

    Args:
        k: number of top elements to look at.
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "up"

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(fn=top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """Computes how often integer targets are in the top `k` predictions.

    Args:
        k: number of top elements to look at.
        name: name of the metric instance.
        dtype: dtype of the metric result.
        from_sorted_ids: whether `y_pred` holds class ids sorted by decreasing score instead
            of the scores of all classes.
    """

    _direction = "up"

    def __init__(
        self,
        k: int = 5,
        name: str = "sparse_top_k_categorical_accuracy",
        dtype: Any = None,
        from_sorted_ids: bool = False,
    ):
        super().__init__(
            fn=sparse_top_k_categorical_accuracy,
            name=name,
            dtype=dtype,
            k=k,
            from_sorted_ids=from_sorted_ids,
        )
        self.k = k
        self.from_sorted_ids = from_sorted_ids

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "dtype": self.dtype, "k": self.k}
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config
