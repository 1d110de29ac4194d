"""The whole-sequence functions against stepping the cells one timestep at a time."""

import pytest
import torch

from ktorch.layers import RNN, GRUCell, LSTMCell, SimpleRNNCell
from ktorch.layers.rnn._sequence import lstm_sequence, simple_rnn_sequence
from ktorch.ops.gru import gru_sequence, gru_sequence_reference


def _states_as_tuple(fn):
    # The GRU functions return (outputs, h); the others (outputs, states).
    def run(*args, **kwargs):
        output, h = fn(*args, **kwargs)
        return output, (h,)

    return run


def _data(units):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, 4, generator=g)
    mask = torch.rand(3, 6, generator=g) > 0.3
    mask[0] = False
    h0 = torch.randn(3, units, generator=g)
    return x, mask, h0


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("zero_output", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_functions_match_cell_loop(go_backwards, return_sequences, zero_output, masked):
    x, mask, h0 = _data(5)
    mask = mask if masked else None
    c0 = h0.flip(0)
    options = {
        "mask": mask,
        "go_backwards": go_backwards,
        "return_sequences": return_sequences,
        "zero_output_for_mask": zero_output,
    }
    cases = [
        (LSTMCell(5), [h0, c0], lstm_sequence, {}),
        (GRUCell(5), [h0], _states_as_tuple(gru_sequence_reference), {}),
        (GRUCell(5), [h0], _states_as_tuple(gru_sequence), {}),
        (
            GRUCell(5, reset_after=False),
            [h0],
            _states_as_tuple(gru_sequence_reference),
            {"reset_after": False},
        ),
        (
            GRUCell(5, reset_after=False),
            [h0],
            _states_as_tuple(gru_sequence),
            {"reset_after": False},
        ),
        (SimpleRNNCell(5), [h0], simple_rnn_sequence, {}),
    ]
    for cell, states, fn, extra in cases:
        layer = RNN(
            cell,
            return_sequences=return_sequences,
            return_state=True,
            go_backwards=go_backwards,
            zero_output_for_mask=zero_output,
        )
        expected_output, *expected_states = layer(x, initial_state=states, mask=mask)
        output, final_states = fn(
            x, cell.kernel, cell.recurrent_kernel, cell.bias, *states, **options, **extra
        )
        torch.testing.assert_close(output, expected_output)
        for got, want in zip(final_states, expected_states, strict=True):
            torch.testing.assert_close(got, want)
