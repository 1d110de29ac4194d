"""Tests of ktorch::lstm_sequence: the kernels against the pure-PyTorch reference."""

from __future__ import annotations

import pytest
import torch

import ktorch.ops
from ktorch.ops import _library
from ktorch.ops import lstm as L

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
# (masked, go_backwards, zero_output_for_mask, use_bias)
OPTIONS = [
    (False, False, False, True),
    (False, True, False, True),
    (False, False, False, False),
    (True, False, False, True),
    (True, True, False, True),
    (True, False, True, True),
    (True, True, True, False),
]
OPTION_IDS = ["plain", "backwards", "no_bias", "mask", "mask_backwards", "zero_out", "all"]


def _require_kernel(device: str) -> None:
    if not ktorch.ops.available()[device]:
        pytest.skip(f"ktorch._C has no {device} kernel")


def _problem(
    batch=4,
    steps=7,
    features=3,
    units=5,
    masked=False,
    use_bias=True,
    dtype=torch.float32,
    device="cpu",
    seed=0,
):
    """Inputs, weights and states of a small LSTM problem (Keras layout), and a mask."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    tensors = [
        rand(batch, steps, features),
        rand(features, 4 * units, scale=0.5),
        rand(units, 4 * units, scale=0.5),
        rand(4 * units, scale=0.5) if use_bias else None,
        rand(batch, units),
        rand(batch, units),
    ]
    tensors = [None if t is None else t.to(device).requires_grad_() for t in tensors]
    mask = None
    if masked:
        mask = torch.rand(batch, steps, generator=g) > 0.4
        mask[0] = False  # a fully masked sequence
        mask[1, 0] = False  # a masked first step
        mask[1, -1] = False  # a masked last step
        mask[2] = True
        mask = mask.to(device)
    return tensors, mask


def _op(args):
    return torch.ops.ktorch.lstm_sequence.default(*args)


def _grads(outputs, leaves, seed=1):
    """Gradients of a random weighting of `outputs` with respect to `leaves`."""
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o.shape, generator=g).to(o) for o in outputs]
    loss = sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))
    present = [t for t in leaves if t is not None]
    grads = iter(torch.autograd.grad(loss, present))
    return [None if t is None else next(grads) for t in leaves]


@pytest.fixture
def backend():
    """Restores the ops backend after a test that changes it."""
    previous = ktorch.ops.get_backend()
    yield ktorch.ops.set_backend
    ktorch.ops.set_backend(previous)


def test_kernels_are_listed():
    assert "lstm_sequence" in _library.OPS and "lstm_sequence_backward" in _library.OPS
    assert ktorch.ops.lstm_sequence is L.lstm_sequence


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "options", [OPTIONS[0], OPTIONS[4], OPTIONS[6]], ids=["plain", "mask_backwards", "all"]
)
def test_opcheck(device, options):
    _require_kernel(device)
    masked, go_backwards, zero_output, use_bias = options
    tensors, mask = _problem(masked=masked, use_bias=use_bias, device=device)
    args = (*tensors, mask, go_backwards, zero_output)
    torch.library.opcheck(torch.ops.ktorch.lstm_sequence.default, args)
    detached = [None if t is None else t.detach() for t in tensors]
    _, _, _, gates, h_prev, c_seq = _op((*detached, mask, go_backwards, zero_output))
    x, kernel, recurrent, _, _, c0 = detached
    grad_out = torch.randn(4, 7, 5, device=device)
    grad_h = torch.randn(4, 5, device=device)
    for grads, compute_inputs in (((grad_out, grad_h, None), True), ((None, None, grad_h), False)):
        torch.library.opcheck(
            torch.ops.ktorch.lstm_sequence_backward.default,
            (*grads, x, kernel, recurrent, c0, mask, gates, h_prev, c_seq)
            + (go_backwards, zero_output, compute_inputs),
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
def test_forward_and_gradients_match_reference(device, options):
    _require_kernel(device)
    masked, go_backwards, zero_output, use_bias = options
    tensors, mask = _problem(masked=masked, use_bias=use_bias, device=device)
    args = (*tensors, mask, go_backwards, zero_output)
    got = _op(args)[:3]
    expected = L.lstm_sequence_reference(*args)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    for g, e in zip(_grads(got, tensors), _grads(expected, tensors), strict=True):
        if e is None:
            assert g is None
            continue
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_masked_steps_follow_keras_rules():
    _require_kernel("cpu")
    tensors, mask = _problem(masked=True)
    out, h, c, *_ = _op((*tensors, mask, False, False))
    out = out.detach()
    # Sequence 0 is fully masked: zero outputs, initial states returned.
    assert not out[0].any()
    torch.testing.assert_close(h[0], tensors[4][0])
    torch.testing.assert_close(c[0], tensors[5][0])
    # Sequence 1 starts masked (zero output) and ends masked (repeats the previous output).
    assert not out[1, 0].any()
    torch.testing.assert_close(out[1, -1], out[1, -2])
    zero_out = _op((*tensors, mask, False, True))[0].detach()
    assert not zero_out[~mask].any()
    torch.testing.assert_close(zero_out[mask], out[mask])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
def test_gradcheck(device, options):
    _require_kernel(device)
    masked, go_backwards, zero_output, use_bias = options
    tensors, mask = _problem(
        batch=3,
        steps=4,
        features=2,
        units=3,
        masked=masked,
        use_bias=use_bias,
        dtype=torch.float64,
        device=device,
    )

    def run(*leaves):
        return _op((*leaves, mask, go_backwards, zero_output))[:3]

    if not use_bias:
        x, kernel, recurrent, _, h0, c0 = tensors
        assert torch.autograd.gradcheck(
            lambda x, k, r, h, c: run(x, k, r, None, h, c), (x, kernel, recurrent, h0, c0)
        )
        return
    assert torch.autograd.gradcheck(run, tuple(tensors))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "options", [OPTIONS[0], OPTIONS[4], OPTIONS[6]], ids=["plain", "mask_backwards", "all"]
)
def test_gradgradcheck(device, options):
    # create_graph=True (gradient penalties): the op's gradients are themselves differentiable.
    _require_kernel(device)
    masked, go_backwards, zero_output, use_bias = options
    tensors, mask = _problem(
        batch=3, steps=3, features=2, units=2, masked=masked, use_bias=use_bias,
        dtype=torch.float64, device=device,
    )  # fmt: skip
    present = [i for i, t in enumerate(tensors) if t is not None]

    def run(*leaves):
        args = list(tensors)
        for i, leaf in zip(present, leaves, strict=True):
            args[i] = leaf
        return _op((*args, mask, go_backwards, zero_output))[:3]

    assert torch.autograd.gradgradcheck(run, tuple(tensors[i] for i in present))


def test_first_order_backward_runs_the_kernel(monkeypatch):
    _require_kernel("cpu")
    tensors, mask = _problem(masked=True)
    expected = _grads(_op((*tensors, mask, False, False))[:3], tensors)

    def unexpected(*args, **kwargs):
        raise AssertionError("the reference ran in a first-order backward")

    monkeypatch.setattr(L, "lstm_sequence_reference", unexpected)
    got = _grads(_op((*tensors, mask, False, False))[:3], tensors)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_close_to_float32_reference(device, dtype):
    _require_kernel(device)
    tensors, mask = _problem(batch=6, steps=9, units=8, masked=True, device=device)
    low = [None if t is None else t.detach().to(dtype).requires_grad_() for t in tensors]
    # The reference in float32 on the values the kernel sees after rounding.
    ref_leaves = [None if t is None else t.detach().float().requires_grad_() for t in low]
    got = _op((*low, mask, True, False))[:3]
    expected = L.lstm_sequence_reference(*ref_leaves, mask, True, False)
    tol = {"atol": 2e-2, "rtol": 2e-2} if dtype == torch.float16 else {"atol": 6e-2, "rtol": 6e-2}
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == dtype
        torch.testing.assert_close(g.float(), e, **tol)
    for g, e in zip(_grads(got, low), _grads(expected, ref_leaves), strict=True):
        assert g.dtype == dtype
        torch.testing.assert_close(g.float(), e, **tol)


def test_gradient_through_final_states_only():
    _require_kernel("cpu")
    tensors, mask = _problem(masked=True)
    for index in (1, 2):
        got = _op((*tensors, mask, False, False))[index]
        expected = L.lstm_sequence_reference(*tensors, mask, False, False)[index]
        for g, e in zip(_grads([got], tensors), _grads([expected], tensors), strict=True):
            torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def test_inputs_without_grad_get_none():
    _require_kernel("cpu")
    tensors, _ = _problem()
    x = tensors[0].detach()
    out, h, c = ktorch.ops.lstm_sequence(x, *tensors[1:])
    grads = torch.autograd.grad(out.sum() + c.sum(), tensors[1:])
    expected = torch.autograd.grad(
        sum(t.sum() for t in L.lstm_sequence_reference(x, *tensors[1:])[::2]), tensors[1:]
    )
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    assert x.grad is None


def test_large_preactivations_saturate_cleanly():
    _require_kernel("cpu")
    tensors, mask = _problem(masked=True)
    with torch.no_grad():
        tensors[1].mul_(300.0)
    got = _op((*tensors, mask, False, False))[:3]
    expected = L.lstm_sequence_reference(*tensors, mask, False, False)
    for g, e in zip(got, expected, strict=True):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    for g, e in zip(_grads(got, tensors), _grads(expected, tensors), strict=True):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("steps", [0, 1])
def test_short_sequences(steps):
    _require_kernel("cpu")
    tensors, _ = _problem(steps=steps)
    got = _op((*tensors, None, False, False))[:3]
    expected = L.lstm_sequence_reference(*tensors)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-6)


def test_wide_batch_runs_in_parallel_and_matches():
    _require_kernel("cpu")
    tensors, mask = _problem(batch=70, steps=5, units=40, masked=True)
    got = _op((*tensors, mask, True, False))[:3]
    expected = L.lstm_sequence_reference(*tensors, mask, True, False)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    for g, e in zip(_grads(got, tensors), _grads(expected, tensors), strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (1, torch.zeros(3, 19), r"kernel must have shape \[3, 20\]"),
        (2, torch.zeros(5, 20, dtype=torch.float64), "recurrent_kernel must have the dtype"),
        (4, torch.zeros(4, 6), r"h0 must have shape \[4, 5\]"),
        (5, torch.zeros(5, 4).t(), "c0 must be contiguous"),
        (0, torch.zeros(4, 7, 3, dtype=torch.int32), "inputs must be float32"),
    ],
)
def test_kernel_rejects_bad_arguments(index, value, message):
    _require_kernel("cpu")
    tensors, _ = _problem()
    args = [None if t is None else t.detach() for t in tensors]
    args[index] = value
    with pytest.raises(RuntimeError, match=message):
        _op((*args, None, False, False))
    with pytest.raises(RuntimeError, match=r"mask must have shape \(batch, timesteps\)"):
        _op(
            (
                *[None if t is None else t.detach() for t in tensors],
                torch.ones(4, 6, dtype=torch.bool),
                False,
                False,
            )
        )


@pytest.mark.parametrize("device", DEVICES)
def test_backends_agree(device, backend):
    _require_kernel(device)
    tensors, mask = _problem(masked=True, device=device)
    results = []
    for name in ("kernel", "reference"):
        backend(name)
        outputs = ktorch.ops.lstm_sequence(*tensors, mask=mask, go_backwards=True)
        results.append((outputs, _grads(outputs, tensors)))
    for got, expected in zip(
        results[0][0] + tuple(results[0][1]), results[1][0] + tuple(results[1][1]), strict=True
    ):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_missing_kernel_falls_back_to_reference(monkeypatch, backend):
    tensors, mask = _problem(masked=True)
    expected = ktorch.ops.lstm_sequence(*tensors, mask=mask)
    monkeypatch.setattr(_library, "has_kernel", lambda op, device_type: False)
    calls = []
    reference = L.lstm_sequence_reference
    monkeypatch.setattr(L, "lstm_sequence_reference", lambda *a: calls.append(1) or reference(*a))
    backend("auto")
    for g, e in zip(ktorch.ops.lstm_sequence(*tensors, mask=mask), expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    assert calls == [1]
    backend("kernel")
    with pytest.raises(RuntimeError, match="no cpu kernel for ktorch::lstm_sequence"):
        ktorch.ops.lstm_sequence(*tensors)


def test_mixed_dtypes_use_the_reference(monkeypatch):
    tensors, _ = _problem(dtype=torch.float64)
    calls = []
    reference = L.lstm_sequence_reference
    monkeypatch.setattr(L, "lstm_sequence_reference", lambda *a: calls.append(1) or reference(*a))
    x = tensors[0].detach().float()
    with pytest.raises(RuntimeError):
        ktorch.ops.lstm_sequence(x, *tensors[1:])
    assert calls == [1]


@pytest.mark.slow
def test_op_compiles_with_torch_compile():
    _require_kernel("cpu")
    tensors, mask = _problem(masked=True)

    def run(*leaves):
        out, h, c = ktorch.ops.lstm_sequence(*leaves, mask=mask)
        return out.sum() + h.sum() * 2 + c.sum()

    compiled = torch.compile(run, fullgraph=True)
    loss = compiled(*tensors)
    expected = run(*tensors)
    torch.testing.assert_close(loss, expected)
    grads = torch.autograd.grad(loss, [t for t in tensors])
    expected_grads = torch.autograd.grad(expected, [t for t in tensors])
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e)
