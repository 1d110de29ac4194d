"""Whole-sequence math of the recurrent layers, as pure functions of tensors.

Each function projects the inputs of all timesteps with ONE matmul, then runs one recurrent
matmul per step. Masked steps carry the previous state; outputs follow Keras's rules (a masked
step repeats the previous output, zeros before the first unmasked step, or zeros at every
masked step with `zero_output_for_mask`). With `go_backwards` the sequence is processed from
the end and the outputs are returned in processing order, as Keras does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# The projection and masking steps are shared with the fused ops' references.
from ktorch.ops.gru import _finish, _step_mask
from ktorch.ops.gru import _projection as _time_major_projection
from ktorch.ops.lstm import lstm_sequence_reference


def simple_rnn_sequence(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor | None,
    h0: torch.Tensor,
    mask: torch.Tensor | None = None,
    go_backwards: bool = False,
    activation: Callable = torch.tanh,
    return_sequences: bool = True,
    zero_output_for_mask: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor]]:
    """Runs a fully connected RNN over a whole sequence.

    Args:
        inputs: `(batch, timesteps, features)`.
        kernel: `(features, units)`; recurrent_kernel: `(units, units)`; bias: `(units,)`.
        h0: initial state `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans, False for skipped steps.
        go_backwards: process the sequence from its end.
        activation: the output activation.
        return_sequences: return all outputs `(batch, timesteps, units)` or the last one.
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Returns:
        `(outputs, (h,))`.
    """
    projected = _time_major_projection(inputs, kernel, bias, go_backwards)
    step_mask = _step_mask(mask, go_backwards)
    h = h0
    outputs = []
    for t in range(projected.shape[0]):
        new_h = activation(torch.addmm(projected[t], h, recurrent_kernel))
        h = new_h if step_mask is None else torch.where(step_mask[t], new_h, h)
        if return_sequences:
            outputs.append(h)
    return _finish(outputs, h, step_mask, return_sequences, zero_output_for_mask), (h,)


def lstm_sequence(
    inputs: torch.Tensor,
    kernel: torch.Tensor,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor | None,
    h0: torch.Tensor,
    c0: torch.Tensor,
    mask: torch.Tensor | None = None,
    go_backwards: bool = False,
    activation: Callable = torch.tanh,
    recurrent_activation: Callable = torch.sigmoid,
    return_sequences: bool = True,
    zero_output_for_mask: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Runs an LSTM over a whole sequence (Keras gate order i, f, c, o).

    Args:
        inputs: `(batch, timesteps, features)`.
        kernel: `(features, 4 * units)`; recurrent_kernel: `(units, 4 * units)`;
            bias: `(4 * units,)` or None.
        h0, c0: initial memory and carry states `(batch, units)`.
        mask: optional `(batch, timesteps)` booleans, False for skipped steps.
        go_backwards: process the sequence from its end.
        activation: cell and output activation (tanh).
        recurrent_activation: gate activation (sigmoid).
        return_sequences: return all outputs `(batch, timesteps, units)` or the last one.
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Returns:
        `(outputs, (h, c))`.
    """
    output, h, c = lstm_sequence_reference(
        inputs,
        kernel,
        recurrent_kernel,
        bias,
        h0,
        c0,
        mask,
        go_backwards,
        zero_output_for_mask,
        activation=activation,
        recurrent_activation=recurrent_activation,
    )
    return (output if return_sequences else output[:, -1]), (h, c)
