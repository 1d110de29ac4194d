"""A GRU over a whole sequence in one op: `torch.ops.ktorch.gru_sequence`.

Keras's weight layout and gate order (z, r, h): `kernel (features, 3 * units)`,
`recurrent_kernel (units, 3 * units)`, `bias (2, 3 * units)` (input bias, recurrent bias) with
`reset_after`, else `(3 * units,)`. The op projects the inputs of all timesteps with one GEMM,
then runs one recurrent GEMM per step (two without `reset_after`, whose candidate multiplies
`r * h`) and one fused pass for the gate math and the mask; its backward runs through time in
one op the same way. The sigmoid/tanh GRU runs on the op; `gru_sequence_reference` is the same
math in plain PyTorch, for any activations, and the fallback where the extension is missing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ktorch.ops import _library

__all__ = ["gru_sequence", "gru_sequence_reference"]


def _projection(inputs, kernel, bias, go_backwards):
    # One matmul over all timesteps; time-major so each step reads a contiguous (batch, n) slab.
    projected = torch.matmul(inputs.transpose(0, 1), kernel)
    if bias is not None:
        projected = projected + bias
    if go_backwards:
        projected = projected.flip(0)
    return projected


def _step_mask(mask, go_backwards):
    if mask is None:
        return None
    mask = mask.to(torch.bool).transpose(0, 1).unsqueeze(-1)
    return mask.flip(0) if go_backwards else mask


def _finish(outputs, last, step_mask, return_sequences, zero_output_for_mask):
    # Keras's output masking: a masked step repeats the previous output, zeros before the first
    # unmasked step, or zeros at every masked step with zero_output_for_mask.
    if not return_sequences:
        if step_mask is None:
            return last
        keep = step_mask[-1] if zero_output_for_mask else step_mask.any(0)
        return torch.where(keep, last, torch.zeros_like(last))
    stacked = torch.stack(outputs, 0)
    if step_mask is not None:
        keep = step_mask if zero_output_for_mask else step_mask.cummax(0).values
        stacked = torch.where(keep, stacked, torch.zeros_like(stacked))
    return stacked.transpose(0, 1)


def gru_sequence_reference(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor | None,
    h0: torch.Tensor,
    mask: torch.Tensor | None = None,
    go_backwards: bool = False,
    reset_after: bool = True,
    return_sequences: bool = True,
    zero_output_for_mask: bool = False,
    activation: Callable = torch.tanh,
    recurrent_activation: Callable = torch.sigmoid,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs a GRU over a whole sequence in plain PyTorch (Keras gate order z, r, h).

    The inputs of all timesteps are projected by one matmul, then one recurrent matmul runs
    per step (two without `reset_after`). Masked steps carry the previous state. With
    `go_backwards` the sequence is processed from its end and the outputs are returned in
    processing order, as Keras does.

    Args:
        inputs: `(batch, timesteps, features)`.
        kernel: `(features, 3 * units)`.
        recurrent_kernel: `(units, 3 * units)`.
        bias: `(2, 3 * units)` (input and recurrent biases) when `reset_after`, else
            `(3 * units,)`; or None.
        h0: initial state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans, False for skipped steps.
        go_backwards: process the sequence from its end.
        reset_after: apply the reset gate after the recurrent matmul (Keras's default).
        return_sequences: return all outputs `(batch, timesteps, units)` or the last one.
        zero_output_for_mask: masked steps output zeros instead of the previous output.
        activation: candidate activation.
        recurrent_activation: gate activation.

    Returns:
        `(outputs, h)`: the outputs and the final state `(batch, units)`.
    """
    units = recurrent_kernel.shape[0]
    input_bias, recurrent_bias = None, None
    if bias is not None:
        if reset_after:
            input_bias, recurrent_bias = bias[0], bias[1]
        else:
            input_bias = bias
    projected = _projection(inputs, kernel, input_bias, go_backwards)
    step_mask = _step_mask(mask, go_backwards)
    gates_kernel = recurrent_kernel[:, : 2 * units]
    candidate_kernel = recurrent_kernel[:, 2 * units :]
    h = h0
    outputs = []
    for t in range(projected.shape[0]):
        x_z, x_r, x_h = projected[t].chunk(3, dim=-1)
        if reset_after:
            inner = torch.matmul(h, recurrent_kernel)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            r_z, r_r, r_h = inner.chunk(3, dim=-1)
            z = recurrent_activation(x_z + r_z)
            r = recurrent_activation(x_r + r_r)
            candidate = activation(x_h + r * r_h)
        else:
            r_z, r_r = torch.matmul(h, gates_kernel).chunk(2, dim=-1)
            z = recurrent_activation(x_z + r_z)
            r = recurrent_activation(x_r + r_r)
            candidate = activation(x_h + torch.matmul(r * h, candidate_kernel))
        new_h = z * h + (1 - z) * candidate
        h = new_h if step_mask is None else torch.where(step_mask[t], new_h, h)
        if return_sequences:
            outputs.append(h)
    return _finish(outputs, h, step_mask, return_sequences, zero_output_for_mask), h


def gru_sequence(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor | None,
    h0: torch.Tensor,
    mask: torch.Tensor | None = None,
    go_backwards: bool = False,
    reset_after: bool = True,
    return_sequences: bool = True,
    zero_output_for_mask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs a sigmoid/tanh GRU over a whole sequence, on the fused op where it is built.

    Runs `ktorch::gru_sequence` for the inputs' device when the extension has a kernel for it
    (see `ktorch.ops.available()` and `ktorch.ops.set_backend()`), else
    `gru_sequence_reference`; both compute the same function and its gradients, to any order
    (a backward with `create_graph=True` differentiates the reference, recomputed from the
    saved inputs).

    Args:
        inputs: `(batch, timesteps, features)`, float32, float64, float16 or bfloat16.
        kernel: `(features, 3 * units)`, of the inputs' dtype.
        recurrent_kernel: `(units, 3 * units)`.
        bias: `(2, 3 * units)` when `reset_after`, else `(3 * units,)`; or None.
        h0: initial state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans, False for skipped steps.
        go_backwards: process the sequence from its end (outputs in processing order).
        reset_after: apply the reset gate after the recurrent matmul (Keras's default).
        return_sequences: return all outputs `(batch, timesteps, units)` or the last one.
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Returns:
        `(outputs, h)`: the outputs and the final state `(batch, units)`.

    Example:
        >>> x = torch.randn(2, 5, 3)
        >>> kernel, recurrent = torch.randn(3, 12), torch.randn(4, 12)
        >>> out, h = gru_sequence(x, kernel, recurrent, None, torch.zeros(2, 4))
        >>> tuple(out.shape), tuple(h.shape)
        ((2, 5, 4), (2, 4))
    """
    if mask is not None:
        mask = mask.to(torch.bool)
    if _library.use_kernel("gru_sequence", inputs.device):
        output, h, _, _ = torch.ops.ktorch.gru_sequence.default(
            inputs,
            kernel,
            recurrent_kernel,
            bias,
            h0,
            mask,
            go_backwards,
            reset_after,
            return_sequences,
            zero_output_for_mask,
        )
        return output, h
    return gru_sequence_reference(
        inputs,
        kernel,
        recurrent_kernel,
        bias,
        h0,
        mask,
        go_backwards,
        reset_after,
        return_sequences,
        zero_output_for_mask,
    )


def _gru_sequence_fake(
    inputs, kernel, recurrent_kernel, bias, h0, mask, go_backwards, reset_after,
    return_sequences, zero_output_for_mask,
):  # fmt: skip
    batch, steps, _ = inputs.shape
    units = recurrent_kernel.shape[0]
    output_shape = (batch, steps, units) if return_sequences else (batch, units)
    return (
        inputs.new_empty(output_shape),
        inputs.new_empty((batch, units)),
        inputs.new_empty((steps + 1, batch, units)),
        inputs.new_empty((steps, batch, 4 * units)),
    )


def _gru_sequence_backward_fake(
    grad_output, grad_h, inputs, kernel, recurrent_kernel, mask, states, gates, go_backwards,
    reset_after, return_sequences, zero_output_for_mask, grad_inputs_needed,
):  # fmt: skip
    units = recurrent_kernel.shape[0]
    bias_shape = (2, 3 * units) if reset_after else (3 * units,)
    return (
        inputs.new_empty(inputs.shape if grad_inputs_needed else (0,)),
        torch.empty_like(kernel, memory_format=torch.contiguous_format),
        torch.empty_like(recurrent_kernel, memory_format=torch.contiguous_format),
        inputs.new_empty(bias_shape),
        inputs.new_empty((inputs.shape[0], units)),
    )


def _setup_context(ctx, inputs, output) -> None:
    x, kernel, recurrent_kernel, bias, h0, mask, *flags = inputs
    _, _, states, gates = output
    # The saved activations are workspace, not results to differentiate. Unused outputs get no
    # zero-filled gradients (the op treats a missing one as zero): states and gates are large.
    ctx.mark_non_differentiable(states, gates)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(x, kernel, recurrent_kernel, bias, h0, mask, states, gates)
    ctx.flags = tuple(flags)
    ctx.has_bias = bias is not None


def _backward(ctx, grad_output, grad_h, _grad_states, _grad_gates):
    x, kernel, recurrent_kernel, bias, h0, mask, states, gates = ctx.saved_tensors
    if torch.is_grad_enabled():
        # create_graph=True: gradients that can be differentiated again (the kernel's are not).
        args = (x, kernel, recurrent_kernel, bias, h0, mask, *ctx.flags)
        wrt = tuple(i for i in range(5) if ctx.needs_input_grad[i])
        return _library.differentiable_backward(
            gru_sequence_reference, args, wrt, (grad_output, grad_h)
        )
    grads = torch.ops.ktorch.gru_sequence_backward.default(
        grad_output,
        grad_h,
        x,
        kernel,
        recurrent_kernel,
        mask,
        states,
        gates,
        *ctx.flags,
        ctx.needs_input_grad[0],
    )
    grad_inputs, grad_kernel, grad_recurrent, grad_bias, grad_h0 = grads
    if not ctx.needs_input_grad[0]:
        grad_inputs = None
    if not ctx.has_bias:
        grad_bias = None
    # No gradients for mask and the flags.
    return (grad_inputs, grad_kernel, grad_recurrent, grad_bias, grad_h0) + (None,) * 5


def _register() -> None:
    torch.library.register_fake("ktorch::gru_sequence", _gru_sequence_fake)
    torch.library.register_fake("ktorch::gru_sequence_backward", _gru_sequence_backward_fake)
    torch.library.register_autograd("ktorch::gru_sequence", _backward, setup_context=_setup_context)


_library.on_load(_register)
