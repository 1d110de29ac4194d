"""Fused dropout: a counter-based random keep mask stored as 1 bit per element, scale fused.

`torch.ops.ktorch.fused_dropout(x, p, seed, offset)` returns `(out, mask)`: element `i` (in the
row-major order of `x`'s shape) is kept when the Philox4x32-10 draw for `(seed, offset, i)` is
at least `floor(p * 2**32)`; kept elements are multiplied by `1 / (1 - p)`, dropped ones are
exactly zero. `mask` is a uint8 tensor of `ceil(numel / 8)` bytes, element `i` in bit `i % 8`
of byte `i // 8`. Because a draw depends only on `(seed, offset, i)`, the CPU kernel, the CUDA
kernel and the pure-PyTorch reference below produce the same mask bit for bit.

`torch.ops.ktorch.fused_dropout_rng(x, p, generator=None)` is the same computation with
`(seed, offset)` taken from a generator inside the op, the device's default one when None (see
`dropout_stream`): no Python-side draw, and on CUDA no host sync, so it can be captured in a
CUDA graph. `torch.ops.ktorch.fused_dropout_backward(grad, mask, p)` applies a saved mask to a
gradient. The autograd of all three is registered in C++ (csrc/fused_dropout_autograd.cpp):
the gradient of `x` is the backward op on the saved mask.
"""

from __future__ import annotations

import numbers

import torch

from ktorch.ops import _library

__all__ = [
    "dropout_stream",
    "fused_dropout",
    "fused_dropout_backward_reference",
    "fused_dropout_reference",
    "philox4x32_10",
]

_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = 0xFFFFFFFF
_MAX_SEED = 2**63 - 1
_DEVICE_STREAM = 1 << 63


def _mulhilo(m: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # 32x32 -> 64-bit product in int64 without overflow: split m in 16-bit halves so every
    # partial product stays below 2**49.
    a = x * (m >> 16)
    b = x * (m & 0xFFFF)
    hi = (a + (b >> 16)) >> 16
    lo = (((a & 0xFFFF) << 16) + b) & _MASK32
    return hi, lo


def philox4x32_10(
    counter: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    key: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32-10 on int64 tensors holding 32-bit words, vectorized over the tensors.

    Args:
        counter: the four 32-bit counter words, int64 tensors of one shape, values in
            `[0, 2**32)`.
        key: the two 32-bit key words.

    Returns:
        The four 32-bit output words, int64 tensors of the counter's shape.

    Example:
        >>> zero = torch.zeros(1, dtype=torch.int64)
        >>> hex(philox4x32_10((zero, zero, zero, zero), (0, 0))[0].item())
        '0x6627e8d5'
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


def _draws(seed: int, offset: int, n_bytes: int, device: torch.device) -> torch.Tensor:
    # Element i's draw is word i % 4 of the Philox block i // 4, counter (block, offset).
    block = torch.arange(2 * n_bytes, dtype=torch.int64, device=device)
    c2 = torch.full_like(block, offset & _MASK32)
    c3 = torch.full_like(block, (offset >> 32) & _MASK32)
    words = philox4x32_10(
        (block & _MASK32, block >> 32, c2, c3), (seed & _MASK32, (seed >> 32) & _MASK32)
    )
    return torch.stack(words, dim=1).reshape(-1)


def _threshold(p: float) -> int:
    # Same truncation as the kernels' static_cast<uint32_t>(p * 2^32); exact in double.
    return int(p * 4294967296.0)


def _scale_where(t: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    # The kernels compute in float32 for 16-bit types (float64 for float64) and round once.
    opmath = torch.float64 if t.dtype == torch.float64 else torch.float32
    scale = torch.tensor(1.0 / (1.0 - p), dtype=opmath)
    kept = (t.to(opmath) * scale).to(t.dtype)
    return torch.where(keep, kept, kept.new_zeros(()))


def _bit_shifts(device: torch.device) -> torch.Tensor:
    return torch.arange(8, dtype=torch.int32, device=device)


def fused_dropout_reference(
    x: torch.Tensor, p: float, seed: int, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-PyTorch `ktorch::fused_dropout`: the same output and mask as the kernels.

    Differentiable through ordinary torch ops; used for testing and as the fallback when the
    extension has no kernel for `x`'s device.

    Args:
        x: float32, float64, float16 or bfloat16 tensor.
        p: probability of dropping an element, in `[0, 1)`.
        seed: 64-bit seed (Philox key).
        offset: 64-bit stream offset (upper counter words).

    Returns:
        `(out, mask)`: `out` shaped like `x`, `mask` uint8 of `ceil(x.numel() / 8)` bytes.
    """
    _check_p(p)
    _check_dtype(x)
    n = x.numel()
    n_bytes = (n + 7) // 8
    with torch.no_grad():
        keep = _draws(seed, offset, n_bytes, x.device) >= _threshold(p)
        keep[n:] = False
        mask = (keep.view(-1, 8).to(torch.int32) << _bit_shifts(x.device)).sum(1)
    return _scale_where(x, keep[:n].view(x.shape), p), mask.to(torch.uint8)


def fused_dropout_backward_reference(
    grad: torch.Tensor, mask: torch.Tensor, p: float
) -> torch.Tensor:
    """Pure-PyTorch `ktorch::fused_dropout_backward`: `grad / (1 - p)` where kept, else 0.

    Args:
        grad: gradient of the dropout output.
        mask: the uint8 bit mask returned by the forward.
        p: the forward's drop probability.

    Returns:
        The gradient of the dropout input.
    """
    _check_p(p)
    _check_dtype(grad)
    bits = (mask.view(-1, 1).to(torch.int32) >> _bit_shifts(mask.device)) & 1
    keep = bits.view(-1)[: grad.numel()].bool().view(grad.shape)
    return _scale_where(grad, keep, p)


def fused_dropout(
    x: torch.Tensor,
    rate: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Randomly zeroes elements of `x` with probability `rate`, scaling the rest by `1/(1-rate)`.

    Runs `ktorch::fused_dropout_rng` when the extension has a kernel for `x`'s device (see
    `ktorch.ops.available()` and `ktorch.ops.set_backend()`), else the pure-PyTorch reference;
    both give the same result from the same generator state (see `dropout_stream`), so
    `torch.manual_seed` makes the result reproducible. The backward reuses the forward's mask.

    Args:
        x: float32, float64, float16 or bfloat16 tensor of any layout.
        rate: fraction of elements to drop, in `[0, 1)`.
        training: when False, `x` is returned unchanged.
        generator: a `torch.Generator` on the CPU or on `x`'s device; None for the default
            generator of `x`'s device.

    Returns:
        A contiguous tensor shaped like `x`, or `x` itself when not training or `rate == 0`.

    Example:
        >>> x = torch.ones(2, 4)
        >>> y = fused_dropout(x, 0.5)
        >>> sorted(set(y.flatten().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """
    if type(rate) is not float or not 0.0 < rate < 1.0:
        # The full check only off the common path: an ABC isinstance costs a microsecond.
        rate = _check_rate(rate)
    if not training or rate == 0.0:
        return x
    _check_dtype(x)
    device = x.device
    if generator is not None:
        _check_generator(generator, device)
    if _library.use_kernel("fused_dropout_rng", device):
        # One op call: the seed is drawn and the autograd node made in C++.
        return torch.ops.ktorch.fused_dropout_rng.default(x, rate, generator)[0]
    seed, offset = _draw_stream(generator, device)
    return fused_dropout_reference(x, rate, seed, offset)[0]


def dropout_stream(generator: torch.Generator | None, device: torch.device) -> tuple[int, int]:
    """Draws the `(seed, offset)` that `ktorch::fused_dropout_rng` would draw, and advances.

    From a CPU generator (the default one for CPU tensors): `seed` is what
    `torch.randint(0, 2**63 - 1, (1,), generator=generator)` draws and `offset` is 0. From a
    CUDA generator (the default one for CUDA tensors): `seed` is the generator's seed, `offset`
    is its Philox offset with bit 63 set (PyTorch's own kernels use the same counter words for
    thread indices, which stay below 2**63), and the generator's offset advances by 4.

    Args:
        generator: the generator, or None for `device`'s default one.
        device: the device of the tensor to drop from.

    Returns:
        `(seed, offset)` as non-negative integers below `2**64`, for `fused_dropout_reference`.
    """
    if generator is None:
        generator = _default_generator(device)
    if generator.device.type == "cpu":
        # One draw on a CPU generator: .item() here reads host memory, it is no device sync.
        return int(torch.randint(0, _MAX_SEED, (1,), generator=generator).item()), 0
    offset = generator.get_offset()
    generator.set_offset(offset + 4)
    return generator.initial_seed(), offset | _DEVICE_STREAM


def _default_generator(device: torch.device) -> torch.Generator:
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return torch.cuda.default_generators[index]
    return torch.default_generator


# Only the reference path draws in Python. The op's schema takes host integers: under
# torch.compile, drawing them is a deliberate graph break, kept out of the traced graph instead
# of tracing `.item()`. The compiler-disabled wrapper is made on first use under compilation,
# so `import ktorch` does not import torch._dynamo (seconds of import time).
def _draw_stream(generator: torch.Generator | None, device: torch.device) -> tuple[int, int]:
    if torch.compiler.is_compiling():
        return torch.compiler.disable(dropout_stream)(generator, device)
    return dropout_stream(generator, device)


def _check_generator(generator: torch.Generator, device: torch.device) -> None:
    if generator.device.type not in ("cpu", device.type):
        raise ValueError(
            "Invalid value for argument generator. Expected a torch.Generator on the CPU or on "
            f"the device of x ({device}). Received: a generator on {generator.device}"
        )


def _check_rate(rate: float) -> float:
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0.0 <= float(rate) < 1.0:
        raise ValueError(
            f"Invalid value for argument rate. Expected a float in [0, 1). Received: rate={rate}"
        )
    return float(rate)


def _check_p(p: float) -> None:
    if not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ValueError(
            f"Invalid value for argument p. Expected a float in [0, 1). Received: p={p}"
        )


def _check_dtype(x: torch.Tensor) -> None:
    if x.dtype not in _DTYPES:
        raise ValueError(
            "Invalid dtype for fused dropout. Expected one of float32, float64, float16, "
            f"bfloat16. Received: dtype={x.dtype}"
        )


def _fused_dropout_fake(
    x: torch.Tensor, p: float, seed: int, offset: int
) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    mask = x.new_empty(((x.numel() + 7) // 8,), dtype=torch.uint8)
    return out, mask


def _fused_dropout_backward_fake(grad: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    return torch.empty_like(grad, memory_format=torch.contiguous_format)


def _fused_dropout_rng_fake(
    x: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    _exclude_from_cse()
    return _fused_dropout_fake(x, p, 0, 0)


def _exclude_from_cse() -> None:
    # AOTAutograd's common-subexpression elimination merges calls with equal arguments unless
    # the op is in its list of random ops (it does not read the nondeterministic_seeded tag):
    # two dropouts of one tensor would share a mask. Fake kernels run only while tracing, when
    # that module is loaded anyway, so eager code never imports it.
    from torch._functorch import compile_utils

    rand_ops = getattr(compile_utils, "rand_ops", None)
    packet = torch.ops.ktorch.fused_dropout_rng
    if isinstance(rand_ops, list) and packet not in rand_ops:
        rand_ops.append(packet)


def _register() -> None:
    # Autograd is registered in C++ with the kernels; only the fake kernels live here.
    torch.library.register_fake("ktorch::fused_dropout", _fused_dropout_fake)
    torch.library.register_fake("ktorch::fused_dropout_backward", _fused_dropout_backward_fake)
    torch.library.register_fake("ktorch::fused_dropout_rng", _fused_dropout_rng_fake)


_library.on_load(_register)
