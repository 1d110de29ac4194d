"""Per-sample metric functions (`keras.metrics.mean_squared_error`, ...).

Each takes `(y_true, y_pred)` and returns one value per sample (the last axis reduced), with
Keras 3's formulas. They accept tensors, NumPy arrays or lists.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ktorch import config
from ktorch.metrics.metric import convert_to_tensor, squeeze_or_expand_to_same_rank


def _pair(y_true: Any, y_pred: Any, squeeze: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    y_pred = convert_to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(getattr(torch, config.floatx()))
    y_true = convert_to_tensor(y_true, y_pred.dtype, y_pred.device)
    if squeeze:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return y_true, y_pred


def mean_squared_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Mean squared error over the last axis: `mean(square(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Mean absolute error over the last axis: `mean(abs(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`100 * mean(abs((y_true - y_pred) / max(abs(y_true), epsilon)), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    diff = torch.abs((y_true - y_pred) / torch.clamp(torch.abs(y_true), min=config.epsilon()))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    eps = config.epsilon()
    first_log = torch.log(torch.clamp(y_pred, min=eps) + 1.0)
    second_log = torch.log(torch.clamp(y_true, min=eps) + 1.0)
    return torch.mean(torch.square(first_log - second_log), dim=-1)


def _binary_labels_to_hinge(y_true: torch.Tensor) -> torch.Tensor:
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    # `where` on the 0-d flag instead of a Python `if`: no device-to-host read.
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`mean(maximum(1 - y_true * y_pred, 0), axis=-1)`; 0/1 labels become -1/1."""
    y_true, y_pred = _pair(y_true, y_pred, squeeze=False)
    y_true = _binary_labels_to_hinge(y_true)
    return torch.mean(torch.clamp(1.0 - y_true * y_pred, min=0.0), dim=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)`; 0/1 labels become -1/1."""
    y_true, y_pred = _pair(y_true, y_pred, squeeze=False)
    y_true = _binary_labels_to_hinge(y_true)
    return torch.mean(torch.square(torch.clamp(1.0 - y_true * y_pred, min=0.0)), dim=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, squeeze=False)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp(neg - pos + 1.0, min=0.0)


def kl_divergence(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`sum(y_true * log(y_true / y_pred), axis=-1)`, both clipped to `[epsilon, 1]`."""
    y_true, y_pred = _pair(y_true, y_pred, squeeze=False)
    y_true = torch.clamp(y_true, config.epsilon(), 1.0)
    y_pred = torch.clamp(y_pred, config.epsilon(), 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred, squeeze=False)
    return torch.mean(y_pred - y_true * torch.log(y_pred + config.epsilon()), dim=-1)


def log_cosh(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`mean(log(cosh(y_pred - y_true)), axis=-1)`, computed stably."""
    y_true, y_pred = _pair(y_true, y_pred)
    x = y_pred - y_true
    return torch.mean(x + F.softplus(-2.0 * x) - math.log(2.0), dim=-1)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """Cosine similarity of the L2-normalized labels and predictions along `axis`."""
    y_true, y_pred = _pair(y_true, y_pred)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        inv_norm = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
        return x * torch.clamp(inv_norm, max=1.0 / config.epsilon())

    return torch.sum(normalize(y_true) * normalize(y_pred), dim=axis)


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary crossentropy averaged over `axis`.

    Args:
        y_true: 0/1 labels.
        y_pred: probabilities, or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in `[0, 1]`; labels become `y * (1 - s) + 0.5 * s`.
        axis: the axis to average over.

    Returns:
        The per-sample crossentropy.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        eps = config.epsilon()
        values = F.binary_cross_entropy(
            torch.clamp(y_pred, eps, 1.0 - eps), y_true, reduction="none"
        )
    return torch.mean(values, dim=axis)


def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical crossentropy between one-hot labels and predictions along `axis`.

    Args:
        y_true: one-hot (or soft) labels.
        y_pred: probabilities (renormalized to sum to 1), or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in `[0, 1]`; labels become `y * (1 - s) + s / num_classes`.
        axis: the class axis.

    Returns:
        The per-sample crossentropy.
    """
    y_true, y_pred = _pair(y_true, y_pred, squeeze=False)
    if label_smoothing:
        num_classes = y_true.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    if from_logits:
        log_prob = F.log_softmax(y_pred, dim=axis)
    else:
        eps = config.epsilon()
        y_pred = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
        log_prob = torch.log(torch.clamp(y_pred, eps, 1.0 - eps))
    return -torch.sum(y_true * log_prob, dim=axis)


def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical crossentropy between integer labels and predictions along `axis`.

    Args:
        y_true: integer class indices (a trailing axis of size 1 is squeezed).
        y_pred: probabilities (renormalized to sum to 1), or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        ignore_class: a label whose entries contribute 0 and are masked out of means.
        axis: the class axis.

    Returns:
        The per-entry crossentropy; with `ignore_class`, it carries a `_keras_mask`.
    """
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true, None, y_pred.device)
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    class_axis = axis % y_pred.ndim
    valid_mask = None
    if ignore_class is not None:
        valid_mask = y_true != ignore_class
        y_true = torch.where(valid_mask, y_true, torch.zeros_like(y_true))
        y_pred = torch.where(valid_mask.unsqueeze(class_axis), y_pred, torch.zeros_like(y_pred))
    y_true = y_true.long()
    single = y_pred.ndim == 1
    if single:
        y_pred, y_true = y_pred.unsqueeze(0), y_true.unsqueeze(0)
        class_axis = 1
    logits = y_pred.movedim(class_axis, 1)
    if from_logits:
        values = F.cross_entropy(logits, y_true, reduction="none")
    else:
        eps = config.epsilon()
        logits = logits / torch.sum(logits, dim=1, keepdim=True)
        values = F.nll_loss(
            torch.log(torch.clamp(logits, eps, 1.0 - eps)), y_true, reduction="none"
        )
    if single:
        values = values.squeeze(0)
    if valid_mask is not None:
        valid_mask = valid_mask.reshape(values.shape)
        values = torch.where(valid_mask, values, torch.zeros_like(values))
        values._keras_mask = valid_mask
    return values
