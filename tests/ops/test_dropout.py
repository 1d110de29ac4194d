"""Tests of ktorch::fused_dropout: kernels against the pure-PyTorch reference, bit for bit."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import types

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ktorch.ops
import ktorch.utils
from ktorch.ops import _library
from ktorch.ops import dropout as D

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]
SHAPES = [(0,), (1,), (7,), (8,), (9,), (3, 5, 7), (4099,), (70_001,)]


def _op(x: torch.Tensor, p: float, seed: int, offset: int = 0):
    return torch.ops.ktorch.fused_dropout.default(x, p, seed, offset)


def _backward_op(grad: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    return torch.ops.ktorch.fused_dropout_backward.default(grad, mask, p)


def _rng_op(x: torch.Tensor, p: float, generator: torch.Generator | None = None):
    return torch.ops.ktorch.fused_dropout_rng.default(x, p, generator)


def _twin(generator: torch.Generator) -> torch.Generator:
    """A generator on the same device in the same state."""
    twin = torch.Generator(device=generator.device)
    twin.set_state(generator.get_state())
    return twin


def _require_kernel(device: str) -> None:
    if not ktorch.ops.available()[device]:
        pytest.skip(f"ktorch._C has no {device} kernel")


def _unpack(mask: torch.Tensor, n: int) -> torch.Tensor:
    bits = [(int(byte) >> t) & 1 for byte in mask.cpu().tolist() for t in range(8)]
    return torch.tensor(bits[:n], dtype=torch.bool)


@pytest.fixture
def backend():
    """Restores the ops backend after a test that changes it."""
    previous = ktorch.ops.get_backend()
    yield ktorch.ops.set_backend
    ktorch.ops.set_backend(previous)


def test_cpu_kernel_is_built():
    if os.environ.get("KTORCH_NO_EXTENSION") == "1":
        pytest.skip("built with KTORCH_NO_EXTENSION=1")
    assert ktorch.ops.available()["cpu"], _library.load_error()


def test_available_reports_both_backends():
    available = ktorch.ops.available()
    assert set(available) == {"cpu", "cuda"}
    assert all(isinstance(v, bool) for v in available.values())


def test_philox_known_answers():
    # Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors).
    cases = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ]
    for counter, key, expected in cases:
        words = D.philox4x32_10(tuple(torch.tensor([c]) for c in counter), key)
        assert tuple(int(w) for w in words) == expected


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_opcheck(device, dtype):
    _require_kernel(device)
    x = torch.randn(3, 37, dtype=dtype, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.ktorch.fused_dropout.default, (x, 0.3, 1234, 5))
    _, mask = _op(x.detach(), 0.3, 1234, 5)
    grad = torch.randn(3, 37, dtype=dtype, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.ktorch.fused_dropout_backward.default, (grad, mask, 0.3))
    # The AOT-dispatch check compares two calls, which draw different masks by design.
    torch.library.opcheck(
        torch.ops.ktorch.fused_dropout_rng.default,
        (x, 0.3, None),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_matches_reference(device, dtype, shape):
    _require_kernel(device)
    x = torch.randn(shape, dtype=dtype, device=device)
    grad = torch.randn(shape, dtype=dtype, device=device)
    n_bytes = (x.numel() + 7) // 8
    for p in (0.0, 0.25, 0.5, 0.9):
        out, mask = _op(x, p, seed=-(2**40) + 17, offset=3)
        ref_out, ref_mask = D.fused_dropout_reference(x, p, seed=-(2**40) + 17, offset=3)
        assert mask.dtype == torch.uint8 and mask.shape == (n_bytes,)
        assert torch.equal(mask, ref_mask)
        assert out.dtype == dtype and out.shape == x.shape
        assert torch.equal(out, ref_out)
        grad_in = _backward_op(grad, mask, p)
        assert torch.equal(grad_in, D.fused_dropout_backward_reference(grad, mask, p))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(device, dtype):
    _require_kernel(device)
    x = torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0, 1.0] * 40, dtype=dtype)
    x = x.to(device)
    out, mask = _op(x, 0.5, 77, 0)
    ref_out, ref_mask = D.fused_dropout_reference(x, 0.5, 77, 0)
    assert torch.equal(mask, ref_mask)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0, equal_nan=True)
    keep = _unpack(mask, x.numel()).to(device)
    # Dropped elements are +0 whatever the input (no inf * 0 = nan); kept ones keep their sign.
    assert not torch.signbit(out[~keep]).any() and bool((out[~keep] == 0).all())
    assert torch.equal(torch.signbit(out[keep]), torch.signbit(x[keep]))
    assert bool(out[keep].isnan().eq(x[keep].isnan()).all())


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    p=st.floats(0.0, 0.99),
    seed=st.integers(-(2**63), 2**63 - 1),
    offset=st.integers(-(2**63), 2**63 - 1),
)
def test_kernel_matches_reference_property(n, p, seed, offset):
    _require_kernel("cpu")
    x = torch.randn(n)
    out, mask = _op(x, p, seed, offset)
    ref_out, ref_mask = D.fused_dropout_reference(x, p, seed, offset)
    assert torch.equal(mask, ref_mask)
    assert torch.equal(out, ref_out)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_and_cuda_kernels_agree(dtype):
    _require_kernel("cpu")
    _require_kernel("cuda")
    x = torch.randn(10_007, dtype=dtype)
    out_cpu, mask_cpu = _op(x, 0.4, 99, 1)
    out_cuda, mask_cuda = _op(x.cuda(), 0.4, 99, 1)
    assert torch.equal(mask_cpu, mask_cuda.cpu())
    assert torch.equal(out_cpu, out_cuda.cpu())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_unaligned_input_matches_reference(dtype):
    _require_kernel("cuda")
    # A view starting one element in is not aligned for the 8-element vector loads.
    x = torch.randn(1001, dtype=dtype, device="cuda")[1:]
    out, mask = _op(x, 0.5, 7, 0)
    ref_out, ref_mask = D.fused_dropout_reference(x, 0.5, 7, 0)
    assert torch.equal(mask, ref_mask)
    assert torch.equal(out, ref_out)
    grad = torch.randn(1001, dtype=dtype, device="cuda")[1:]
    assert torch.equal(
        _backward_op(grad, mask, 0.5), D.fused_dropout_backward_reference(grad, mask, 0.5)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device):
    _require_kernel(device)
    x = torch.randn(4, 13, dtype=torch.float64, device=device, requires_grad=True)

    def dropout(t: torch.Tensor) -> torch.Tensor:
        return _op(t, 0.3, 2024, 0)[0]

    assert torch.autograd.gradcheck(dropout, (x,))
    assert torch.autograd.gradgradcheck(dropout, (x,))


@pytest.mark.slow
def test_op_compiles_with_torch_compile():
    _require_kernel("cpu")

    def dropout(t: torch.Tensor) -> torch.Tensor:
        return _op(t, 0.5, 3, 0)[0] * 2

    x = torch.randn(100, requires_grad=True)
    compiled = torch.compile(dropout, fullgraph=True)
    out = compiled(x)
    assert torch.equal(out, dropout(x))
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, torch.where(out != 0, 4.0, 0.0))
    torch.manual_seed(0)
    expected = ktorch.ops.fused_dropout(x, 0.5)
    torch.manual_seed(0)
    assert torch.equal(torch.compile(ktorch.ops.fused_dropout)(x, 0.5), expected)


def test_gradcheck_reference():
    x = torch.randn(4, 13, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: D.fused_dropout_reference(t, 0.3, 2024)[0], (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_wrapper_gradient_matches_reference(device, dtype, backend):
    _require_kernel(device)
    # No zeros in x, so an element is kept exactly where its output is non-zero.
    x = (torch.rand(5, 17, device=device) + 0.5).to(dtype).requires_grad_()
    grads = []
    for name in ("kernel", "reference"):
        backend(name)
        torch.manual_seed(11)
        out = ktorch.ops.fused_dropout(x, 0.5)
        (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
        grads.append((out.detach(), grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])
    assert torch.equal(grads[0][1] != 0, grads[0][0] != 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_statistics(device, p):
    _require_kernel(device)
    n = 200_000
    x = torch.ones(n, device=device)
    out, mask = _op(x, p, 31337, 0)
    kept = int((out != 0).sum())
    # Within 5 standard deviations of a binomial(n, 1 - p).
    assert abs(kept - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p))
    assert kept == sum(bin(b).count("1") for b in mask.cpu().tolist())
    torch.testing.assert_close(out[out != 0], torch.full((kept,), 1 / (1 - p), device=device))
    # Mean preserved in expectation.
    assert abs(float(out.mean()) - 1.0) < 5 * math.sqrt(p / ((1 - p) * n))


def test_bits_follow_elements():
    _require_kernel("cpu")
    x = torch.arange(1, 1001, dtype=torch.float32)
    out, mask = _op(x, 0.5, 5, 0)
    assert torch.equal(_unpack(mask, 1000), out != 0)


@pytest.mark.parametrize("device", DEVICES)
def test_reproducible_under_manual_seed(device):
    x = torch.randn(1000, device=device)
    torch.manual_seed(0)
    a = ktorch.ops.fused_dropout(x, 0.5)
    b = ktorch.ops.fused_dropout(x, 0.5)
    torch.manual_seed(0)
    c = ktorch.ops.fused_dropout(x, 0.5)
    assert torch.equal(a, c)
    assert not torch.equal(a, b)
    generator = torch.Generator().manual_seed(3)
    d = ktorch.ops.fused_dropout(x, 0.5, generator=generator)
    generator.manual_seed(3)
    assert torch.equal(d, ktorch.ops.fused_dropout(x, 0.5, generator=generator))
    ktorch.utils.set_random_seed(0)
    assert torch.equal(ktorch.ops.fused_dropout(x, 0.5), a)


def test_cpu_stream_is_a_randint_draw():
    torch.manual_seed(5)
    expected = torch.randint(0, 2**63 - 1, (1,)).item()
    torch.manual_seed(5)
    assert D.dropout_stream(None, torch.device("cpu")) == (expected, 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0,), (9,), (3, 5, 7), (4099,)])
def test_rng_op_matches_reference(device, dtype, shape):
    _require_kernel(device)
    x = torch.randn(shape, dtype=dtype, device=device)
    generator = torch.Generator(device=device).manual_seed(123)
    twin = _twin(generator)
    for p in (0.25, 0.9):
        out, mask = _rng_op(x, p, generator)
        seed, offset = D.dropout_stream(twin, x.device)
        ref_out, ref_mask = D.fused_dropout_reference(x, p, seed, offset)
        assert torch.equal(mask, ref_mask)
        assert torch.equal(out, ref_out)
    # The op advanced the generator exactly as dropout_stream advanced its twin.
    assert torch.equal(generator.get_state(), twin.get_state())


@pytest.mark.parametrize("device", DEVICES)
def test_rng_op_draws_from_the_default_generator(device):
    _require_kernel(device)
    x = torch.randn(1000, device=device)
    torch.manual_seed(9)
    first, _ = _rng_op(x, 0.5)
    second, _ = _rng_op(x, 0.5)
    assert not torch.equal(first, second)
    torch.manual_seed(9)
    seed, offset = D.dropout_stream(None, x.device)
    assert torch.equal(first, D.fused_dropout_reference(x, 0.5, seed, offset)[0])
    seed, offset = D.dropout_stream(None, x.device)
    assert torch.equal(second, D.fused_dropout_reference(x, 0.5, seed, offset)[0])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_stream_comes_from_the_cuda_generator():
    _require_kernel("cuda")
    generator = torch.cuda.default_generators[torch.cuda.current_device()]
    torch.manual_seed(4)
    offset = generator.get_offset()
    assert D.dropout_stream(None, torch.device("cuda")) == (4, offset | 2**63)
    assert generator.get_offset() == offset + 4
    # A CPU generator drives a CUDA tensor the CPU way: a host draw, stream 0.
    x = torch.randn(777, device="cuda")
    cpu_generator = torch.Generator().manual_seed(2)
    twin = _twin(cpu_generator)
    out, mask = _rng_op(x, 0.3, cpu_generator)
    seed, stream = D.dropout_stream(twin, x.device)
    assert stream == 0
    ref_out, ref_mask = D.fused_dropout_reference(x, 0.3, seed, stream)
    assert torch.equal(mask, ref_mask) and torch.equal(out, ref_out)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rng_op_replays_in_a_cuda_graph():
    _require_kernel("cuda")
    x = torch.randn(4099, device="cuda")
    generator = torch.cuda.default_generators[torch.cuda.current_device()]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        _rng_op(x, 0.5)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, mask = _rng_op(x, 0.5)
    masks = []
    for _ in range(2):
        seed, offset = generator.initial_seed(), generator.get_offset()
        graph.replay()
        torch.cuda.synchronize()
        ref_out, ref_mask = D.fused_dropout_reference(x, 0.5, seed, offset | 2**63)
        # Each replay reads the generator's current offset on the device and advances it.
        assert torch.equal(mask, ref_mask) and torch.equal(out, ref_out)
        assert generator.get_offset() == offset + 4
        masks.append(mask.clone())
    assert not torch.equal(masks[0], masks[1])


@pytest.mark.parametrize("device", DEVICES)
def test_rng_op_backward_reuses_the_forward_mask(device):
    _require_kernel(device)
    x = torch.randn(5, 37, device=device, requires_grad=True)
    out, mask = _rng_op(x, 0.4)
    grad = torch.randn_like(out)
    (grad_x,) = torch.autograd.grad(out, x, grad)
    assert torch.equal(grad_x, D.fused_dropout_backward_reference(grad, mask, 0.4))
    # The autograd node is the C++ one: no Python runs in the backward.
    assert "RngDropout" in out.grad_fn.name()
    assert not mask.requires_grad


@pytest.mark.parametrize("device", DEVICES)
def test_rng_op_gradcheck(device):
    _require_kernel(device)
    x = torch.randn(4, 13, dtype=torch.float64, device=device, requires_grad=True)
    generator = torch.Generator(device=device)

    def dropout(t: torch.Tensor) -> torch.Tensor:
        # Reseeded at each call: gradcheck needs a fixed mask.
        generator.manual_seed(2024)
        return _rng_op(t, 0.3, generator)[0]

    assert torch.autograd.gradcheck(dropout, (x,))
    assert torch.autograd.gradgradcheck(dropout, (x,))


def test_rng_op_without_a_graph_to_record():
    _require_kernel("cpu")
    x = torch.randn(100)
    xg = x.clone().requires_grad_()
    generator = torch.Generator().manual_seed(1)
    twin = _twin(generator)
    expected = [_rng_op(xg, 0.5, twin)[1] for _ in range(3)]
    # Inference mode, no_grad, and an input that needs no gradient: same masks, no node.
    with torch.inference_mode():
        out, mask = _rng_op(x, 0.5, generator)
    assert out.grad_fn is None and torch.equal(mask, expected[0])
    with torch.no_grad():
        out, mask = _rng_op(xg, 0.5, generator)
    assert out.grad_fn is None and torch.equal(mask, expected[1])
    out, mask = _rng_op(x, 0.5, generator)
    assert out.grad_fn is None and torch.equal(mask, expected[2])


@pytest.mark.slow
def test_rng_op_compiles_and_two_calls_draw_two_masks():
    _require_kernel("cpu")

    def two(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ktorch.ops.fused_dropout(t, 0.5), ktorch.ops.fused_dropout(t, 0.5)

    x = torch.randn(1000, requires_grad=True)
    # No cached graph: the test is about what compilation makes of the op.
    with torch._inductor.config.patch(force_disable_caches=True):
        compiled = torch.compile(two, fullgraph=True)
        torch.manual_seed(3)
        a, b = compiled(x)
    torch.manual_seed(3)
    expected_a, expected_b = two(x)
    # Same draws as eager, and the two calls are not merged into one.
    assert torch.equal(a, expected_a) and torch.equal(b, expected_b)
    assert not torch.equal(a, b)
    (a.sum() + 2 * b.sum()).backward()
    assert torch.equal(x.grad, (a != 0).float() * 2 + (b != 0).float() * 4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [1, 8, 13, 1000])
def test_p_zero_keeps_everything(device, n):
    _require_kernel(device)
    x = torch.randn(n, device=device)
    out, mask = _op(x, 0.0, 8, 0)
    assert torch.equal(out, x)
    assert _unpack(mask, n).all()
    assert int(mask[-1]) >> (n % 8 or 8) == 0
    assert ktorch.ops.fused_dropout(x, 0.0) is x
    assert ktorch.ops.fused_dropout(x, 0.5, training=False) is x


@pytest.mark.parametrize("device", DEVICES)
def test_p_close_to_one(device):
    _require_kernel(device)
    x = torch.randn(10_000, device=device)
    p = math.nextafter(1.0, 0.0)
    out, mask = _op(x, p, 12, 0)
    ref_out, ref_mask = D.fused_dropout_reference(x, p, 12, 0)
    assert torch.equal(mask, ref_mask) and torch.equal(out, ref_out)
    assert int((mask != 0).sum()) == 0 and not out.any()
    out, mask = _op(x, 0.999, 12, 0)
    kept = out != 0
    assert 0 < int(kept.sum()) < 100
    torch.testing.assert_close(out[kept], x[kept] * 1000.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [9, 10, 11, 12, 13, 14, 15, 4097])
def test_odd_sizes_leave_unused_bits_zero(device, n):
    _require_kernel(device)
    x = torch.ones(n, device=device)
    _, mask = _op(x, 0.0, 3, 0)
    assert mask.numel() == (n + 7) // 8
    assert int(mask[-1]) == (1 << (n % 8)) - 1
    assert bool((mask[:-1] == 255).all())


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), True, "0.5", None])
def test_bad_rate_raises(rate):
    with pytest.raises(
        ValueError, match=r"argument rate\. Expected a float in \[0, 1\)\. Received"
    ):
        ktorch.ops.fused_dropout(torch.ones(4), rate)


def test_bad_rate_message_names_value():
    with pytest.raises(ValueError, match=r"Received: rate=1\.5$"):
        ktorch.ops.fused_dropout(torch.ones(4), 1.5)


@pytest.mark.parametrize("p", [1.0, -0.5])
def test_kernel_rejects_bad_p(p):
    _require_kernel("cpu")
    with pytest.raises(RuntimeError, match=r"Expected a float in \[0, 1\)"):
        _op(torch.ones(4), p, 0, 0)
    with pytest.raises(ValueError, match=r"Expected a float in \[0, 1\)"):
        D.fused_dropout_reference(torch.ones(4), p, 0)


def test_bad_dtype_raises():
    with pytest.raises(ValueError, match="Received: dtype=torch.int64"):
        ktorch.ops.fused_dropout(torch.ones(4, dtype=torch.int64), 0.5)
    _require_kernel("cpu")
    with pytest.raises(RuntimeError, match="must be float32, float64, float16 or bfloat16"):
        _op(torch.ones(4, dtype=torch.int64), 0.5, 0, 0)


def test_kernels_take_elements_in_logical_order():
    _require_kernel("cpu")
    x = torch.randn(6, 5).t()
    assert not x.is_contiguous()
    out, mask = _op(x, 0.5, 4, 0)
    expected_out, expected_mask = _op(x.contiguous(), 0.5, 4, 0)
    assert torch.equal(out, expected_out) and torch.equal(mask, expected_mask)
    grad = torch.randn(6, 5).t()
    assert torch.equal(_backward_op(grad, mask, 0.5), _backward_op(grad.contiguous(), mask, 0.5))
    torch.manual_seed(1)
    out = ktorch.ops.fused_dropout(x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(out, ktorch.ops.fused_dropout(x.contiguous(), 0.5))


def test_backward_rejects_wrong_mask():
    _require_kernel("cpu")
    grad = torch.ones(17)
    with pytest.raises(RuntimeError, match=r"mask must hold 3 bytes"):
        _backward_op(grad, torch.zeros(2, dtype=torch.uint8), 0.5)
    with pytest.raises(RuntimeError, match="uint8 mask"):
        _backward_op(grad, torch.zeros(3, dtype=torch.int32), 0.5)


def test_generator_on_another_device_raises():
    if torch.cuda.is_available():
        generator = torch.Generator(device="cuda")
    else:
        # Only the generator's device is looked at before the error.
        generator = types.SimpleNamespace(device=torch.device("cuda", 0))
    with pytest.raises(ValueError, match=r"on the CPU or on the device of x \(cpu\)"):
        ktorch.ops.fused_dropout(torch.ones(4), 0.5, generator=generator)
    if torch.cuda.is_available() and ktorch.ops.available()["cpu"]:
        with pytest.raises(RuntimeError, match="must be a CPU generator or one on the device"):
            _rng_op(torch.ones(4), 0.5, generator)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_backend_gives_the_same_result(device, dtype, backend):
    _require_kernel(device)
    x = torch.randn(3, 1001, dtype=dtype, device=device)
    results = []
    for name in ("kernel", "reference", "auto"):
        backend(name)
        torch.manual_seed(42)
        results.append(ktorch.ops.fused_dropout(x, 0.3))
    assert torch.equal(results[0], results[1])
    assert torch.equal(results[0], results[2])


def test_missing_kernel_falls_back_to_reference(monkeypatch, backend):
    x = torch.randn(257)
    torch.manual_seed(3)
    expected = ktorch.ops.fused_dropout(x, 0.5)
    monkeypatch.setattr(_library, "has_kernel", lambda op, device_type: False)
    calls = []
    reference = D.fused_dropout_reference
    monkeypatch.setattr(D, "fused_dropout_reference", lambda *a: calls.append(1) or reference(*a))
    backend("auto")
    torch.manual_seed(3)
    assert torch.equal(ktorch.ops.fused_dropout(x, 0.5), expected)
    assert calls == [1]
    backend("kernel")
    with pytest.raises(RuntimeError, match="no cpu kernel for ktorch::fused_dropout"):
        ktorch.ops.fused_dropout(x, 0.5)


def test_failed_load_is_remembered(monkeypatch):
    attempts = []

    def failing_import(name):
        attempts.append(name)
        raise ImportError("undefined symbol: something")

    monkeypatch.setattr(_library, "_loaded", None)
    monkeypatch.setattr(_library, "_load_error", None)
    monkeypatch.setattr(_library, "_kernel_cache", {})
    monkeypatch.setattr(_library.importlib, "import_module", failing_import)
    assert _library.load() is False
    assert _library.load() is False
    assert attempts == ["ktorch._C"]
    assert "undefined symbol" in _library.load_error()
    assert ktorch.ops.available() == {"cpu": False, "cuda": False}


def test_backend_from_environment(monkeypatch):
    monkeypatch.setattr(_library, "_backend", None)
    monkeypatch.setenv("KTORCH_OPS_BACKEND", "reference")
    assert ktorch.ops.get_backend() == "reference"
    monkeypatch.setattr(_library, "_backend", None)
    monkeypatch.setenv("KTORCH_OPS_BACKEND", "fast")
    with pytest.raises(ValueError, match=r"argument backend.*Received: backend='fast'"):
        ktorch.ops.get_backend()
    with pytest.raises(ValueError, match="Received: backend='gpu'"):
        ktorch.ops.set_backend("gpu")


def test_extension_is_loaded_lazily():
    code = (
        "import sys, ktorch, ktorch.ops; "
        "print('ktorch._C' in sys.modules); "
        "ktorch.ops.available(); "
        "print('ktorch._C' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = result.stdout.split()
    assert before == "False"
    assert after == str(ktorch.ops.available()["cpu"])
