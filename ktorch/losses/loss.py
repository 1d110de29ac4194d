"""The `Loss` base class and Keras 3's reductions, masking and sample weighting."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ktorch import config
from ktorch.utils.dtypes import torch_dtype
from ktorch.utils.naming import auto_name

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)

_MIXED_POLICIES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def _torch_dtype(dtype: Any) -> torch.dtype:
    """Returns the compute dtype of a dtype or of a mixed-precision policy (name or object)."""
    dtype = getattr(dtype, "compute_dtype", dtype)
    if isinstance(dtype, str):
        dtype = _MIXED_POLICIES.get(dtype, dtype)
    try:
        return torch_dtype(dtype)
    except ValueError:
        raise ValueError(
            "Invalid value for argument dtype. Expected a dtype name such as 'float32', a "
            f"torch.dtype or a mixed-precision policy name. Received: dtype={dtype!r}"
        ) from None


def to_tensor(
    x: Any, dtype: torch.dtype | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """Converts `x` to a tensor of `dtype` on `device`, without a copy when it already is one.

    Without a `dtype`, tensors and NumPy arrays keep theirs and a Python float becomes
    `ktorch.config.floatx()`, as in Keras.

    Args:
        x: a tensor, NumPy array, or nested Python numbers.
        dtype: target dtype, or None to keep (or infer) it.
        device: target device, or None to keep it (CPU for non-tensors).

    Returns:
        A `torch.Tensor`.
    """
    if isinstance(x, torch.Tensor):
        if (dtype is None or x.dtype == dtype) and (device is None or x.device == device):
            return x
        return x.to(device=device, dtype=dtype)
    if isinstance(x, (np.ndarray, np.generic)):
        return torch.as_tensor(np.asarray(x)).to(device=device, dtype=dtype)
    if dtype is None and isinstance(x, float):
        dtype = torch_dtype(config.floatx())
    if isinstance(x, (bool, int, float)) and device is not None:
        # A fill kernel, not a host-to-device copy (which would wait for the device).
        return torch.full((), x, dtype=dtype, device=device)
    return torch.as_tensor(x, dtype=dtype, device=device)


def standardize_reduction(reduction: str | None) -> str | None:
    """Validates a reduction name and returns it.

    Args:
        reduction: one of `"sum_over_batch_size"`, `"sum"`, `"mean"`,
            `"mean_with_sample_weight"`, `"none"` or None; Keras 2's `"auto"` (found in
            Keras 2 configs) reads as `"sum_over_batch_size"`.
    """
    if reduction == "auto":
        return "sum_over_batch_size"
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument reduction. Expected one of {REDUCTIONS}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def squeeze_or_expand_to_same_rank(
    x1: torch.Tensor, x2: torch.Tensor, expand_rank_1: bool = True, broadcast_rank_1: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squeezes or expands the last axis when the ranks of `x1` and `x2` differ by one.

    The tensor with the extra trailing axis of size 1 is squeezed, except when the other is
    rank 1 and `expand_rank_1` is True, in which case the rank-1 tensor is expanded. With
    `broadcast_rank_1` (the regression losses), a rank-1 tensor facing a rank-2 one with a wider
    last axis is expanded to `(batch, 1)` so that it broadcasts, as Keras 2 did with 1-D targets
    (Keras 3 raises there; the FAQ's examples rely on it).

    Returns:
        The pair `(x1, x2)`, adjusted.
    """
    rank1, rank2 = x1.ndim, x2.ndim
    if rank1 == rank2:
        return x1, x2
    if rank1 == rank2 + 1 and (x1.shape[-1] == 1 or (broadcast_rank_1 and rank2 == 1)):
        if rank2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    if rank2 == rank1 + 1 and (x2.shape[-1] == 1 or (broadcast_rank_1 and rank1 == 1)):
        if rank1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def _align_sample_weight(values: torch.Tensor, sample_weight: torch.Tensor) -> torch.Tensor:
    """Lets per-sample weights broadcast over the trailing axes of per-step losses.

    Only used where Keras 3's trailing-axis broadcasting fails, e.g. values `(batch, steps)`
    with weights `(batch,)`: the weights are then aligned on the leading axes, as Keras 2 did.
    """
    if sample_weight.ndim >= values.ndim:
        return sample_weight
    try:
        torch.broadcast_shapes(values.shape, sample_weight.shape)
        return sample_weight
    except RuntimeError:
        pass
    if tuple(values.shape[: sample_weight.ndim]) != tuple(sample_weight.shape):
        return sample_weight
    return sample_weight.reshape(
        tuple(sample_weight.shape) + (1,) * (values.ndim - sample_weight.ndim)
    )


def apply_mask(
    sample_weight: torch.Tensor | None,
    mask: torch.Tensor | None,
    dtype: torch.dtype,
    reduction: str | None,
) -> torch.Tensor | None:
    """Merges a boolean mask into the sample weights.

    For the averaging reductions, valid entries get weight `total / valid` so that the
    average runs over valid entries only.
    """
    if mask is None:
        return sample_weight
    if reduction in ("mean", "sum_over_batch_size"):
        total = mask.numel()
        valid = torch.sum(mask.to(dtype))
        mask_weight = torch.where(valid == 0, 0.0, total / torch.where(valid == 0, 1.0, valid))
        float_mask = torch.where(mask.bool(), mask_weight, 0.0).to(dtype)
    else:
        float_mask = mask.to(dtype)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight.to(dtype))
    return sample_weight * float_mask


def reduce_values(
    values: torch.Tensor,
    sample_weight: torch.Tensor | None = None,
    reduction: str | None = "sum_over_batch_size",
) -> torch.Tensor:
    """Reduces (already weighted) loss values as `reduction` says."""
    if reduction is None or reduction == "none" or values.ndim == 0 or values.shape == (0,):
        return values
    if reduction == "sum":
        return torch.sum(values)
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        total = torch.sum(values)
        divisor = torch.sum(sample_weight).to(total.dtype)
        # Division that gives 0 for a zero divisor, without a host sync.
        return torch.where(divisor == 0, 0.0, total / torch.where(divisor == 0, 1.0, divisor))
    if values.numel() == 0:
        return torch.sum(values)
    return torch.mean(values)


def reduce_weighted_values(
    values: torch.Tensor,
    sample_weight: Any = None,
    mask: torch.Tensor | None = None,
    reduction: str | None = "sum_over_batch_size",
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Applies mask and sample weights to per-sample loss values, then reduces them.

    Args:
        values: per-sample (or per-element) loss values.
        sample_weight: weights broadcastable to `values` after Keras's rank adjustment.
        mask: boolean mask of valid entries, or None.
        reduction: the reduction to apply.
        dtype: dtype of the computation; defaults to that of `values`.

    Returns:
        The reduced loss (a scalar, or `values`' shape for `"none"`).
    """
    reduction = standardize_reduction(reduction)
    values = to_tensor(values, dtype)
    if sample_weight is not None:
        sample_weight = to_tensor(sample_weight, values.dtype, values.device)
    if mask is not None:
        mask = to_tensor(mask, device=values.device)
    sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = values * _align_sample_weight(values, sample_weight)
    return reduce_values(values, sample_weight, reduction)


class Loss:
    """Base class of losses: `loss(y_true, y_pred, sample_weight=None)` gives a scalar.

    Subclasses implement `call(y_true, y_pred)` returning per-sample loss values; `__call__`
    converts the inputs to the loss dtype, applies masks and `sample_weight`, and reduces.

    Args:
        name: name of the loss instance; defaults to the snake-cased class name.
        reduction: `"sum_over_batch_size"` (default) or `"mean"`: the sum divided by the
            number of elements; `"sum"`; `"mean_with_sample_weight"`: the sum divided by the
            sum of the sample weights; `"none"` or None: no reduction.
        dtype: dtype of the loss computation; defaults to `ktorch.config.floatx()`.

    Example:
        ```python
        class MeanSquaredError(Loss):
            def call(self, y_true, y_pred):
                return torch.mean(torch.square(y_pred - y_true), dim=-1)
        ```
    """

    _keras_module = "keras.losses"
    # Whether `__call__` casts `y_true` to the loss dtype (integer-label losses keep it).
    _cast_y_true = True

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ):
        self.name = name or auto_name(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype = _torch_dtype(dtype)

    @property
    def dtype(self) -> str:
        """Name of the dtype the loss is computed in, e.g. `"float32"`."""
        return str(self._dtype).removeprefix("torch.")

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """Returns the reduced loss of a batch.

        Args:
            y_true: targets.
            y_pred: predictions.
            sample_weight: optional weights, per sample or per element.

        Returns:
            A scalar tensor (or per-sample values when the reduction is `"none"`).
        """
        if (
            sample_weight is None
            and self.reduction == "sum_over_batch_size"
            and torch.is_tensor(y_pred)
            and y_pred.dtype == self._dtype
        ):
            fused = self._fused_mean(y_true, y_pred)
            if fused is not None:
                return fused
        in_mask = getattr(y_pred, "_keras_mask", None)
        y_pred = to_tensor(y_pred, self._dtype)
        y_true = to_tensor(y_true, self._dtype if self._cast_y_true else None, y_pred.device)
        values = self.call(y_true, y_pred)
        out_mask = getattr(values, "_keras_mask", None)
        if in_mask is not None and out_mask is not None:
            mask = in_mask.bool() & out_mask.bool()
        else:
            mask = in_mask if in_mask is not None else out_mask
        return reduce_weighted_values(
            values,
            sample_weight=sample_weight,
            mask=mask,
            reduction=self.reduction,
            dtype=self._dtype,
        )

    def _fused_mean(self, y_true: Any, y_pred: torch.Tensor) -> torch.Tensor | None:
        """The unweighted mean loss in one fused kernel, or None where that does not apply.

        The per-step training loss takes this path: one kernel with its own reduction instead
        of per-sample values followed by the general weighting and reduction code.
        """
        return None

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """Returns the per-sample loss values; implemented by subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement `call()`.")

    def get_config(self) -> dict[str, Any]:
        """Returns the loss arguments as a JSON-serializable dict."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Creates a loss from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"
