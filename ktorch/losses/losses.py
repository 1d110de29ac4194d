"""Keras 3's loss functions and loss classes, computed with torch.

The functions return per-sample values (the last axis averaged or summed away, as Keras
does); the classes wrap them with a reduction and sample weighting.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ktorch import config
from ktorch.losses.loss import Loss, squeeze_or_expand_to_same_rank, to_tensor
from ktorch.saving.serialization_lib import serialize_keras_object

_LOG2 = math.log(2.0)


def _prepare(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns `y_pred` as a tensor and `y_true` as a tensor of its dtype and device."""
    y_pred = to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.get_default_dtype())
    return to_tensor(y_true, y_pred.dtype, y_pred.device), y_pred


def _dims(axis: int | list[int] | tuple[int, ...] | None):
    return tuple(axis) if isinstance(axis, list) else axis


def _l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    inv_norm = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
    return x * torch.clamp(inv_norm, max=1.0 / config.epsilon())


def _check_axis(axis: Any) -> None:
    if isinstance(axis, bool):
        raise ValueError(f"Invalid value for argument axis. Expected an int. Received: axis={axis}")


def _warn_single_class(name: str, y_pred: torch.Tensor) -> None:
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            stacklevel=3,
        )


def mean_squared_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Mean squared error over the last axis: `mean(square(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(
        *_prepare(y_true, y_pred), broadcast_rank_1=True
    )
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Mean absolute error over the last axis: `mean(abs(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(
        *_prepare(y_true, y_pred), broadcast_rank_1=True
    )
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`100 * mean(abs((y_true - y_pred) / max(abs(y_true), epsilon)), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(
        *_prepare(y_true, y_pred), broadcast_rank_1=True
    )
    diff = torch.abs((y_true - y_pred) / torch.clamp(torch.abs(y_true), min=config.epsilon()))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """`mean(square(log(y_pred + 1) - log(y_true + 1)), axis=-1)`, inputs floored at epsilon."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(
        *_prepare(y_true, y_pred), broadcast_rank_1=True
    )
    eps = config.epsilon()
    first_log = torch.log(torch.clamp(y_pred, min=eps) + 1.0)
    second_log = torch.log(torch.clamp(y_true, min=eps) + 1.0)
    return torch.mean(torch.square(first_log - second_log), dim=-1)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """Negative cosine similarity along `axis`: -1 for aligned vectors, 1 for opposite ones."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_prepare(y_true, y_pred))
    return -torch.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), dim=axis)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> torch.Tensor:
    """Huber loss: quadratic for errors up to `delta`, linear beyond, averaged on the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(
        *_prepare(y_true, y_pred), broadcast_rank_1=True
    )
    error = y_pred - y_true
    abs_error = torch.abs(error)
    quadratic = 0.5 * torch.square(error)
    linear = delta * abs_error - 0.5 * delta * delta
    return torch.mean(torch.where(abs_error <= delta, quadratic, linear), dim=-1)


def log_cosh(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Logarithm of the hyperbolic cosine of the error, averaged on the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(
        *_prepare(y_true, y_pred), broadcast_rank_1=True
    )
    x = y_pred - y_true
    return torch.mean(x + F.softplus(-2.0 * x) - _LOG2, dim=-1)


def _hinge_labels(y_true: torch.Tensor) -> torch.Tensor:
    # Labels in {0, 1} become {-1, 1}; chosen on device, without a host sync.
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Hinge loss `mean(max(1 - y_true * y_pred, 0), axis=-1)`; labels -1/1 (0/1 converted)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.clamp(1.0 - y_true * y_pred, min=0.0), dim=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Squared hinge loss `mean(square(max(1 - y_true * y_pred, 0)), axis=-1)`."""
    y_true, y_pred = _prepare(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.square(torch.clamp(1.0 - y_true * y_pred, min=0.0)), dim=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Categorical hinge loss `max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`."""
    y_true, y_pred = _prepare(y_true, y_pred)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp(neg - pos + 1.0, min=0.0)


def kl_divergence(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Kullback-Leibler divergence `sum(y_true * log(y_true / y_pred), axis=-1)`, clipped."""
    y_true, y_pred = _prepare(y_true, y_pred)
    eps = config.epsilon()
    y_true = torch.clamp(y_true, eps, 1.0)
    y_pred = torch.clamp(y_pred, eps, 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Poisson loss `mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)`."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return torch.mean(y_pred - y_true * torch.log(y_pred + config.epsilon()), dim=-1)


def _binary_crossentropy_elementwise(
    target: torch.Tensor, output: torch.Tensor, from_logits: bool
) -> torch.Tensor:
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. Received: "
            f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}"
        )
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    eps = config.epsilon()
    output = torch.clamp(output, eps, 1.0 - eps)
    # Written out rather than F.binary_cross_entropy, which refuses to run under autocast.
    return -(target * torch.log(output) + (1.0 - target) * torch.log1p(-output))


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary crossentropy, averaged over `axis`.

    Args:
        y_true: targets in [0, 1], same shape as `y_pred`.
        y_pred: probabilities, or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1]; targets are squeezed towards 0.5 by this amount.
        axis: axis averaged over.

    Returns:
        Per-sample loss values.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return torch.mean(_binary_crossentropy_elementwise(y_true, y_pred, from_logits), dim=axis)


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary focal crossentropy: crossentropy scaled by `(1 - p_t) ** gamma`, averaged on `axis`.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities, or logits when `from_logits=True`.
        apply_class_balancing: weight positives by `alpha` and negatives by `1 - alpha`.
        alpha: class balancing weight.
        gamma: focusing parameter.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1]; targets are squeezed towards 0.5 by this amount.
        axis: axis averaged over.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    bce = _binary_crossentropy_elementwise(y_true, y_pred, from_logits=False)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal_bce = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal_bce = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal_bce
    return torch.mean(focal_bce, dim=axis)


def _check_same_shape(target: torch.Tensor, output: torch.Tensor) -> None:
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. Received: "
            f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}"
        )
    if target.ndim < 1:
        raise ValueError(
            "Arguments `target` and `output` must be at least rank 1. Received: "
            f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}"
        )


def _normalized_log_probs(output: torch.Tensor, axis: int) -> torch.Tensor:
    eps = config.epsilon()
    output = output / torch.sum(output, dim=axis, keepdim=True)
    return torch.log(torch.clamp(output, eps, 1.0 - eps))


def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical crossentropy between one-hot (or soft) targets and predictions.

    Args:
        y_true: one-hot or probability targets, same shape as `y_pred`.
        y_pred: probabilities (renormalized and clipped), or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1]; targets are mixed with the uniform distribution.
        axis: the class axis.

    Returns:
        Per-sample loss values (the class axis summed away).
    """
    _check_axis(axis)
    y_true, y_pred = _prepare(y_true, y_pred)
    _warn_single_class("categorical_crossentropy", y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    _check_same_shape(y_true, y_pred)
    if from_logits:
        log_prob = F.log_softmax(y_pred, dim=axis)
    else:
        log_prob = _normalized_log_probs(y_pred, axis)
    return -torch.sum(y_true * log_prob, dim=axis)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical focal crossentropy: `alpha * (1 - p) ** gamma` weighted crossentropy.

    Args:
        y_true: one-hot or probability targets, same shape as `y_pred`.
        y_pred: probabilities, or logits when `from_logits=True`.
        alpha: weighting factor.
        gamma: focusing parameter.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: in [0, 1]; targets are mixed with the uniform distribution.
        axis: the class axis.
    """
    _check_axis(axis)
    y_true, y_pred = _prepare(y_true, y_pred)
    _warn_single_class("categorical_focal_crossentropy", y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        y_pred = F.softmax(y_pred, dim=axis)
    eps = config.epsilon()
    output = torch.clamp(y_pred / torch.sum(y_pred, dim=axis, keepdim=True), eps, 1.0 - eps)
    cce = -y_true * torch.log(output)
    focal = alpha * torch.pow(1.0 - output, gamma) * cce
    return torch.sum(focal, dim=axis)


def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical crossentropy with integer class targets.

    Args:
        y_true: integer class indices (floats are truncated to integers), shaped like
            `y_pred` without the class axis (a trailing axis of size 1 is accepted).
        y_pred: probabilities (renormalized and clipped), or logits when `from_logits=True`.
        from_logits: whether `y_pred` holds logits.
        ignore_class: a class index whose targets contribute no loss (and are left out of the
            average by the loss class), e.g. a padding label.
        axis: the class axis.

    Returns:
        Per-sample loss values.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    if y_true.ndim == y_pred.ndim and y_true.ndim and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    if y_true.dtype != torch.long:
        y_true = y_true.long()
    if y_pred.ndim < 1:
        raise ValueError(
            "Argument `output` must be at least rank 1. Received: "
            f"output.shape={tuple(y_pred.shape)}"
        )
    class_axis = axis % y_pred.ndim
    expected = y_pred.shape[:class_axis] + y_pred.shape[class_axis + 1 :]
    if y_true.shape != expected:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape up until the last "
            f"dimension: target.shape={tuple(y_true.shape)}, output.shape={tuple(y_pred.shape)}"
        )
    num_classes = y_pred.shape[class_axis]
    # Class axis last: flatten to (N, C) so the fused kernel runs on contiguous rows,
    # with no one-hot tensor.
    if class_axis == y_pred.ndim - 1:
        scores = y_pred.reshape(-1, num_classes)
    else:
        scores = y_pred.movedim(class_axis, -1).reshape(-1, num_classes)
    target = y_true.reshape(-1)
    ignore_index = -100 if ignore_class is None else int(ignore_class)
    if from_logits:
        result = F.cross_entropy(scores, target, reduction="none", ignore_index=ignore_index)
    else:
        log_prob = _normalized_log_probs(scores, -1)
        result = F.nll_loss(log_prob, target, reduction="none", ignore_index=ignore_index)
    result = result.reshape(y_true.shape)
    if ignore_class is not None:
        result._keras_mask = y_true != ignore_class
    return result


def _sparse_categorical_crossentropy_mean(
    y_true: Any,
    y_pred: torch.Tensor,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> torch.Tensor | None:
    """Mean of `sparse_categorical_crossentropy` over a `(N, C)` batch with `(N,)` or `(N, 1)`
    integer targets, as one fused kernel; None for any other case (the general path)."""
    if (
        ignore_class is not None
        or y_pred.ndim != 2
        or axis not in (-1, 1)
        or not torch.is_tensor(y_true)
        or y_true.is_floating_point()
        or y_true.device != y_pred.device
        or getattr(y_pred, "_keras_mask", None) is not None
    ):
        return None
    target = y_true.reshape(-1) if y_true.ndim == 2 and y_true.shape[1] == 1 else y_true
    if target.ndim != 1 or target.shape[0] != y_pred.shape[0]:
        return None
    if target.dtype != torch.long:
        target = target.long()
    if from_logits:
        return F.cross_entropy(y_pred, target)
    return F.nll_loss(_normalized_log_probs(y_pred, -1), target)


_FUSED_MEANS = {sparse_categorical_crossentropy: _sparse_categorical_crossentropy_mean}


def ctc(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Connectionist temporal classification loss, with label 0 as the blank/padding label.

    Args:
        y_true: integer labels `(batch, max_label_length)`, padded with 0.
        y_pred: logits `(batch, time, num_classes)`.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    if y_true.ndim != 2:
        raise ValueError(
            "Targets `y_true` are expected to be a tensor of shape `(batch_size, max_length)` "
            f"in integer format. Received: y_true.shape={tuple(y_true.shape)}"
        )
    if y_pred.ndim != 3:
        raise ValueError(
            "Logits `y_pred` are expected to be a tensor of shape "
            f"`(batch_size, max_length, num_classes)`. Received: y_pred.shape={tuple(y_pred.shape)}"
        )
    y_true = y_true.long()
    batch, steps = y_pred.shape[0], y_pred.shape[1]
    if not y_pred.is_floating_point() or y_pred.dtype in (torch.float16, torch.bfloat16):
        y_pred = y_pred.float()
    log_probs = F.log_softmax(y_pred.transpose(0, 1), dim=-1)
    input_lengths = torch.full((batch,), steps, dtype=torch.long, device=y_pred.device)
    target_lengths = torch.sum(y_true != 0, dim=-1)
    return F.ctc_loss(log_probs, y_true, input_lengths, target_lengths, blank=0, reduction="none")


def dice(y_true: Any, y_pred: Any, axis: int | list[int] | None = None) -> torch.Tensor:
    """Dice loss `1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred))` over `axis`."""
    y_true, y_pred = _prepare(y_true, y_pred)
    dims = _dims(axis)
    intersection = torch.sum(y_true * y_pred, dim=dims)
    union = torch.sum(y_true, dim=dims) + torch.sum(y_pred, dim=dims)
    return 1 - 2.0 * intersection / (union + config.epsilon())


def tversky(
    y_true: Any,
    y_pred: Any,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: int | list[int] | None = None,
) -> torch.Tensor:
    """Tversky loss: Dice generalized with weights `alpha` (false positives), `beta` (false
    negatives).
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    dims = _dims(axis)
    intersection = torch.sum(y_true * y_pred, dim=dims)
    fp = torch.sum((1 - y_pred) * y_true, dim=dims)
    fn = torch.sum(y_pred * (1 - y_true), dim=dims)
    return 1 - intersection / (intersection + fp * alpha + fn * beta + config.epsilon())


def circle(
    y_true: Any,
    y_pred: Any,
    ref_labels: Any = None,
    ref_embeddings: Any = None,
    remove_diagonal: bool = True,
    gamma: float = 80,
    margin: float = 0.4,
) -> torch.Tensor:
    """Circle loss for metric learning on L2-normalized embeddings.

    Args:
        y_true: integer labels `(batch,)`.
        y_pred: embeddings `(batch, dim)`, L2-normalized.
        ref_labels: labels of the reference embeddings; defaults to `y_true`.
        ref_embeddings: reference embeddings; defaults to `y_pred`.
        remove_diagonal: leave out each embedding's pair with itself.
        gamma: scaling factor.
        margin: relaxation margin.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device).long()
    ref_embeddings = y_pred if ref_embeddings is None else to_tensor(ref_embeddings, y_pred.dtype)
    ref_labels = y_true if ref_labels is None else to_tensor(ref_labels).long()
    distances = torch.clamp(1 - y_pred @ ref_embeddings.T, min=0.0)
    query = y_true.reshape(-1, 1) if y_true.ndim == 1 else y_true
    keys = ref_labels.reshape(-1, 1) if ref_labels.ndim == 1 else ref_labels
    positive = query == keys.T
    negative = ~positive
    if remove_diagonal:
        eye = torch.eye(query.numel(), keys.numel(), dtype=torch.bool, device=positive.device)
        positive = positive & ~eye
    pos_weights = torch.clamp((margin + distances) * positive, min=0.0)
    neg_weights = torch.clamp((1 + margin - distances) * negative, min=0.0)
    pos_wdists = -gamma * pos_weights * (margin - distances)
    neg_wdists = gamma * neg_weights * ((1 - margin) - distances)
    p_loss = torch.logsumexp(torch.where(positive, pos_wdists, float("-inf")), dim=1)
    n_loss = torch.logsumexp(torch.where(negative, neg_wdists, float("-inf")), dim=1)
    result = F.softplus(p_loss + n_loss)
    result._keras_mask = result > 0
    return result


def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> torch.Tensor:
    """Generalized crossentropy `(1 - p ** q) / q` of the true class probability `p`.

    Args:
        y_true: integer class indices `(batch,)`.
        y_pred: probabilities `(batch, num_classes)`.
        q: in (0, 1); towards 0 it approaches crossentropy, at 1 mean absolute error.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device).long()
    p = torch.gather(y_pred, -1, y_true.unsqueeze(-1)).squeeze(-1)
    return (1 - torch.pow(p, q)) / q


_INTEGER_TARGET_FUNCTIONS = (
    sparse_categorical_crossentropy,
    ctc,
    circle,
    categorical_generalized_cross_entropy,
)


class LossFunctionWrapper(Loss):
    """Wraps a per-sample loss function `fn(y_true, y_pred, **kwargs)` into a `Loss`.

    Args:
        fn: callable returning per-sample loss values.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
        **kwargs: keyword arguments passed to `fn`.

    Example:
        ```python
        loss = LossFunctionWrapper(huber, delta=2.0)
        value = loss(y_true, y_pred)
        ```
    """

    def __init__(
        self,
        fn: Callable,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs
        if fn in _INTEGER_TARGET_FUNCTIONS:
            # Integer labels stay integers: no round trip through the float dtype.
            self._cast_y_true = False

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _fused_mean(self, y_true: Any, y_pred: torch.Tensor) -> torch.Tensor | None:
        fused = _FUSED_MEANS.get(self.fn)
        return None if fused is None else fused(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["fn"] = serialize_keras_object(self.fn)
        config.update(serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossFunctionWrapper:
        from ktorch.losses import deserialize

        config = dict(config)
        if "fn" in config:
            config["fn"] = deserialize(config["fn"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


class _FunctionLoss(LossFunctionWrapper):
    """A built-in loss class: its function's keyword arguments are attributes and config."""

    def __init__(self, fn: Callable, reduction: Any, name: str, dtype: Any, **kwargs: Any):
        super().__init__(fn, reduction=reduction, name=name, dtype=dtype, **kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanSquaredError(_FunctionLoss):
    """Mean of the squared errors: `mean(square(y_true - y_pred))`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.

    Example:
        ```python
        loss = MeanSquaredError()
        value = loss(torch.zeros(4, 2), torch.ones(4, 2))  # tensor(1.)
        ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, reduction, name, dtype)


class MeanAbsoluteError(_FunctionLoss):
    """Mean of the absolute errors: `mean(abs(y_true - y_pred))`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, reduction, name, dtype)


class MeanAbsolutePercentageError(_FunctionLoss):
    """Mean absolute percentage error: `100 * mean(abs((y_true - y_pred) / y_true))`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="mean_absolute_percentage_error",
        dtype=None,
    ):
        super().__init__(mean_absolute_percentage_error, reduction, name, dtype)


class MeanSquaredLogarithmicError(_FunctionLoss):
    """Mean squared logarithmic error: `mean(square(log(y_true + 1) - log(y_pred + 1)))`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="mean_squared_logarithmic_error",
        dtype=None,
    ):
        super().__init__(mean_squared_logarithmic_error, reduction, name, dtype)


class CosineSimilarity(_FunctionLoss):
    """Negative cosine similarity between targets and predictions along `axis`.

    Args:
        axis: the axis along which the similarity is computed.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None
    ):
        super().__init__(cosine_similarity, reduction, name, dtype, axis=axis)


class Huber(_FunctionLoss):
    """Huber loss: `0.5 * x**2` for `|x| <= delta`, `delta * |x| - 0.5 * delta**2` beyond.

    Args:
        delta: the error where the loss turns from quadratic to linear.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, reduction, name, dtype, delta=delta)


class LogCosh(_FunctionLoss):
    """Logarithm of the hyperbolic cosine of the prediction error.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, reduction, name, dtype)


class Hinge(_FunctionLoss):
    """Hinge loss `max(1 - y_true * y_pred, 0)`, labels -1/1 (0/1 are converted).

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, reduction, name, dtype)


class SquaredHinge(_FunctionLoss):
    """Squared hinge loss `square(max(1 - y_true * y_pred, 0))`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, reduction, name, dtype)


class CategoricalHinge(_FunctionLoss):
    """Categorical hinge loss `max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, reduction, name, dtype)


class KLDivergence(_FunctionLoss):
    """Kullback-Leibler divergence `y_true * log(y_true / y_pred)`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, reduction, name, dtype)


class Poisson(_FunctionLoss):
    """Poisson loss `y_pred - y_true * log(y_pred)`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, reduction, name, dtype)


class BinaryCrossentropy(_FunctionLoss):
    """Crossentropy for binary (0 or 1) targets.

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; targets are squeezed towards 0.5 by this amount.
        axis: the axis averaged over.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.

    Example:
        ```python
        loss = BinaryCrossentropy(from_logits=True)
        value = loss(torch.tensor([[0.0], [1.0]]), torch.tensor([[-2.0], [3.0]]))
        ```
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        super().__init__(
            binary_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class BinaryFocalCrossentropy(_FunctionLoss):
    """Binary crossentropy down-weighting easy examples by `(1 - p_t) ** gamma`.

    Args:
        apply_class_balancing: weight positives by `alpha` and negatives by `1 - alpha`.
        alpha: class balancing weight.
        gamma: focusing parameter.
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; targets are squeezed towards 0.5 by this amount.
        axis: the axis averaged over.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        apply_class_balancing=False,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(
            binary_focal_crossentropy,
            reduction,
            name,
            dtype,
            apply_class_balancing=apply_class_balancing,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalCrossentropy(_FunctionLoss):
    """Crossentropy for one-hot (or soft) targets over several classes.

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; targets are mixed with the uniform distribution.
        axis: the class axis.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            categorical_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalFocalCrossentropy(_FunctionLoss):
    """Categorical crossentropy down-weighting easy examples by `alpha * (1 - p) ** gamma`.

    Args:
        alpha: weighting factor.
        gamma: focusing parameter.
        from_logits: whether `y_pred` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; targets are mixed with the uniform distribution.
        axis: the class axis.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(
            categorical_focal_crossentropy,
            reduction,
            name,
            dtype,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(_FunctionLoss):
    """Crossentropy for integer class targets.

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities.
        ignore_class: a class index left out of the loss and of its average (e.g. padding).
        reduction: see `Loss`.
        axis: the class axis.
        name: name of the loss instance.
        dtype: dtype of the loss computation.

    Example:
        ```python
        loss = SparseCategoricalCrossentropy(from_logits=True)
        value = loss(torch.tensor([1, 2]), torch.randn(2, 3))
        ```
    """

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        axis=-1,
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            sparse_categorical_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )


class CTC(_FunctionLoss):
    """Connectionist temporal classification loss (label 0 is the blank and padding label).

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, reduction, name, dtype)


class Dice(_FunctionLoss):
    """Dice loss `1 - 2 * |y_true . y_pred| / (|y_true| + |y_pred|)`.

    Args:
        reduction: see `Loss`.
        name: name of the loss instance.
        axis: axes summed over; None for all.
        dtype: dtype of the loss computation.
    """

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, reduction, name, dtype, axis=axis)


class Tversky(_FunctionLoss):
    """Tversky loss, a Dice loss weighting false positives by `alpha` and negatives by `beta`.

    Args:
        alpha: weight of false positives.
        beta: weight of false negatives.
        reduction: see `Loss`.
        name: name of the loss instance.
        axis: axes summed over; None for all.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        alpha=0.5,
        beta=0.5,
        reduction="sum_over_batch_size",
        name="tversky",
        axis=None,
        dtype=None,
    ):
        super().__init__(tversky, reduction, name, dtype, alpha=alpha, beta=beta, axis=axis)


class Circle(_FunctionLoss):
    """Circle loss for metric learning on L2-normalized embeddings with integer labels.

    Args:
        gamma: scaling factor.
        margin: relaxation margin.
        remove_diagonal: leave out each embedding's pair with itself.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        gamma=80.0,
        margin=0.4,
        remove_diagonal=True,
        reduction="sum_over_batch_size",
        name="circle",
        dtype=None,
    ):
        super().__init__(
            circle,
            reduction,
            name,
            dtype,
            gamma=gamma,
            margin=margin,
            remove_diagonal=remove_diagonal,
        )


class CategoricalGeneralizedCrossEntropy(_FunctionLoss):
    """Generalized crossentropy `(1 - p ** q) / q`, robust to noisy labels.

    Args:
        q: in (0, 1); towards 0 it approaches crossentropy, at 1 mean absolute error.
        reduction: see `Loss`.
        name: name of the loss instance.
        dtype: dtype of the loss computation.
    """

    def __init__(
        self,
        q=0.5,
        reduction="sum_over_batch_size",
        name="categorical_generalized_cross_entropy",
        dtype=None,
    ):
        if not 0 < q < 1:
            raise ValueError(
                f"Invalid value for argument q. Expected a float in (0, 1). Received: q={q}"
            )
        super().__init__(categorical_generalized_cross_entropy, reduction, name, dtype, q=q)
