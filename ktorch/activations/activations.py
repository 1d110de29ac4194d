"""Activation functions on torch tensors, with Keras 3's names, arguments and formulas.

Each one maps to fused `torch.nn.functional` kernels where torch has one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relu(
    x: torch.Tensor,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> torch.Tensor:
    """Rectified linear unit, with optional leak, saturation and threshold.

    With default arguments this is `max(x, 0)`. Values below `threshold` are set to
    `negative_slope * (x - threshold)`, values above `max_value` are clipped.

    Args:
        x: input tensor.
        negative_slope: slope for values below the threshold.
        max_value: saturation value (the largest value returned), or None.
        threshold: value below which inputs are damped or zeroed.

    Returns:
        A tensor of the same shape and dtype as `x`.

    Example:
        ```python
        relu(torch.tensor([-10.0, -5.0, 0.0, 5.0, 10.0]), max_value=5.0)
        # tensor([0., 0., 0., 5., 5.])
        ```
    """
    if negative_slope == 0.0 and threshold == 0.0:
        if max_value is None:
            return F.relu(x)
        if max_value == 6:
            return F.relu6(x)
        return torch.clamp(x, 0.0, max_value)
    if negative_slope != 0.0:
        if max_value is None and threshold == 0.0:
            return F.leaky_relu(x, negative_slope)
        negative_part = F.relu(threshold - x) if threshold != 0.0 else F.relu(-x)
    if threshold != 0.0:
        out = F.threshold(x, threshold, 0.0)
    else:
        out = F.relu(x)
    if max_value is not None:
        out = torch.clamp(out, 0.0, max_value)
    if negative_slope != 0.0:
        out = out - negative_slope * negative_part
    return out


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.2) -> torch.Tensor:
    """Leaky ReLU: `x` for `x >= 0`, `negative_slope * x` otherwise."""
    return F.leaky_relu(x, negative_slope)


def relu6(x: torch.Tensor) -> torch.Tensor:
    """ReLU capped at 6: `min(max(x, 0), 6)`."""
    return F.relu6(x)


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise."""
    return F.elu(x, alpha)


def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled exponential linear unit, `scale * elu(x, alpha)` with the SELU constants.

    Use with the `lecun_normal` initializer.
    """
    return F.selu(x)


def celu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Continuously differentiable ELU: `x` for `x >= 0`, `alpha * (exp(x / alpha) - 1)`."""
    return F.celu(x, alpha)


def gelu(x: torch.Tensor, approximate: bool = False) -> torch.Tensor:
    """Gaussian error linear unit, `x * P(X <= x)` for `X ~ N(0, 1)`.

    Args:
        x: input tensor.
        approximate: use the tanh approximation instead of the exact erf form.
    """
    return F.gelu(x, approximate="tanh" if approximate else "none")


def glu(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Gated linear unit: splits `x` in halves `a, b` along `axis`, returns `a * sigmoid(b)`."""
    return F.glu(x, dim=axis)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid: `1 / (1 + exp(-x))`."""
    return torch.sigmoid(x)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Piecewise linear sigmoid: `0` below -3, `1` above 3, `x / 6 + 0.5` in between."""
    return F.hardsigmoid(x)


def sparse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Sparse sigmoid: `0` for `x <= -1`, `1` for `x >= 1`, `(x + 1) / 2` in between."""
    return torch.clamp(0.5 * (x + 1.0), 0.0, 1.0)


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logarithm of the sigmoid, computed stably."""
    return F.logsigmoid(x)


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU (swish): `x * sigmoid(x)`."""
    return F.silu(x)


def hard_silu(x: torch.Tensor) -> torch.Tensor:
    """Hard SiLU (hard swish): `x * hard_sigmoid(x)`."""
    return F.hardswish(x)


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish: `x * tanh(softplus(x))`."""
    return F.mish(x)


def softmax(x: torch.Tensor, axis: int | tuple[int, ...] | None = -1) -> torch.Tensor:
    """Softmax: `exp(x) / sum(exp(x))` along `axis`.

    Args:
        x: input tensor (logits).
        axis: axis (or axes; None for all) along which the probabilities sum to 1.
    """
    if isinstance(axis, int):
        return F.softmax(x, dim=axis)
    dims = tuple(range(x.ndim)) if axis is None else tuple(axis)
    return torch.exp(x - torch.logsumexp(x, dim=dims, keepdim=True))


def log_softmax(x: torch.Tensor, axis: int | tuple[int, ...] | None = -1) -> torch.Tensor:
    """Logarithm of the softmax along `axis`, computed stably."""
    if isinstance(axis, int):
        return F.log_softmax(x, dim=axis)
    dims = tuple(range(x.ndim)) if axis is None else tuple(axis)
    return x - torch.logsumexp(x, dim=dims, keepdim=True)


def sparsemax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Sparsemax: the Euclidean projection of `x` onto the probability simplex along `axis`."""
    sorted_x, _ = torch.sort(x, dim=axis, descending=True)
    cumsum = torch.cumsum(sorted_x, dim=axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    ranks = torch.arange(1, x.shape[axis] + 1, device=x.device, dtype=x.dtype).view(shape)
    support = sorted_x - (cumsum - 1) / ranks > 0
    k = torch.sum(support, dim=axis, keepdim=True)
    tau = (torch.sum(torch.where(support, cumsum, 0.0), dim=axis, keepdim=True) - 1) / k
    return torch.clamp(x - tau, min=0.0)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """Softplus: `log(exp(x) + 1)`."""
    return F.softplus(x)


def softsign(x: torch.Tensor) -> torch.Tensor:
    """Softsign: `x / (abs(x) + 1)`."""
    return F.softsign(x)


def sparse_plus(x: torch.Tensor) -> torch.Tensor:
    """SparsePlus: `0` for `x <= -1`, `x` for `x >= 1`, `(x + 1)**2 / 4` in between."""
    return torch.where(x <= -1, 0.0, torch.where(x < 1, 0.25 * (x + 1) ** 2, x))


def squareplus(x: torch.Tensor, b: float = 4) -> torch.Tensor:
    """Squareplus: `(x + sqrt(x**2 + b)) / 2`."""
    return (x + torch.sqrt(x * x + b)) / 2


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent."""
    return torch.tanh(x)


def tanh_shrink(x: torch.Tensor) -> torch.Tensor:
    """Tanh shrink: `x - tanh(x)`."""
    return F.tanhshrink(x)


def hard_tanh(x: torch.Tensor) -> torch.Tensor:
    """Hard tanh: `x` clipped to `[-1, 1]`."""
    return F.hardtanh(x, -1.0, 1.0)


def hard_shrink(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Hard shrink: `x` where `|x| > threshold`, 0 elsewhere."""
    return F.hardshrink(x, threshold)


def soft_shrink(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Soft shrink: `x - threshold` above it, `x + threshold` below `-threshold`, else 0."""
    return F.softshrink(x, threshold)


def threshold(x: torch.Tensor, threshold: float, default_value: float) -> torch.Tensor:
    """Threshold: `x` where `x > threshold`, `default_value` elsewhere."""
    return F.threshold(x, threshold, default_value)


def exponential(x: torch.Tensor) -> torch.Tensor:
    """Exponential: `exp(x)`."""
    return torch.exp(x)


def linear(x: torch.Tensor) -> torch.Tensor:
    """Linear (identity) activation: returns `x` unchanged."""
    return x


swish = silu
hard_swish = hard_silu
