"""Tests of ktorch::fused_batch_norm{,_inference,_backward}: kernels against the pure-PyTorch
reference and against torch.nn.functional.batch_norm, layouts, moving statistics, autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ktorch.ops
from ktorch.ops import _library
from ktorch.ops import batch_norm as B

CUDA = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
# Spatial shapes: none ((N, C) Dense input), 1D, 2D, 3D.
SPATIAL = [(), (7,), (5, 6), (3, 4, 5)]
# How the (N, C, *spatial) data sits in memory and which axis holds the channels:
#   channels_first: contiguous (N, C, *spatial), axis 1;
#   channels_last:  the same logical tensor with channels innermost (torch.channels_last), axis 1;
#   keras_last:     contiguous (N, *spatial, C), axis -1 (Keras's default data format).
LAYOUTS = ["channels_first", "channels_last", "keras_last"]


def _require_kernel(device: str) -> None:
    if not ktorch.ops.available()[device]:
        pytest.skip(f"ktorch._C has no {device} kernel")


def _make(shape_nc, layout, dtype=torch.float32, device="cpu", scale=2.0, shift=0.5, seed=0):
    """A random tensor of logical shape (N, C, *spatial) in `layout`, and its channel axis."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape_nc, generator=generator, dtype=torch.float64) * scale + shift
    x = x.to(dtype=dtype, device=device)
    if layout == "channels_first":
        return x, 1
    if layout == "channels_last":
        return x.movedim(1, -1).contiguous().movedim(-1, 1), 1
    return x.movedim(1, -1).contiguous(), -1


def _params(channels, dtype=torch.float32, device="cpu", seed=1):
    generator = torch.Generator().manual_seed(seed)

    def rand(low=-1.0, high=1.0):
        values = torch.rand(channels, generator=generator, dtype=torch.float64)
        return (values * (high - low) + low).to(dtype=dtype, device=device)

    return rand(0.5, 1.5), rand(), rand(), rand(0.5, 2.0)


def _train(x, weight, bias, mean, var, axis, momentum=0.9, eps=1e-3):
    return torch.ops.ktorch.fused_batch_norm.default(
        x, weight, bias, mean, var, axis, momentum, eps
    )


def _infer(x, weight, bias, mean, var, axis, eps=1e-3):
    return torch.ops.ktorch.fused_batch_norm_inference.default(
        x, weight, bias, mean, var, axis, eps
    )


def _backward(grad, x, weight, mean, invstd, axis, training, mask=(True, True, True)):
    return torch.ops.ktorch.fused_batch_norm_backward.default(
        grad, x, weight, mean, invstd, axis, training, list(mask)
    )


def _tolerances(dtype):
    return {
        torch.float64: {"atol": 1e-10, "rtol": 1e-10},
        torch.float32: {"atol": 1e-5, "rtol": 1e-5},
        torch.float16: {"atol": 1e-2, "rtol": 1e-2},
        torch.bfloat16: {"atol": 5e-2, "rtol": 2e-2},
    }[dtype]


@pytest.fixture
def backend():
    """Restores the ops backend after a test that changes it."""
    previous = ktorch.ops.get_backend()
    yield ktorch.ops.set_backend
    ktorch.ops.set_backend(previous)


@pytest.fixture
def two_threads():
    """Runs a test with 2 CPU threads, so that the kernels split reductions across threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_available_counts_batch_norm_ops():
    for op in ("fused_batch_norm", "fused_batch_norm_inference", "fused_batch_norm_backward"):
        assert op in _library.OPS
    if ktorch.ops.available()["cpu"]:
        assert _library.has_kernel("fused_batch_norm", "cpu")


# ------------------------------------------------------------------------------ opcheck


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_opcheck(device, layout, dtype):
    _require_kernel(device)
    x, axis = _make((4, 3, 5, 6), layout, dtype, device)
    x.requires_grad_()
    weight, bias, mean, var = _params(3, torch.float32, device)
    weight.requires_grad_()
    bias.requires_grad_()
    torch.library.opcheck(
        torch.ops.ktorch.fused_batch_norm.default, (x, weight, bias, mean, var, axis, 0.9, 1e-3)
    )
    torch.library.opcheck(
        torch.ops.ktorch.fused_batch_norm.default, (x, None, None, None, None, axis, 0.9, 1e-3)
    )
    torch.library.opcheck(
        torch.ops.ktorch.fused_batch_norm_inference.default,
        (x, weight, bias, mean, var, axis, 1e-3),
    )
    _, save_mean, save_invstd = _train(x.detach(), weight.detach(), bias.detach(), None, None, axis)
    grad = torch.randn_like(x).detach()
    for training in (True, False):
        for mask in ([True, True, True], [False, True, False], [True, False, False]):
            torch.library.opcheck(
                torch.ops.ktorch.fused_batch_norm_backward.default,
                (grad, x.detach(), weight.detach(), save_mean, save_invstd, axis, training, mask),
            )


# ----------------------------------------------------------------------- forward parity


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spatial", SPATIAL)
def test_training_forward_matches_reference(device, dtype, layout, spatial):
    _require_kernel(device)
    x, axis = _make((6, 5, *spatial), layout, dtype, device)
    weight, bias, mean, var = _params(5, dtype, device)
    ref_mean, ref_var = mean.clone(), var.clone()
    out, save_mean, save_invstd = _train(x, weight, bias, mean, var, axis, momentum=0.8)
    expected, exp_mean, exp_invstd = B.fused_batch_norm_reference(
        x, weight, bias, ref_mean, ref_var, axis, 0.8, 1e-3
    )
    tol = _tolerances(dtype)
    torch.testing.assert_close(out, expected, **tol)
    torch.testing.assert_close(save_mean, exp_mean, **tol)
    torch.testing.assert_close(save_invstd, exp_invstd, **tol)
    torch.testing.assert_close(mean, ref_mean, **tol)
    torch.testing.assert_close(var, ref_var, **tol)
    assert out.stride() == x.stride()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spatial", SPATIAL)
def test_inference_forward_matches_reference(device, dtype, layout, spatial):
    _require_kernel(device)
    x, axis = _make((6, 5, *spatial), layout, dtype, device)
    weight, bias, mean, var = _params(5, dtype, device)
    out = _infer(x, weight, bias, mean, var, axis)
    expected = B.fused_batch_norm_inference_reference(x, weight, bias, mean, var, axis, 1e-3)
    torch.testing.assert_close(out, expected, **_tolerances(dtype))
    assert out.stride() == x.stride()


def _as_ncx(t: torch.Tensor, axis: int) -> torch.Tensor:
    return t if axis == 1 else t.movedim(-1, 1)


def _from_ncx(t: torch.Tensor, axis: int) -> torch.Tensor:
    return t if axis == 1 else t.movedim(1, -1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spatial", SPATIAL)
def test_matches_torch_batch_norm(device, layout, spatial):
    _require_kernel(device)
    x, axis = _make((8, 4, *spatial), layout, torch.float32, device, scale=3.0, shift=-1.0)
    weight, bias, mean, var = _params(4, torch.float32, device)
    initial_var = var.clone()
    torch_mean, torch_var = mean.clone(), var.clone()
    momentum = 0.9
    out = _train(x, weight, bias, mean, var, axis, momentum=momentum, eps=1e-5)[0]
    # torch's momentum weighs the new value: 1 - Keras's momentum.
    expected = F.batch_norm(
        _as_ncx(x, axis), torch_mean, torch_var, weight, bias, True, 1 - momentum, 1e-5
    )
    torch.testing.assert_close(_as_ncx(out, axis), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mean, torch_mean, atol=1e-6, rtol=1e-6)
    # torch moves the variance with the unbiased batch variance, Keras with the biased one.
    count = x.numel() // 4
    moved = momentum * initial_var
    keras_var = moved + (torch_var - moved) * ((count - 1) / count)
    torch.testing.assert_close(var, keras_var, atol=1e-5, rtol=1e-5)
    inference = _infer(x, weight, bias, mean, var, axis, eps=1e-5)
    expected = F.batch_norm(_as_ncx(x, axis), mean, var, weight, bias, False, 0.0, 1e-5)
    torch.testing.assert_close(_as_ncx(inference, axis), expected, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- gradients


def _grads(fn, tensors, grad_out):
    tensors = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*tensors)
    return out.detach(), torch.autograd.grad(out, tensors, grad_out)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spatial", SPATIAL)
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_reference_and_torch(device, layout, spatial, training):
    _require_kernel(device)
    x, axis = _make((6, 5, *spatial), layout, torch.float32, device)
    weight, bias, mean, var = _params(5, torch.float32, device)
    grad_out = _make((6, 5, *spatial), layout, torch.float32, device, seed=7)[0]

    def kernel(x, weight, bias):
        if training:
            return _train(x, weight, bias, None, None, axis, eps=1e-5)[0]
        return _infer(x, weight, bias, mean, var, axis, eps=1e-5)

    def reference(x, weight, bias):
        if training:
            return B.fused_batch_norm_reference(x, weight, bias, None, None, axis, 0.9, 1e-5)[0]
        return B.fused_batch_norm_inference_reference(x, weight, bias, mean, var, axis, 1e-5)

    def native(x, weight, bias):
        if training:
            out = F.batch_norm(_as_ncx(x, axis), None, None, weight, bias, True, 0.0, 1e-5)
        else:
            out = F.batch_norm(_as_ncx(x, axis), mean, var, weight, bias, False, 0.0, 1e-5)
        return _from_ncx(out, axis)

    out, grads = _grads(kernel, (x, weight, bias), grad_out)
    for other in (reference, native):
        expected_out, expected = _grads(other, (x, weight, bias), grad_out)
        torch.testing.assert_close(out, expected_out, atol=1e-5, rtol=1e-5)
        for got, want in zip(grads, expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert grads[0].stride() == x.stride()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spatial", [(), (3,), (2, 3)])
def test_gradcheck(device, layout, spatial):
    _require_kernel(device)
    x, axis = _make((4, 3, *spatial), layout, torch.float64, device)
    weight, bias, mean, var = _params(3, torch.float64, device)
    inputs = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    assert torch.autograd.gradcheck(
        lambda x, w, b: _train(x, w, b, None, None, axis)[0], inputs, atol=1e-7
    )
    assert torch.autograd.gradcheck(
        lambda x: _train(x, None, None, None, None, axis)[0], inputs[:1]
    )
    stats = [t.detach().clone().requires_grad_() for t in (mean, var)]
    # In inference the moving statistics are inputs like any other.
    assert torch.autograd.gradcheck(
        lambda x, w, b, m, v: _infer(x, w, b, m, v, axis), inputs + stats, atol=1e-7
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False])
def test_backward_op_matches_reference(device, training):
    _require_kernel(device)
    for layout in LAYOUTS:
        x, axis = _make((5, 4, 3, 3), layout, torch.float32, device)
        grad = _make((5, 4, 3, 3), layout, torch.float32, device, seed=3)[0]
        weight = _params(4, device=device)[0]
        _, mean, invstd = _train(x, weight, None, None, None, axis)
        for mask in ((True, True, True), (True, False, False), (False, True, True)):
            got = _backward(grad, x, weight, mean, invstd, axis, training, mask)
            want = B.fused_batch_norm_backward_reference(
                grad, x, weight, mean, invstd, axis, training, list(mask)
            )
            for g, w, needed in zip(got, want, mask, strict=True):
                assert (g.numel() > 0) == needed
                torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_double_backward_of_train_op(device, layout):
    # create_graph=True (gradient penalties): the gradients themselves are differentiable.
    _require_kernel(device)
    x, axis = _make((4, 3, 2, 3), layout, torch.float64, device)
    weight, bias, _, _ = _params(3, torch.float64, device)
    inputs = tuple(t.detach().requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradgradcheck(
        lambda t, w, b: _train(t, w, b, None, None, axis)[0], inputs
    )
    # Without weight and bias, and with the moving statistics updated (not differentiated).
    mean = torch.zeros(3, dtype=torch.float64, device=device)
    var = torch.ones_like(mean)
    assert torch.autograd.gradgradcheck(
        lambda t: _train(t, None, None, mean, var, axis)[0], inputs[:1]
    )


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_of_inference_op(device):
    _require_kernel(device)
    x, axis = _make((4, 3, 2, 3), "channels_last", torch.float64, device)
    weight, bias, mean, var = _params(3, torch.float64, device)
    inputs = tuple(t.detach().requires_grad_() for t in (x, weight, bias, mean, var))
    assert torch.autograd.gradgradcheck(lambda *a: _infer(*a, axis), inputs)


def test_double_backward_matches_reference_in_float32():
    _require_kernel("cpu")
    x, axis = _make((6, 4, 5), "keras_last", torch.float32)
    weight, bias, _, _ = _params(4)
    results = []
    for forward in (
        lambda *a: _train(*a, None, None, axis)[0],
        lambda *a: B.fused_batch_norm_reference(*a, None, None, axis, 0.9, 1e-3)[0],
    ):
        leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
        out = forward(*leaves)
        grads = torch.autograd.grad((out * out).sum() + out.sum(), leaves, create_graph=True)
        penalty = sum((g * g).sum() for g in grads)
        results.append(torch.autograd.grad(penalty, leaves))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_backward_op_itself_is_first_order_only():
    _require_kernel("cpu")
    x = torch.randn(4, 3, dtype=torch.float64)
    _, mean, invstd = _train(x, None, None, None, None, 1)
    grad = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    grad_x = _backward(grad, x, None, mean, invstd, 1, True, (True, False, False))[0]
    with pytest.raises(RuntimeError, match="differentiate ktorch::fused_batch_norm"):
        grad_x.sum().backward()


# ----------------------------------------------------------------- layouts and statistics


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spatial", [(6, 7), (3, 4, 5)])
def test_channels_last_matches_contiguous_and_keeps_format(device, spatial):
    _require_kernel(device)
    contiguous, _ = _make((4, 8, *spatial), "channels_first", device=device)
    last, _ = _make((4, 8, *spatial), "channels_last", device=device)
    memory_format = torch.channels_last if len(spatial) == 2 else torch.channels_last_3d
    assert last.is_contiguous(memory_format=memory_format)
    results = []
    for x in (contiguous, last):
        weight, bias, mean, var = _params(8, device=device)
        x = x.detach().requires_grad_()
        out = _train(x, weight, bias, mean, var, 1)[0]
        (grad,) = torch.autograd.grad(out, x, torch.ones_like(out) + out.detach())
        results.append((out.detach(), grad, mean, var))
    assert results[1][0].is_contiguous(memory_format=memory_format)
    assert results[1][1].is_contiguous(memory_format=memory_format)
    assert results[0][0].is_contiguous()
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_moving_statistics_follow_keras_rule(device):
    _require_kernel(device)
    x, axis = _make((16, 3, 4), "channels_first", device=device, scale=3.0, shift=2.0)
    mean = torch.full((3,), 0.5, device=device)
    var = torch.full((3,), 2.0, device=device)
    _train(x, None, None, mean, var, axis, momentum=0.7)
    batch_mean = x.mean((0, 2))
    batch_var = x.var((0, 2), unbiased=False)
    torch.testing.assert_close(mean, 0.5 * 0.7 + batch_mean * 0.3)
    torch.testing.assert_close(var, 2.0 * 0.7 + batch_var * 0.3)
    before = mean._version
    _train(x, None, None, mean, var, axis)
    assert mean._version > before


@pytest.mark.parametrize("device", DEVICES)
def test_large_offset_is_numerically_safe(device):
    _require_kernel(device)
    # Mean 1e4 and std 1: a one-pass sum of squares in float32 would lose the variance.
    for layout in ("channels_first", "keras_last"):
        x, axis = _make((64, 4, 300), layout, device=device, scale=1.0, shift=1e4)
        _, _, invstd = _train(x, None, None, None, None, axis)
        dims = [d for d in range(3) if d != axis % 3]
        exact = x.double().var(dims, unbiased=False)
        torch.testing.assert_close(invstd.double(), (exact + 1e-3).rsqrt(), rtol=1e-4, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "shape_nc, layout",
    [
        ((4096, 64), "channels_first"),  # many row blocks and pieces
        ((37, 3, 9000), "channels_first"),  # rows longer than one two-pass piece
        ((3, 13, 41, 29), "channels_last"),
        ((1, 2, 1), "keras_last"),
    ],
)
def test_uneven_sizes_match_reference(device, shape_nc, layout, two_threads):
    _require_kernel(device)
    x, axis = _make(shape_nc, layout, device=device)
    channels = shape_nc[1]
    weight, bias, mean, var = _params(channels, device=device)
    ref_mean, ref_var = mean.clone(), var.clone()
    out, save_mean, save_invstd = _train(x, weight, bias, mean, var, axis)
    expected = B.fused_batch_norm_reference(x, weight, bias, ref_mean, ref_var, axis, 0.9, 1e-3)
    got = (out, save_mean, save_invstd, mean, var)
    for a, b in zip(got, (*expected, ref_mean, ref_var), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_of_one_gives_beta(device):
    _require_kernel(device)
    x = torch.randn(1, 3, device=device)
    _, bias, mean, var = _params(3, device=device)
    out = _train(x, None, bias, mean, var, -1, momentum=0.99)[0]
    torch.testing.assert_close(out, bias.expand(1, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(var, _params(3, device=device)[3] * 0.99)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("param_dtype", [torch.float32, "same"])
def test_half_precision_matches_reference(device, dtype, layout, param_dtype):
    _require_kernel(device)
    param_dtype = dtype if param_dtype == "same" else param_dtype
    x, axis = _make((8, 6, 5, 4), layout, dtype, device)
    weight, bias, mean, var = _params(6, param_dtype, device)
    ref_mean, ref_var = mean.clone(), var.clone()
    x = x.requires_grad_()
    out, save_mean, _ = _train(x, weight, bias, mean, var, axis)
    assert out.dtype == dtype and save_mean.dtype == torch.float32
    assert mean.dtype == param_dtype
    ref_x = x.detach().requires_grad_()
    expected = B.fused_batch_norm_reference(ref_x, weight, bias, ref_mean, ref_var, axis, 0.9, 1e-3)
    tol = _tolerances(dtype)
    torch.testing.assert_close(out, expected[0], **tol)
    torch.testing.assert_close(mean, ref_mean, **tol)
    torch.testing.assert_close(var, ref_var, **tol)
    grad = torch.randn_like(out)
    (got,) = torch.autograd.grad(out, x, grad)
    (want,) = torch.autograd.grad(expected[0], ref_x, grad)
    torch.testing.assert_close(got, want, **tol)
    inference = _infer(x.detach(), weight, bias, mean, var, axis)
    expected = B.fused_batch_norm_inference_reference(
        x.detach(), weight, bias, mean, var, axis, 1e-3
    )
    torch.testing.assert_close(inference, expected, **tol)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_cpu_and_cuda_kernels_agree(layout):
    _require_kernel("cpu")
    _require_kernel("cuda")
    x, axis = _make((32, 64, 14, 14), layout)
    results = []
    for device in ("cpu", "cuda"):
        weight, bias, mean, var = _params(64, device=device)
        out, save_mean, save_invstd = _train(x.to(device), weight, bias, mean, var, axis)
        results.append([t.cpu() for t in (out, save_mean, save_invstd, mean, var)])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------ Python wrapper


@pytest.mark.parametrize("device", DEVICES)
def test_wrapper_matches_reference_backend(device, backend):
    _require_kernel(device)
    results = []
    for name in ("kernel", "reference"):
        backend(name)
        x, axis = _make((6, 4, 5, 5), "channels_last", device=device)
        x.requires_grad_()
        weight, bias, mean, var = _params(4, device=device)
        weight.requires_grad_()
        bias.requires_grad_()
        out = ktorch.ops.fused_batch_norm(
            x, mean, var, weight, bias, axis=axis, training=True, momentum=0.9
        )
        grads = torch.autograd.grad((out * out).sum(), (x, weight, bias))
        inference = ktorch.ops.fused_batch_norm(x, mean, var, weight, bias, axis=axis)
        results.append((out.detach(), *grads, mean, var, inference.detach()))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


def test_wrapper_copies_other_strides_and_kernel_rejects_them():
    _require_kernel("cpu")
    x = torch.randn(6, 5, 8)[:, :, ::2]
    with pytest.raises(RuntimeError, match=r"call \.contiguous\(\) on it first"):
        _train(x, None, None, None, None, 1)
    out = ktorch.ops.fused_batch_norm(x, None, None, axis=1, training=True)
    expected = B.fused_batch_norm_reference(x, None, None, None, None, 1, 0.99, 1e-3)[0]
    torch.testing.assert_close(out, expected)


def test_broadcast_gradient_is_accepted():
    _require_kernel("cpu")
    x = torch.randn(4, 3, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = ktorch.ops.fused_batch_norm(x, None, None, axis=1, training=True)
    (grad,) = torch.autograd.grad(out.sum(), x)  # a zero-stride gradient
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-5, rtol=0)
    assert grad.is_contiguous(memory_format=torch.channels_last)


def test_missing_kernel_falls_back_to_reference(monkeypatch, backend):
    x = torch.randn(8, 3)
    mean, var = torch.zeros(3), torch.ones(3)
    expected = ktorch.ops.fused_batch_norm(x, mean.clone(), var.clone(), training=True)
    monkeypatch.setattr(_library, "has_kernel", lambda op, device_type: False)
    calls = []
    reference = B.fused_batch_norm_reference
    monkeypatch.setattr(
        B, "fused_batch_norm_reference", lambda *a: calls.append(1) or reference(*a)
    )
    backend("auto")
    torch.testing.assert_close(ktorch.ops.fused_batch_norm(x, mean, var, training=True), expected)
    assert calls == [1]
    backend("kernel")
    with pytest.raises(RuntimeError, match="no cpu kernel for ktorch::fused_batch_norm"):
        ktorch.ops.fused_batch_norm(x, mean, var, training=True)


@pytest.mark.parametrize("name", ["reference", "kernel"])
def test_argument_errors(name, backend):
    if name == "kernel":
        _require_kernel("cpu")
    backend(name)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"argument axis.*Received: axis=2"):
        ktorch.ops.fused_batch_norm(x, None, None, axis=2, training=True)
    with pytest.raises(ValueError, match="Received: dtype=torch.int64"):
        ktorch.ops.fused_batch_norm(x.long(), None, None, training=True)
    with pytest.raises(ValueError, match="needs moving_mean and moving_variance"):
        ktorch.ops.fused_batch_norm(x, None, None)
    error = RuntimeError if name == "kernel" else ValueError
    with pytest.raises(error, match="at least one value per channel"):
        ktorch.ops.fused_batch_norm(torch.randn(0, 3), None, None, training=True)


def test_kernel_argument_errors():
    _require_kernel("cpu")
    x = torch.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"weight must be a vector of 3 values.*shape=\[4\]"):
        _train(x, torch.ones(4), None, None, None, 1)
    with pytest.raises(RuntimeError, match="Received: axis=5"):
        _train(x, None, None, None, None, 5)
    with pytest.raises(RuntimeError, match="must be float32, float64"):
        _infer(x.int(), None, None, torch.zeros(3), torch.ones(3), 1)
    with pytest.raises(RuntimeError, match="grad_out must have the shape and memory layout of x"):
        _backward(torch.ones(3, 4).t(), x, None, torch.zeros(3), torch.ones(3), 1, True)
    # Inference on an empty batch is an empty result.
    assert _infer(torch.randn(0, 3), None, None, torch.zeros(3), torch.ones(3), 1).shape == (0, 3)


@pytest.mark.slow
def test_compiles_with_torch_compile():
    _require_kernel("cpu")

    def step(x, weight, bias, mean, var):
        out = ktorch.ops.fused_batch_norm(
            x, mean, var, weight, bias, axis=1, training=True, momentum=0.9
        )
        return (out * out).sum()

    x, _ = _make((4, 3, 5, 5), "channels_last")
    weight, bias, mean, var = _params(3)
    eager_stats = (mean.clone(), var.clone())
    inputs = [t.clone().requires_grad_() for t in (x, weight, bias)]
    loss = step(*inputs, *eager_stats)
    expected = torch.autograd.grad(loss, inputs)
    compiled_inputs = [t.clone().requires_grad_() for t in (x, weight, bias)]
    loss_c = torch.compile(step, fullgraph=True)(*compiled_inputs, mean, var)
    got = torch.autograd.grad(loss_c, compiled_inputs)
    torch.testing.assert_close(loss_c, loss)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mean, eager_stats[0])
    torch.testing.assert_close(var, eager_stats[1])
