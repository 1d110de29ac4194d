"""Tests of ktorch::gru_sequence: the fused op against its pure-PyTorch reference."""

from __future__ import annotations

import itertools

import pytest
import torch

import ktorch.ops
from ktorch.layers import GRU
from ktorch.ops import _library
from ktorch.ops import gru as G

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
FLAGS = ("go_backwards", "reset_after", "return_sequences", "zero_output_for_mask")


def _require_kernel(device: str) -> None:
    if not _library.has_kernel("gru_sequence", device):
        pytest.skip(f"ktorch._C has no {device} kernel for gru_sequence")


@pytest.fixture
def backend():
    """Restores the ops backend after a test that changes it."""
    previous = ktorch.ops.get_backend()
    yield ktorch.ops.set_backend
    ktorch.ops.set_backend(previous)


def _case(
    batch=3,
    steps=6,
    features=4,
    units=5,
    reset_after=True,
    use_bias=True,
    masked=False,
    dtype=torch.float32,
    device="cpu",
    seed=0,
):
    """Inputs, weights and initial state (leaves requiring grad), and a mask or None."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        t = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
        return t.to(dtype=dtype, device=device).requires_grad_()

    bias_shape = (2, 3 * units) if reset_after else (3 * units,)
    tensors = [
        rand(batch, steps, features),
        rand(features, 3 * units, scale=0.5),
        rand(units, 3 * units, scale=0.5),
        rand(*bias_shape, scale=0.3) if use_bias else None,
        rand(batch, units),
    ]
    mask = None
    if masked:
        mask = torch.rand(batch, steps, generator=g) > 0.4
        mask[0] = False  # a row that is never updated
        mask[1, 0] = False  # a row that starts masked
        mask = mask.to(device)
    return tensors, mask


def _op(tensors, mask, **flags):
    # The reference's defaults.
    options = dict.fromkeys(FLAGS, False) | {"reset_after": True, "return_sequences": True} | flags
    return torch.ops.ktorch.gru_sequence.default(*tensors, mask, *(options[name] for name in FLAGS))


def _run_and_grads(fn, tensors, seed=1):
    """Outputs of fn and the gradients of a random projection of both of them."""
    output, h = fn()
    g = torch.Generator().manual_seed(seed)
    weight_out = torch.randn(output.shape, generator=g).to(output)
    weight_h = torch.randn(h.shape, generator=g).to(h)
    loss = (output * weight_out).sum() + (h * weight_h).sum()
    leaves = [t for t in tensors if t is not None]
    return output.detach(), h.detach(), torch.autograd.grad(loss.float(), leaves)


def _assert_matches_reference(tensors, mask, atol, rtol, **flags):
    def kernel():
        return _op(tensors, mask, **flags)[:2]

    def reference():
        return G.gru_sequence_reference(*tensors, mask, **flags)

    got_out, got_h, got_grads = _run_and_grads(kernel, tensors)
    want_out, want_h, want_grads = _run_and_grads(reference, tensors)
    torch.testing.assert_close(got_out, want_out, atol=atol, rtol=rtol)
    torch.testing.assert_close(got_h, want_h, atol=atol, rtol=rtol)
    for got, want in zip(got_grads, want_grads, strict=True):
        # Gradients sum over timesteps: compare relative to their scale.
        scale = max(1.0, float(want.abs().max()))
        torch.testing.assert_close(got, want, atol=atol * scale, rtol=rtol)


def test_cpu_kernel_is_built():
    _require_kernel("cpu")
    assert ktorch.ops.available()["cpu"], _library.load_error()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_opcheck(device, reset_after, masked, use_bias):
    _require_kernel(device)
    tensors, mask = _case(reset_after=reset_after, masked=masked, use_bias=use_bias, device=device)
    for go_backwards, return_sequences in [(False, True), (True, False)]:
        flags = (go_backwards, reset_after, return_sequences, masked)
        torch.library.opcheck(torch.ops.ktorch.gru_sequence.default, (*tensors, mask, *flags))
    output, h, states, gates = _op(tensors, mask, reset_after=reset_after, return_sequences=True)
    grads = (torch.randn_like(output), torch.randn_like(h))
    x, kernel, recurrent = (t.detach() for t in tensors[:3])
    flags = (False, reset_after, True, False)
    for grad_inputs_needed in (True, False):
        args = (*grads, x, kernel, recurrent, mask, states, gates, *flags, grad_inputs_needed)
        torch.library.opcheck(torch.ops.ktorch.gru_sequence_backward.default, args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_matches_reference_float32(device, reset_after, masked, go_backwards, use_bias):
    _require_kernel(device)
    tensors, mask = _case(
        batch=4,
        steps=7,
        features=6,
        units=8,
        reset_after=reset_after,
        use_bias=use_bias,
        masked=masked,
        device=device,
    )
    for return_sequences, zero_output in itertools.product([True, False], [False, True]):
        if zero_output and not masked:
            continue
        _assert_matches_reference(
            tensors,
            mask,
            atol=1e-5,
            rtol=1e-5,
            reset_after=reset_after,
            go_backwards=go_backwards,
            return_sequences=return_sequences,
            zero_output_for_mask=zero_output,
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reset_after", [True, False])
def test_matches_reference_larger_float32(device, reset_after):
    # Several threads' worth of rows per step and more units than one vector register holds.
    _require_kernel(device)
    tensors, mask = _case(
        batch=70, steps=12, features=9, units=67, reset_after=reset_after, masked=True,
        device=device,
    )  # fmt: skip
    _assert_matches_reference(
        tensors, mask, atol=1e-5, rtol=1e-5, reset_after=reset_after, return_sequences=True
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reset_after", [True, False])
def test_matches_reference_half_precision(device, dtype, reset_after):
    _require_kernel(device)
    tensors, mask = _case(reset_after=reset_after, masked=True, dtype=dtype, device=device)
    # The kernel computes each step in float32 and rounds once; the reference rounds every op.
    tol = 2e-2 if dtype == torch.float16 else 8e-2
    _assert_matches_reference(
        tensors, mask, atol=tol, rtol=tol, reset_after=reset_after, return_sequences=True
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_float64(device, reset_after, masked):
    _require_kernel(device)
    tensors, mask = _case(
        batch=2, steps=3, features=3, units=2, reset_after=reset_after, masked=masked,
        dtype=torch.float64, device=device,
    )  # fmt: skip

    for go_backwards, return_sequences in [(False, True), (True, False)]:

        def fn(*leaves, go_backwards=go_backwards, return_sequences=return_sequences):
            output, h, _, _ = _op(
                leaves,
                mask,
                reset_after=reset_after,
                go_backwards=go_backwards,
                return_sequences=return_sequences,
                zero_output_for_mask=masked,
            )
            return output, h

        assert torch.autograd.gradcheck(fn, tuple(tensors))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reset_after", [True, False])
def test_gradgradcheck_float64(device, reset_after):
    # create_graph=True (gradient penalties): the op's gradients are themselves differentiable.
    _require_kernel(device)
    tensors, mask = _case(
        batch=2, steps=3, features=2, units=2, reset_after=reset_after, masked=True,
        dtype=torch.float64, device=device,
    )  # fmt: skip

    def fn(*leaves):
        return _op(leaves, mask, reset_after=reset_after, go_backwards=True)[:2]

    assert torch.autograd.gradgradcheck(fn, tuple(tensors))


def test_first_order_backward_runs_the_kernel(monkeypatch):
    _require_kernel("cpu")
    tensors, mask = _case(masked=True)
    expected = _run_and_grads(lambda: _op(tensors, mask)[:2], tensors)[2]

    def unexpected(*args, **kwargs):
        raise AssertionError("the reference ran in a first-order backward")

    monkeypatch.setattr(G, "gru_sequence_reference", unexpected)
    got = _run_and_grads(lambda: _op(tensors, mask)[:2], tensors)[2]
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_gradcheck_without_bias():
    _require_kernel("cpu")
    for reset_after in (True, False):
        tensors, mask = _case(
            batch=2, steps=3, features=3, units=2, reset_after=reset_after, use_bias=False,
            masked=True, dtype=torch.float64,
        )  # fmt: skip
        leaves = [tensors[i] for i in (0, 1, 2, 4)]

        def fn(x, kernel, recurrent, h0, reset_after=reset_after, mask=mask):
            return _op((x, kernel, recurrent, None, h0), mask, reset_after=reset_after)[:2]

        assert torch.autograd.gradcheck(fn, tuple(leaves))


def test_float64_matches_reference_exactly_enough():
    _require_kernel("cpu")
    for reset_after, masked in itertools.product([True, False], [True, False]):
        tensors, mask = _case(reset_after=reset_after, masked=masked, dtype=torch.float64)
        _assert_matches_reference(
            tensors,
            mask,
            atol=1e-12,
            rtol=1e-12,
            reset_after=reset_after,
            go_backwards=masked,
            return_sequences=True,
        )


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradient_of_one_output_only(reset_after):
    _require_kernel("cpu")
    tensors, mask = _case(reset_after=reset_after, masked=True)
    leaves = [t for t in tensors if t is not None]
    for pick in (0, 1):
        got = torch.autograd.grad(_op(tensors, mask, reset_after=reset_after)[pick].sum(), leaves)
        want = torch.autograd.grad(
            G.gru_sequence_reference(*tensors, mask, reset_after=reset_after)[pick].sum(),
            leaves,
        )
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_inputs_without_gradient():
    # A first layer: only the weights and the initial state need gradients.
    _require_kernel("cpu")
    tensors, mask = _case(masked=True)
    tensors[0] = tensors[0].detach()
    leaves = tensors[1:]
    got = torch.autograd.grad(_op(tensors, mask)[0].sum(), leaves)
    want = torch.autograd.grad(G.gru_sequence_reference(*tensors, mask)[0].sum(), leaves)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_saturated_and_non_finite_inputs(reset_after):
    # Pre-activations far beyond where sigmoid and tanh saturate, and NaN / inf inputs: the
    # kernel's float sigmoid and tanh must saturate and propagate like torch's.
    _require_kernel("cpu")
    tensors, _ = _case(units=37, reset_after=reset_after)
    x, kernel, recurrent, bias, h0 = (t.detach() for t in tensors)
    for scale in (1e-4, 30.0, 1e3):
        args = (x * scale, kernel, recurrent, bias, h0)
        got = _op(args, None, reset_after=reset_after)[0]
        want = G.gru_sequence_reference(*args, reset_after=reset_after)[0]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    x = x.clone()
    x[1, 2, 0] = float("nan")
    x[2, 1, 1] = float("inf")
    x[0, 3, 2] = -float("inf")
    args = (x, kernel, recurrent, bias, h0)
    got = _op(args, None, reset_after=reset_after)[0]
    want = G.gru_sequence_reference(*args, reset_after=reset_after)[0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, equal_nan=True)


def test_saved_activations_are_not_differentiable():
    _require_kernel("cpu")
    tensors, mask = _case()
    output, h, states, gates = _op(tensors, mask)
    assert output.requires_grad and h.requires_grad
    assert not states.requires_grad and not gates.requires_grad
    assert states.shape == (7, 3, 5) and gates.shape == (6, 3, 20)
    torch.testing.assert_close(states[0], tensors[4].detach())
    torch.testing.assert_close(states[-1], h.detach())


def test_non_contiguous_arguments():
    _require_kernel("cpu")
    tensors, _ = _case(units=4)
    x, kernel, recurrent, bias, h0 = (t.detach() for t in tensors)
    strided = (
        x.transpose(0, 1).contiguous().transpose(0, 1),
        kernel.t().contiguous().t(),
        recurrent.t().contiguous().t(),
        bias,
        h0.t().contiguous().t(),
    )
    assert not strided[0].is_contiguous() and not strided[2].is_contiguous()
    got = _op(strided, None)
    want = _op((x, kernel, recurrent, bias, h0), None)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_batch_of_zero():
    _require_kernel("cpu")
    tensors, _ = _case(batch=0)
    output, h = _run_and_grads(lambda: _op(tensors, None)[:2], tensors)[:2]
    assert output.shape == (0, 6, 5) and h.shape == (0, 5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_wrapper_backends_agree(reset_after, backend):
    _require_kernel("cpu")
    tensors, mask = _case(reset_after=reset_after, masked=True)
    results = []
    for name in ("kernel", "reference"):
        backend(name)
        results.append(
            _run_and_grads(
                lambda: G.gru_sequence(*tensors, mask.float(), reset_after=reset_after), tensors
            )
        )
    (out_k, h_k, grads_k), (out_r, h_r, grads_r) = results
    torch.testing.assert_close(out_k, out_r)
    torch.testing.assert_close(h_k, h_r)
    for a, b in zip(grads_k, grads_r, strict=True):
        torch.testing.assert_close(a, b)


def test_missing_kernel_falls_back_to_reference(monkeypatch, backend):
    tensors, mask = _case(masked=True)
    expected = G.gru_sequence_reference(*tensors, mask)
    monkeypatch.setattr(_library, "has_kernel", lambda op, device_type: False)
    calls = []
    reference = G.gru_sequence_reference
    monkeypatch.setattr(
        G, "gru_sequence_reference", lambda *a, **k: calls.append(1) or reference(*a, **k)
    )
    backend("auto")
    got = G.gru_sequence(*tensors, mask)
    assert calls == [1]
    torch.testing.assert_close(got[0], expected[0])
    backend("kernel")
    with pytest.raises(RuntimeError, match="no cpu kernel for ktorch::gru_sequence"):
        G.gru_sequence(*tensors, mask)


def test_argument_errors():
    _require_kernel("cpu")
    tensors, mask = _case()
    x, kernel, recurrent, bias, h0 = (t.detach() for t in tensors)
    with pytest.raises(RuntimeError, match=r"argument kernel must have shape \[4, 15\]"):
        _op((x, kernel[:, :-1], recurrent, bias, h0), None)
    with pytest.raises(RuntimeError, match=r"argument bias must have shape \[15\]"):
        _op((x, kernel, recurrent, bias, h0), None, reset_after=False)
    with pytest.raises(RuntimeError, match=r"argument h0 must have shape \[3, 5\]"):
        _op((x, kernel, recurrent, bias, h0[:2]), None)
    with pytest.raises(RuntimeError, match="argument mask must be a bool tensor"):
        _op((x, kernel, recurrent, bias, h0), torch.ones(3, 6))
    with pytest.raises(RuntimeError, match="argument kernel must have the dtype of inputs"):
        _op((x, kernel.double(), recurrent, bias, h0), None)
    with pytest.raises(RuntimeError, match="at least one timestep"):
        _op((x[:, :0], kernel, recurrent, bias, h0), None)
    with pytest.raises(RuntimeError, match="must be float32, float64, float16 or bfloat16"):
        _op((x.long(), kernel, recurrent, bias, h0), None)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("unroll", [False, True])
def test_layer_runs_the_op_for_default_activations(monkeypatch, activation, unroll):
    _require_kernel("cpu")
    calls = []
    op = torch.ops.ktorch.gru_sequence.default

    class Counting:
        default = staticmethod(lambda *a: calls.append(1) or op(*a))

    monkeypatch.setattr(torch.ops.ktorch, "gru_sequence", Counting, raising=False)
    layer = GRU(5, activation=activation, unroll=unroll, return_sequences=True)
    x = torch.randn(2, 4, 3)
    output = layer(x)
    assert calls == ([1] if activation == "tanh" and not unroll else [])
    cell = layer.cell
    expected, _ = G.gru_sequence_reference(
        x,
        cell.kernel,
        cell.recurrent_kernel,
        cell.bias,
        torch.zeros(2, 5),
        activation=cell.activation,
    )
    torch.testing.assert_close(output, expected)


def test_layer_mixed_precision_weights():
    _require_kernel("cpu")
    layer = GRU(4, return_sequences=True)
    x = torch.randn(2, 3, 5)
    expected = layer(x)
    layer.autocast = False
    got = layer(x.to(torch.bfloat16))
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, atol=5e-2, rtol=5e-2)


@pytest.mark.slow
def test_op_compiles_with_torch_compile():
    _require_kernel("cpu")
    tensors, mask = _case(masked=True)

    def fn(*leaves):
        output, h = G.gru_sequence(*leaves, mask, return_sequences=True)
        return output.sum() + h.sum()

    # No compile caches: they key on the traced forward, not on the op's backward, so a cache
    # written before a change of the op would be replayed.
    import torch._inductor.config as inductor_config

    with inductor_config.patch(force_disable_caches=True):
        compiled = torch.compile(fn, fullgraph=True)
        got = compiled(*tensors)
        grads = torch.autograd.grad(got, tensors)
    want = fn(*tensors)
    torch.testing.assert_close(got, want)
    for a, b in zip(grads, torch.autograd.grad(want, tensors), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("reset_after", [True, False])
def test_cpu_and_cuda_kernels_agree(reset_after):
    _require_kernel("cpu")
    _require_kernel("cuda")
    tensors, mask = _case(batch=33, steps=9, units=40, reset_after=reset_after, masked=True)
    cuda = [t.detach().cuda().requires_grad_() if t is not None else None for t in tensors]
    got_out, got_h, got_grads = _run_and_grads(
        lambda: _op(cuda, mask.cuda(), reset_after=reset_after, return_sequences=True)[:2], cuda
    )
    want_out, want_h, want_grads = _run_and_grads(
        lambda: _op(tensors, mask, reset_after=reset_after, return_sequences=True)[:2], tensors
    )
    torch.testing.assert_close(got_out.cpu(), want_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_h.cpu(), want_h, atol=1e-5, rtol=1e-5)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-4)
