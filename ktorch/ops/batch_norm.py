"""Fused batch normalization: statistics, normalization, affine and moving averages in one op.

Three ops, with the channel axis anywhere (`axis`) and Keras's conventions:

- `torch.ops.ktorch.fused_batch_norm(x, weight, bias, running_mean, running_var, axis,
  momentum, eps) -> (out, mean, invstd)` normalizes with the batch mean and biased variance,
  `out = (x - mean) * invstd * weight + bias`, and updates the moving statistics in place with
  `moving = moving * momentum + batch_stat * (1 - momentum)` (the biased variance, as Keras
  does; torch's own batch norm uses the unbiased one and the other meaning of momentum).
  `mean` and `invstd = 1 / sqrt(var + eps)` are returned for the backward, not differentiable.
- `torch.ops.ktorch.fused_batch_norm_inference(x, weight, bias, running_mean, running_var, axis,
  eps) -> out` normalizes with the moving statistics, `out = x * a + b` with
  `a = weight / sqrt(running_var + eps)` and `b = bias - running_mean * a` (Keras's formula).
- `torch.ops.ktorch.fused_batch_norm_backward(grad_out, x, weight, mean, invstd, axis, training,
  output_mask) -> (grad_x, grad_weight, grad_bias)`: two per-channel sums and one elementwise
  pass; a gradient whose `output_mask` entry is False comes back as an empty tensor.

`weight`, `bias` and the moving statistics are optional per-channel vectors (Keras's `scale`,
`center`). Statistics are computed in float32 for float16/bfloat16/float32 inputs (float64 for
float64), with exact two-pass moments of cache-sized pieces merged by Chan's formula. The
kernels read `x` either contiguous (channels_first `(N, C, *spatial)`, or channels_last
`(N, *spatial, C)` with `axis=-1`) or with the channel axis innermost in memory (an NCHW tensor
in `torch.channels_last` format); the output keeps the input's strides. Autograd of the ops is
registered in C++ (`csrc/fused_batch_norm.cpp`): the training op mutates its inputs, which
`torch.library.register_autograd` does not accept. A backward with `create_graph=True`
(double backward) recomputes the normalization with torch ops and differentiates that.
"""

from __future__ import annotations

import numbers

import torch

from ktorch.ops import _library

__all__ = [
    "fused_batch_norm",
    "fused_batch_norm_backward_reference",
    "fused_batch_norm_inference_reference",
    "fused_batch_norm_reference",
]

_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _opmath(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_axis(x: torch.Tensor, axis: int) -> int:
    ndim = x.ndim
    # Fast path first: this runs on every call of the layer.
    if type(axis) is int and -ndim <= axis < ndim:
        return axis % ndim
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ValueError(f"Invalid value for argument axis. Expected an integer. Received: {axis=}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"Invalid value for argument axis. Expected an integer in [{-x.ndim}, {x.ndim}) for "
            f"an input of rank {x.ndim}. Received: axis={axis}"
        )
    return int(axis) % x.ndim


def _check_dtype(x: torch.Tensor) -> None:
    if x.dtype not in _DTYPES:
        raise ValueError(
            "Invalid dtype for fused batch norm. Expected one of float32, float64, float16, "
            f"bfloat16. Received: dtype={x.dtype}"
        )


def _channel_shape(x: torch.Tensor, axis: int) -> list[int]:
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return shape


def _per_channel(t: torch.Tensor, axis: int) -> torch.Tensor:
    """`t` as a `(values, channels)` matrix."""
    return t.movedim(axis, -1).reshape(-1, t.shape[axis])


def _normalize(x, mean, invstd, weight, bias, axis):
    # (x - mean) * scale + shift in opmath, in the order the kernels use.
    shape = _channel_shape(x, axis)
    opmath = _opmath(x.dtype)
    scale = invstd if weight is None else weight.to(opmath) * invstd
    out = (x.to(opmath) - mean.view(shape)) * scale.view(shape)
    if bias is not None:
        out = out + bias.to(opmath).view(shape)
    return out.to(x.dtype)


def fused_batch_norm_reference(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    axis: int,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pure-PyTorch `ktorch::fused_batch_norm`: batch statistics, output, moving averages.

    Differentiable through ordinary torch ops (higher-order gradients included); used for
    testing and as the fallback where the extension has no kernel.

    Args:
        x: float32, float64, float16 or bfloat16 tensor.
        weight: per-channel scale (gamma), or None.
        bias: per-channel offset (beta), or None.
        running_mean: moving mean updated in place, or None.
        running_var: moving variance updated in place, or None.
        axis: the channel axis.
        momentum: weight of the old moving value.
        eps: added to the variance.

    Returns:
        `(out, mean, invstd)`: `out` like `x`, the batch mean and `1 / sqrt(var + eps)` in
        float32 (float64 for a float64 `x`).
    """
    _check_dtype(x)
    axis = _check_axis(x, axis)
    values = _per_channel(x, axis).to(_opmath(x.dtype))
    if values.shape[0] == 0 and values.shape[1] > 0:
        raise ValueError(
            "fused batch norm: training needs at least one value per channel. "
            f"Received: x.shape={tuple(x.shape)}"
        )
    var, mean = torch.var_mean(values, dim=0, correction=0)
    invstd = torch.rsqrt(var + eps)
    with torch.no_grad():
        for stat, batch in ((running_mean, mean), (running_var, var)):
            if stat is not None:
                stat.copy_(stat.to(mean.dtype) * momentum + batch * (1.0 - momentum))
    return _normalize(x, mean, invstd, weight, bias, axis), mean, invstd


def fused_batch_norm_inference_reference(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    axis: int,
    eps: float,
) -> torch.Tensor:
    """Pure-PyTorch `ktorch::fused_batch_norm_inference`: normalizes with the moving statistics.

    Args:
        x: float32, float64, float16 or bfloat16 tensor.
        weight: per-channel scale (gamma), or None.
        bias: per-channel offset (beta), or None.
        running_mean: moving mean.
        running_var: moving variance.
        axis: the channel axis.
        eps: added to the variance.

    Returns:
        `(x - running_mean) / sqrt(running_var + eps) * weight + bias`, shaped like `x`.
    """
    _check_dtype(x)
    axis = _check_axis(x, axis)
    opmath = _opmath(x.dtype)
    shape = _channel_shape(x, axis)
    # x * scale + shift, the statistics folded into the coefficients as the kernels do.
    scale = torch.rsqrt(running_var.to(opmath) + eps)
    if weight is not None:
        scale = weight.to(opmath) * scale
    shift = -running_mean.to(opmath) * scale
    if bias is not None:
        shift = bias.to(opmath) + shift
    return (x.to(opmath) * scale.view(shape) + shift.view(shape)).to(x.dtype)


def fused_batch_norm_backward_reference(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    axis: int,
    training: bool,
    output_mask: list[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pure-PyTorch `ktorch::fused_batch_norm_backward`, from the closed-form gradients.

    Args:
        grad_out: gradient of the output, shaped like `x`.
        x: the forward's input.
        weight: per-channel scale, or None.
        mean: the mean used by the forward (batch mean in training, moving mean otherwise).
        invstd: the `1 / sqrt(var + eps)` used by the forward.
        axis: the channel axis.
        training: whether the forward used batch statistics (which then depend on `x`).
        output_mask: which of `(grad_x, grad_weight, grad_bias)` to compute.

    Returns:
        `(grad_x, grad_weight, grad_bias)`; `grad_x` like `x`, the others per-channel in the
        statistics' dtype; an entry not asked for is an empty tensor.
    """
    _check_dtype(x)
    axis = _check_axis(x, axis)
    opmath = _opmath(x.dtype)
    shape = _channel_shape(x, axis)
    g = grad_out.to(opmath)
    centered = x.to(opmath) - mean.to(opmath).view(shape)
    sum_dy = _per_channel(g, axis).sum(0)
    sum_dy_xmu = _per_channel(g * centered, axis).sum(0)
    a = invstd if weight is None else weight.to(opmath) * invstd
    grad_x = g * a.view(shape)
    if training:
        count = max(x.numel() // max(x.shape[axis], 1), 1)
        b = -a * invstd * invstd * (sum_dy_xmu / count)
        c = -a * (sum_dy / count)
        grad_x = grad_x + centered * b.view(shape) + c.view(shape)
    empty = x.new_empty((0,), dtype=opmath)
    return (
        grad_x.to(x.dtype) if output_mask[0] else x.new_empty((0,)),
        sum_dy_xmu * invstd if output_mask[1] else empty,
        sum_dy if output_mask[2] else empty,
    )


def fused_batch_norm(
    x: torch.Tensor,
    moving_mean: torch.Tensor | None,
    moving_variance: torch.Tensor | None,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
    *,
    axis: int = -1,
    training: bool = False,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
) -> torch.Tensor:
    """Batch normalization with Keras's semantics, fused in one kernel per direction.

    With `training=True`: normalizes with the batch mean and (biased) variance of each channel
    and updates the moving statistics in place,
    `moving = moving * momentum + batch_stat * (1 - momentum)`. Otherwise normalizes with the
    moving statistics. Runs the native kernel for `x`'s device when the extension has one (see
    `ktorch.ops.available()` and `ktorch.ops.set_backend()`), else the pure-PyTorch reference.
    Gradients flow to `x`, `gamma` and `beta` (and, in inference, to the moving statistics).
    Higher-order gradients (`create_graph=True`) are supported: that backward recomputes the
    normalization with torch ops and differentiates it, instead of running the fused kernel.

    Args:
        x: float32, float64, float16 or bfloat16 tensor. Contiguous inputs and inputs whose
            channel axis is innermost in memory (`torch.channels_last`) are read in place; any
            other strides are copied to contiguous memory first.
        moving_mean: per-channel moving mean; may be None in training (no update).
        moving_variance: per-channel moving variance; may be None in training (no update).
        gamma: per-channel scale, or None.
        beta: per-channel offset, or None.
        axis: the channel axis (-1: channels_last, 1: channels_first).
        training: batch statistics (True) or moving statistics (False).
        momentum: weight of the old moving value in the update.
        epsilon: added to the variance.

    Returns:
        The normalized tensor, shaped like `x` and in its memory format.

    Example:
        >>> x = torch.randn(8, 3, 4, 4)
        >>> mean, var = torch.zeros(3), torch.ones(3)
        >>> y = fused_batch_norm(x, mean, var, axis=1, training=True, momentum=0.9)
        >>> torch.allclose(mean, 0.1 * x.mean((0, 2, 3)), atol=1e-6)
        True
    """
    _check_dtype(x)
    axis = _check_axis(x, axis)
    if not training and (moving_mean is None or moving_variance is None):
        raise ValueError(
            "fused_batch_norm needs moving_mean and moving_variance when training=False. "
            f"Received: moving_mean={_describe(moving_mean)}, "
            f"moving_variance={_describe(moving_variance)}"
        )
    # The kernels read contiguous or channels-innermost memory; other strides (a sliced or
    # transposed view) are rare and copied once here.
    if not (x.is_contiguous() or x.movedim(axis, -1).is_contiguous()):
        x = x.contiguous()
    momentum = float(momentum)
    epsilon = float(epsilon)
    if training:
        if _library.use_kernel("fused_batch_norm", x.device):
            return _OPS["train"](
                x, gamma, beta, moving_mean, moving_variance, axis, momentum, epsilon
            )[0]
        return fused_batch_norm_reference(
            x, gamma, beta, moving_mean, moving_variance, axis, momentum, epsilon
        )[0]
    if _library.use_kernel("fused_batch_norm_inference", x.device):
        return _OPS["inference"](x, gamma, beta, moving_mean, moving_variance, axis, epsilon)
    return fused_batch_norm_inference_reference(
        x, gamma, beta, moving_mean, moving_variance, axis, epsilon
    )


def _describe(t: torch.Tensor | None) -> str:
    return "None" if t is None else f"tensor of shape {tuple(t.shape)}"


def _fused_batch_norm_fake(x, weight, bias, running_mean, running_var, axis, momentum, eps):
    axis = _check_axis(x, axis)
    channels = x.shape[axis]
    stats = _opmath(x.dtype)
    return (
        x.new_empty_strided(x.shape, x.stride()),
        x.new_empty((channels,), dtype=stats),
        x.new_empty((channels,), dtype=stats),
    )


def _fused_batch_norm_inference_fake(x, weight, bias, running_mean, running_var, axis, eps):
    return x.new_empty_strided(x.shape, x.stride())


def _fused_batch_norm_backward_fake(grad_out, x, weight, mean, invstd, axis, training, output_mask):
    axis = _check_axis(x, axis)
    channels = x.shape[axis]
    stats = _opmath(x.dtype)
    return (
        x.new_empty_strided(x.shape, x.stride()) if output_mask[0] else x.new_empty((0,)),
        x.new_empty((channels if output_mask[1] else 0,), dtype=stats),
        x.new_empty((channels if output_mask[2] else 0,), dtype=stats),
    )


# The op overloads, looked up once when the extension loads (each torch.ops attribute lookup
# costs about a microsecond per call).
_OPS: dict = {}


def _register() -> None:
    _OPS["train"] = torch.ops.ktorch.fused_batch_norm.default
    _OPS["inference"] = torch.ops.ktorch.fused_batch_norm_inference.default
    torch.library.register_fake("ktorch::fused_batch_norm", _fused_batch_norm_fake)
    torch.library.register_fake(
        "ktorch::fused_batch_norm_inference", _fused_batch_norm_inference_fake
    )
    torch.library.register_fake(
        "ktorch::fused_batch_norm_backward", _fused_batch_norm_backward_fake
    )


_library.on_load(_register)
