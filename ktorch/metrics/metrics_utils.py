"""Confusion-matrix accumulation shared by `Precision`, `Recall`, `AUC` and the counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ktorch import config
from ktorch.losses.loss import squeeze_or_expand_to_same_rank, to_tensor

NEG_INF = -1e10

TRUE_POSITIVES = "tp"
FALSE_POSITIVES = "fp"
TRUE_NEGATIVES = "tn"
FALSE_NEGATIVES = "fn"
_CONDITIONS = (TRUE_POSITIVES, FALSE_POSITIVES, TRUE_NEGATIVES, FALSE_NEGATIVES)


def parse_init_thresholds(thresholds: Any, default_threshold: float = 0.5) -> list[float]:
    """Returns the thresholds as a list, checking that given ones lie in `[0, 1]`."""
    if thresholds is None:
        return [default_threshold]
    values = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
    invalid = [t for t in values if t is None or t < 0 or t > 1]
    if invalid:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    return values


def is_evenly_distributed_thresholds(thresholds: Sequence[float]) -> bool:
    """Whether the thresholds are `i / (n - 1)` for `i` in `range(n)` (n >= 3)."""
    num_thresholds = len(thresholds)
    if num_thresholds < 3:
        return False
    even = np.arange(num_thresholds, dtype=np.float32) / (num_thresholds - 1)
    return bool(np.allclose(thresholds, even, atol=config.epsilon()))


def _filter_top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keeps the top `k` values of the last axis of `x` and sets the others to `NEG_INF`."""
    top_k_idx = torch.topk(x, k, dim=-1).indices
    mask = torch.zeros_like(x).scatter_(-1, top_k_idx, 1.0)
    return x * mask + NEG_INF * (1 - mask)


def _segment_sum(data: torch.Tensor, ids: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Sums `data` (`(..., n)`) into `num_segments` buckets along the last axis; out-of-range
    ids are dropped."""
    ids = torch.where((ids >= 0) & (ids < num_segments), ids, num_segments)
    out = torch.zeros((*data.shape[:-1], num_segments + 1), dtype=data.dtype, device=data.device)
    out.scatter_add_(-1, ids, data)
    return out[..., :num_segments]


def _reverse_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.flip(torch.cumsum(torch.flip(x, (dim,)), dim=dim), (dim,))


def _update_optimized(
    variables: dict[str, torch.Tensor],
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    num_thresholds: int,
    multi_label: bool,
    sample_weights: torch.Tensor | None,
    label_weights: torch.Tensor | None,
    thresholds_with_epsilon: bool,
) -> None:
    """Bucketing update for evenly spaced thresholds: O(T + N) instead of O(T * N)."""
    weights = torch.ones((), dtype=y_pred.dtype, device=y_pred.device)
    if sample_weights is not None:
        sample_weights = torch.broadcast_to(sample_weights.to(y_pred.dtype), y_pred.shape)
        weights = sample_weights if multi_label else sample_weights.reshape(-1)
    if label_weights is not None:
        label_weights = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape)
        weights = weights * (label_weights if multi_label else label_weights.reshape(-1))
    y_pred = torch.clamp(y_pred, 0.0, 1.0)
    y_true = y_true.bool().to(y_pred.dtype)
    if not multi_label:
        y_true = y_true.reshape(-1)
        y_pred = y_pred.reshape(-1)
    true_labels = y_true * weights
    false_labels = (1.0 - y_true) * weights
    # A prediction equal to a threshold is not above it: bucket `ceil(p * (T - 1)) - 1`.
    buckets = torch.ceil(y_pred * (num_thresholds - 1)) - 1
    if thresholds_with_epsilon:
        buckets = torch.relu(buckets)
    buckets = buckets.long()
    if multi_label:
        true_labels, false_labels, buckets = true_labels.T, false_labels.T, buckets.T
        tp = _reverse_cumsum(_segment_sum(true_labels, buckets, num_thresholds), 1).T
        fp = _reverse_cumsum(_segment_sum(false_labels, buckets, num_thresholds), 1).T
        total_true, total_false = true_labels.sum(dim=1), false_labels.sum(dim=1)
    else:
        tp = _reverse_cumsum(_segment_sum(true_labels, buckets, num_thresholds), 0)
        fp = _reverse_cumsum(_segment_sum(false_labels, buckets, num_thresholds), 0)
        total_true, total_false = true_labels.sum(), false_labels.sum()
    if TRUE_POSITIVES in variables:
        variables[TRUE_POSITIVES].add_(tp)
    if FALSE_POSITIVES in variables:
        variables[FALSE_POSITIVES].add_(fp)
    if TRUE_NEGATIVES in variables:
        variables[TRUE_NEGATIVES].add_(total_false - fp)
    if FALSE_NEGATIVES in variables:
        variables[FALSE_NEGATIVES].add_(total_true - tp)


def update_confusion_matrix_variables(
    variables: dict[str, torch.Tensor],
    y_true: Any,
    y_pred: Any,
    thresholds: Sequence[float],
    top_k: int | None = None,
    class_id: int | None = None,
    sample_weight: Any = None,
    multi_label: bool = False,
    label_weights: torch.Tensor | None = None,
    thresholds_distributed_evenly: bool = False,
    thresholds_tensor: torch.Tensor | None = None,
) -> None:
    """Adds the weighted true/false positive/negative counts at each threshold.

    An entry counts as predicted positive when `y_pred > threshold`.

    Args:
        variables: dict from `"tp"`, `"fp"`, `"tn"`, `"fn"` to the tensors to update in place.
        y_true: labels, cast to bool.
        y_pred: predictions in `[0, 1]`.
        thresholds: the thresholds (Python floats).
        top_k: keep only the top `k` predictions of each sample as candidates.
        class_id: restrict to this class (last axis index).
        sample_weight: weights broadcastable to `y_true`.
        multi_label: keep the last axis as separate labels (state of shape `(T, L)`).
        label_weights: per-label weights when not `multi_label`.
        thresholds_distributed_evenly: use the bucketing update.
        thresholds_tensor: `thresholds` as a tensor on the right device (cached by callers).
    """
    if multi_label and label_weights is not None:
        raise ValueError(
            "`label_weights` for multilabel data should be handled outside of "
            "`update_confusion_matrix_variables` when `multi_label` is True."
        )
    invalid = [key for key in variables if key not in _CONDITIONS]
    if not variables or invalid:
        raise ValueError(
            f"Invalid confusion matrix keys. Expected some of {_CONDITIONS}. "
            f"Received: {list(variables)}"
        )
    reference = next(iter(variables.values()))
    dtype, device = reference.dtype, reference.device
    y_true = to_tensor(y_true, dtype, device)
    y_pred = to_tensor(y_pred, dtype, device)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = to_tensor(sample_weight, dtype, device).unsqueeze(-1)
        _, sample_weight = squeeze_or_expand_to_same_rank(
            y_true, sample_weight, expand_rank_1=False
        )
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(
                "When class_id is provided, y_pred must be a 2D array with shape "
                f"(num_samples, num_classes). Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if thresholds_distributed_evenly:
        with_epsilon = thresholds[0] < 0.0 or thresholds[-1] > 1.0
        _update_optimized(
            variables,
            y_true,
            y_pred,
            len(thresholds),
            multi_label,
            sample_weight,
            label_weights,
            with_epsilon,
        )
        return
    if thresholds_tensor is None:
        thresholds_tensor = torch.tensor(list(thresholds), dtype=dtype, device=device)
    if multi_label:
        predictions = y_pred.unsqueeze(0)
        labels = y_true.bool().unsqueeze(0)
        thresh = thresholds_tensor.reshape(-1, 1, 1)
    else:
        predictions = y_pred.reshape(1, -1)
        labels = y_true.bool().reshape(1, -1)
        thresh = thresholds_tensor.reshape(-1, 1)
    pred_is_pos = predictions > thresh
    label_is_pos = labels
    weights = None
    if sample_weight is not None:
        weights = torch.broadcast_to(sample_weight, y_pred.shape).reshape(predictions.shape)
    if label_weights is not None and not multi_label:
        expanded = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape)
        expanded = expanded.reshape(predictions.shape)
        weights = expanded if weights is None else weights * expanded

    def weighted_add(label: torch.Tensor, pred: torch.Tensor, target: torch.Tensor) -> None:
        both = (label & pred).to(dtype)
        if weights is not None:
            both = both * weights
        target.add_(both.sum(dim=1))

    pred_is_neg = ~pred_is_pos
    label_is_neg = ~label_is_pos
    pairs = {
        TRUE_POSITIVES: (label_is_pos, pred_is_pos),
        FALSE_POSITIVES: (label_is_neg, pred_is_pos),
        TRUE_NEGATIVES: (label_is_neg, pred_is_neg),
        FALSE_NEGATIVES: (label_is_pos, pred_is_neg),
    }
    for key, target in variables.items():
        weighted_add(*pairs[key], target)
