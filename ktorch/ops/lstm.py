"""Whole-sequence LSTM: the recurrence of `ktorch.layers.LSTM` as one op, forward and backward.

`torch.ops.ktorch.lstm_sequence` runs all timesteps: one GEMM projects the inputs of every
step, then each step does one recurrent GEMM and one fused pass over the gates (activations,
`c` and `h` updates, mask). Its backward, `torch.ops.ktorch.lstm_sequence_backward`, is
backpropagation through time in one op. Weights are in Keras's layout and gate order i, f, c,
o: `kernel (features, 4 * units)`, `recurrent_kernel (units, 4 * units)`, `bias (4 * units,)`;
`c = f * c_prev + i * tanh(g)`, `h = o * tanh(c)` with sigmoid gates.

Masked steps carry the previous state over unchanged. The output of a masked step is zero with
`zero_output_for_mask`; otherwise it repeats the carried `h`, except before the first unmasked
step (zero). With `go_backwards` the sequence is processed from its end and the outputs come
in processing order. These are Keras's rules; `lstm_sequence_reference` implements them with
torch ops and is the fallback where the extension has no kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ktorch.ops import _library

__all__ = ["lstm_sequence", "lstm_sequence_reference"]

_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def lstm_sequence_reference(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor | None,
    h0: torch.Tensor,
    c0: torch.Tensor,
    mask: torch.Tensor | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    recurrent_activation: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pure-PyTorch LSTM over a whole sequence, for any activations.

    Differentiable through ordinary torch ops. With the default activations it computes what
    `ktorch::lstm_sequence` computes; it is the op's fallback and the layer's path for other
    activations.

    Args:
        inputs: `(batch, timesteps, features)`.
        kernel: `(features, 4 * units)`.
        recurrent_kernel: `(units, 4 * units)`.
        bias: `(4 * units,)` or None.
        h0: initial memory state `(batch, units)`.
        c0: initial carry state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans, False for skipped steps.
        go_backwards: process the sequence from its end.
        zero_output_for_mask: masked steps output zeros instead of the carried state.
        activation: cell and output activation.
        recurrent_activation: gate activation.

    Returns:
        `(outputs, h, c)`: outputs `(batch, timesteps, units)` in processing order, and the
        final states `(batch, units)`.
    """
    # One matmul over all timesteps, batch-first like the inputs.
    projected = torch.matmul(inputs, kernel)
    if bias is not None:
        projected = projected + bias
    steps = inputs.shape[1]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    step_mask = None if mask is None else mask.to(device=inputs.device, dtype=torch.bool)
    h, c = h0, c0
    seen = None
    outputs = []
    for t in order:
        z = torch.addmm(projected[:, t], h, recurrent_kernel)
        i, f, g, o = z.chunk(4, dim=-1)
        new_c = recurrent_activation(f) * c + recurrent_activation(i) * activation(g)
        new_h = recurrent_activation(o) * activation(new_c)
        if step_mask is None:
            h, c = new_h, new_c
            outputs.append(h)
            continue
        m = step_mask[:, t, None]
        h = torch.where(m, new_h, h)
        c = torch.where(m, new_c, c)
        seen = m if seen is None else seen | m
        keep = m if zero_output_for_mask else seen
        outputs.append(torch.where(keep, h, torch.zeros_like(h)))
    if not outputs:
        return inputs.new_empty(inputs.shape[0], 0, h0.shape[-1]), h, c
    return torch.stack(outputs, 1), h, c


def lstm_sequence(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor | None,
    h0: torch.Tensor,
    c0: torch.Tensor,
    mask: torch.Tensor | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Runs an LSTM (tanh and sigmoid activations) over a whole sequence.

    Runs the native kernel for the inputs' device when the extension has one (see
    `ktorch.ops.available()` and `ktorch.ops.set_backend()`), else `lstm_sequence_reference`;
    both give the same results up to floating-point rounding, and both are differentiable with
    respect to the inputs, the weights and the initial states, to any order (a backward with
    `create_graph=True` differentiates the reference, recomputed from the saved inputs).

    Args:
        inputs: `(batch, timesteps, features)`, float32, float64, float16 or bfloat16.
        kernel: `(features, 4 * units)`, gates in Keras's order i, f, c, o.
        recurrent_kernel: `(units, 4 * units)`.
        bias: `(4 * units,)` or None.
        h0: initial memory state `(batch, units)`.
        c0: initial carry state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans, False for skipped steps.
        go_backwards: process the sequence from its end (outputs in processing order).
        zero_output_for_mask: masked steps output zeros instead of the carried state.

    Returns:
        `(outputs, h, c)`: outputs `(batch, timesteps, units)`, final states `(batch, units)`.

    Example:
        >>> x = torch.randn(2, 5, 3)
        >>> kernel, recurrent = torch.randn(3, 16), torch.randn(4, 16)
        >>> h0 = c0 = torch.zeros(2, 4)
        >>> out, h, c = lstm_sequence(x, kernel, recurrent, None, h0, c0)
        >>> out.shape, torch.equal(out[:, -1], h)
        (torch.Size([2, 5, 4]), True)
    """
    if mask is not None:
        mask = mask.to(device=inputs.device, dtype=torch.bool)
    tensors = [inputs, kernel, recurrent_kernel, h0, c0]
    if bias is not None:
        tensors.append(bias)
    uniform = inputs.dtype in _DTYPES and all(
        t.dtype == inputs.dtype and t.device == inputs.device for t in tensors
    )
    # Mixed dtypes or devices are left to the reference, which promotes or raises as torch does.
    if not uniform or not _library.use_kernel("lstm_sequence", inputs.device):
        return lstm_sequence_reference(
            inputs, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, zero_output_for_mask
        )
    output, h, c, _, _, _ = torch.ops.ktorch.lstm_sequence.default(
        inputs.contiguous(),
        kernel.contiguous(),
        recurrent_kernel.contiguous(),
        None if bias is None else bias.contiguous(),
        h0.contiguous(),
        c0.contiguous(),
        None if mask is None else mask.contiguous(),
        go_backwards,
        zero_output_for_mask,
    )
    return output, h, c


def _lstm_sequence_fake(
    inputs, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, zero_output_for_mask
):
    batch, steps, _ = inputs.shape
    units = recurrent_kernel.shape[0]
    return (
        inputs.new_empty(batch, steps, units),
        inputs.new_empty(batch, units),
        inputs.new_empty(batch, units),
        inputs.new_empty(steps, batch, 4 * units),
        inputs.new_empty(steps, batch, units),
        inputs.new_empty(steps, batch, units),
    )


def _lstm_sequence_backward_fake(
    grad_output,
    grad_h,
    grad_c,
    inputs,
    kernel,
    recurrent_kernel,
    c0,
    mask,
    gates,
    h_prev,
    c_seq,
    go_backwards,
    zero_output_for_mask,
    compute_grad_inputs,
):
    units = recurrent_kernel.shape[0]
    return (
        inputs.new_empty(inputs.shape if compute_grad_inputs else (0,)),
        kernel.new_empty(kernel.shape),
        recurrent_kernel.new_empty(recurrent_kernel.shape),
        kernel.new_empty(4 * units),
        c0.new_empty(c0.shape),
        c0.new_empty(c0.shape),
    )


def _lstm_sequence_setup_context(ctx, inputs, output) -> None:
    x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, zero_output_for_mask = inputs
    _, _, _, gates, h_prev, c_seq = output
    ctx.save_for_backward(x, kernel, recurrent_kernel, bias, h0, c0, mask, gates, h_prev, c_seq)
    # The saved activations get no gradient, and an output without one is passed as None
    # rather than as a zero-filled tensor (the op treats a missing gradient as zero).
    ctx.mark_non_differentiable(gates, h_prev, c_seq)
    ctx.set_materialize_grads(False)
    ctx.has_bias = bias is not None
    ctx.go_backwards = go_backwards
    ctx.zero_output_for_mask = zero_output_for_mask


def _contiguous(grad: torch.Tensor | None) -> torch.Tensor | None:
    return None if grad is None else grad.contiguous()


def _lstm_sequence_autograd(ctx, grad_output, grad_h, grad_c, _gates, _h_prev, _c_seq):
    x, kernel, recurrent_kernel, bias, h0, c0, mask, gates, h_prev, c_seq = ctx.saved_tensors
    if torch.is_grad_enabled():
        # create_graph=True: gradients that can be differentiated again (the kernel's are not).
        args = (x, kernel, recurrent_kernel, bias, h0, c0, mask, ctx.go_backwards)
        args += (ctx.zero_output_for_mask,)
        wrt = tuple(i for i in range(6) if ctx.needs_input_grad[i])
        return _library.differentiable_backward(
            lstm_sequence_reference, args, wrt, (grad_output, grad_h, grad_c)
        )
    grad_x, grad_kernel, grad_recurrent, grad_bias, grad_h0, grad_c0 = (
        torch.ops.ktorch.lstm_sequence_backward.default(
            _contiguous(grad_output),
            _contiguous(grad_h),
            _contiguous(grad_c),
            x,
            kernel,
            recurrent_kernel,
            c0,
            mask,
            gates,
            h_prev,
            c_seq,
            ctx.go_backwards,
            ctx.zero_output_for_mask,
            ctx.needs_input_grad[0],
        )
    )
    return (
        grad_x if ctx.needs_input_grad[0] else None,
        grad_kernel,
        grad_recurrent,
        grad_bias if ctx.has_bias else None,
        grad_h0,
        grad_c0,
        None,
        None,
        None,
    )


def _register() -> None:
    torch.library.register_fake("ktorch::lstm_sequence", _lstm_sequence_fake)
    torch.library.register_fake("ktorch::lstm_sequence_backward", _lstm_sequence_backward_fake)
    torch.library.register_autograd(
        "ktorch::lstm_sequence",
        _lstm_sequence_autograd,
        setup_context=_lstm_sequence_setup_context,
    )


_library.on_load(_register)
