"""`RNN`: runs a recurrent cell over the timesteps of a sequence."""

from __future__ import annotations

import numpy as np
import torch

from ktorch.layers.input_spec import assert_input_compatibility
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.layers.rnn.dropout_rnn_cell import DropoutRNNCell
from ktorch.layers.rnn.stacked_rnn_cells import (
    StackedRNNCells,
    build_sublayer,
    cell_call,
    initial_state_of,
    output_size_of,
)
from ktorch.saving import serialization_lib
from ktorch.utils import tree


class RNN(Layer):
    """Base class of recurrent layers: runs `cell` over the time axis.

    Args:
        cell: a cell (a layer with `call(inputs_t, states)` returning `(output_t,
            new_states)` and a `state_size`), or a list of cells to stack.
        return_sequences: return the whole output sequence instead of the last output.
        return_state: also return the final states.
        go_backwards: process the sequence from its end (the output sequence is reversed).
        stateful: carry the final state of sample `i` of a batch over as the initial state of
            sample `i` of the next batch. Needs a fixed batch size (`batch_size=` on the first
            layer or `Input`); `reset_states()` zeroes the state.
        unroll: accepted for compatibility; the result is the same either way.
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional list of initial state tensors.
        mask: optional `(batch, timesteps)` booleans; masked steps keep the previous state
            and output (an upstream `Embedding(mask_zero=True)` or `Masking` provides it).
        training: whether dropout is active.

    Example:
        ```python
        layer = RNN(LSTMCell(4), return_sequences=True)
        y = layer(torch.zeros(2, 5, 3))  # (2, 5, 4)
        ```
    """

    def __init__(
        self,
        cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if "call" not in dir(cell):
            raise ValueError(f"Argument `cell` should have a `call` method. Received: cell={cell}")
        if "state_size" not in dir(cell):
            raise ValueError(
                "The RNN cell should have a `state_size` attribute (single integer or list of "
                f"integers, one integer per RNN state). Received: cell={cell}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.supports_masking = True
        self.__dict__["_state_structure"] = None
        self.__dict__["_expected_batch_size"] = None
        state_size = cell.state_size
        if not isinstance(state_size, (list, tuple, int)):
            raise ValueError(
                "state_size must be an integer, or a list/tuple of integers (one for each "
                f"state tensor). Received: state_size={state_size}"
            )
        self.single_state = isinstance(state_size, int)
        self.state_size = [state_size] if self.single_state else list(state_size)

    # ------------------------------------------------------------------ shapes

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch_size, length = sequences_shape[0], sequences_shape[1]
        states_shape = []
        for size in self.state_size:
            if isinstance(size, int):
                states_shape.append((batch_size, size))
            else:
                states_shape.append([(batch_size, s) for s in size])
        output_size = output_size_of(self.cell)
        if self.return_sequences:
            output_shape = (batch_size, length, output_size)
        else:
            output_shape = (batch_size, output_size)
        if self.return_state:
            return (output_shape, *states_shape)
        return output_shape

    def compute_output_spec(self, sequences, initial_state=None, mask=None, training=None):
        # Never runs the recurrence: building a graph must not touch a stateful layer's state.
        shapes = self.compute_output_shape(sequences.shape)
        if not self.return_state:
            shapes = (shapes,)
        specs = [_spec(s, self._compute_dtype) for s in shapes]
        if self.return_sequences and sequences._mask_shape is not None:
            specs[0]._mask_shape = sequences._mask_shape
        return tuple(specs) if self.return_state else specs[0]

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None for _ in self.state_size]
        return output_mask

    # ------------------------------------------------------------------ state

    def build(self, sequences_shape, initial_state_shape=None) -> None:
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, tuple(sequences_shape), self.name)
        step_shape = (sequences_shape[0],) + tuple(sequences_shape[2:])
        build_sublayer(self.cell, step_shape)
        if self.stateful:
            batch_size = sequences_shape[0]
            if batch_size is None:
                raise ValueError(
                    "When using `stateful=True` in a RNN, the batch size must be static. Found "
                    f"dynamic batch size: sequence.shape={tuple(sequences_shape)} (layer "
                    f"'{self.name}'). Pass `batch_size=` to the first layer or to `Input`."
                )
            self._create_state_buffers(batch_size)
        self.built = True

    def _create_state_buffers(self, batch_size: int) -> None:
        device = next((p.device for p in self.parameters()), None)
        structure = initial_state_of(self.cell, batch_size, self._compute_torch_dtype, device)
        for i, value in enumerate(tree.flatten(structure)):
            value = torch.zeros_like(value, dtype=self._compute_torch_dtype)
            # A buffer, not a weight: moved by `.to()`, never trained, not saved with weights.
            self.register_buffer(f"rnn_state_{i}", value, persistent=False)
        self.__dict__["_state_structure"] = structure
        self.__dict__["_expected_batch_size"] = batch_size

    def _state_buffers(self) -> list[torch.Tensor]:
        count = len(tree.flatten(self._state_structure))
        return [self._buffers[f"rnn_state_{i}"] for i in range(count)]

    @property
    def states(self):
        """The carried states of a stateful layer (None otherwise), as the cell nests them."""
        if self._state_structure is None:
            return None
        return tree.pack_sequence_as(self._state_structure, self._state_buffers())

    def reset_states(self, states=None) -> None:
        """Zeroes the carried states of a stateful layer, or sets them to `states`."""
        if self._state_structure is None:
            return
        buffers = self._state_buffers()
        if states is None:
            for buffer in buffers:
                buffer.zero_()
            return
        values = tree.flatten(states)
        if len(values) != len(buffers):
            raise ValueError(
                f"Layer '{self.name}' expects {len(buffers)} states. Received: "
                f"{len(values)} state values."
            )
        for buffer, value in zip(buffers, values, strict=True):
            value = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
            if tuple(value.shape) != tuple(buffer.shape):
                raise ValueError(
                    f"State of layer '{self.name}' has shape {tuple(buffer.shape)}. Received: "
                    f"value.shape={tuple(value.shape)}"
                )
            buffer.copy_(value.to(buffer.device, buffer.dtype))

    reset_state = reset_states

    def get_initial_state(self, batch_size: int) -> list:
        """The cell's initial states for `batch_size` sequences."""
        device = next((p.device for p in self.parameters()), None)
        return initial_state_of(self.cell, batch_size, self._compute_torch_dtype, device)

    # ------------------------------------------------------------------- call

    def _standardize_initial_state(self, initial_state, sequences):
        template = self.get_initial_state(sequences.shape[0])
        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        initial_state = list(initial_state)
        flat = tree.flatten(initial_state)
        if len(flat) == len(tree.flatten(template)) and len(initial_state) != len(template):
            initial_state = tree.pack_sequence_as(template, flat)

        def convert(x):
            if not torch.is_tensor(x):
                x = torch.as_tensor(np.asarray(x))
            return x.to(device=sequences.device, dtype=sequences.dtype)

        return tree.map_structure(convert, initial_state)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        batch_size = sequences.shape[0]
        if self.stateful and batch_size != self._expected_batch_size:
            raise ValueError(
                f"Layer '{self.name}' is stateful: the batch size of its inputs must stay the "
                f"one it was built with, as the state of sample i carries over to sample i of "
                f"the next batch. Expected batch size: {self._expected_batch_size}. Received "
                f"batch size: {batch_size}."
            )
        if initial_state is not None:
            initial_state = self._standardize_initial_state(initial_state, sequences)
        elif self.stateful:
            # A copy: the buffers are overwritten below while autograd may still need them.
            initial_state = [s.clone() for s in self._state_buffers()]
            initial_state = tree.pack_sequence_as(self._state_structure, initial_state)
        else:
            initial_state = tree.map_structure(
                lambda s: s.to(device=sequences.device, dtype=sequences.dtype),
                self.get_initial_state(batch_size),
            )
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        try:
            output, states = self.inner_loop(sequences, initial_state, mask, training)
        finally:
            _reset_dropout_masks(self.cell)
        if self.stateful:
            with torch.no_grad():
                for buffer, state in zip(self._state_buffers(), tree.flatten(states), strict=True):
                    buffer.copy_(state)
        if self.return_state:
            return (output, *states)
        return output

    def _whole_sequence_inputs(self, sequences, training):
        """The inputs of a whole-sequence run of a gated cell, with input dropout applied.

        Returns None when training needs per-gate dropout masks: the cell is then stepped, as
        Keras does off its fused path.
        """
        cell = self.cell
        if training and (
            cell.recurrent_dropout > 0 or (cell.dropout > 0 and cell.dropout_mask_count is not None)
        ):
            return None
        if training and 0.0 < cell.dropout < 1.0:
            sequences = sequences * cell.get_dropout_mask(sequences[:, 0]).unsqueeze(1)
        return sequences

    def inner_loop(self, sequences, initial_state, mask, training):
        """Runs the cell over the sequence: returns `(output, final_states)`.

        `output` is the whole sequence with `return_sequences`, else the last output.
        """
        steps = sequences.shape[1]
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        states = list(initial_state)
        step_mask = None
        if mask is not None:
            step_mask = mask.to(torch.bool)
        outputs = []
        last = None
        for t in order:
            output, new_states = cell_call(self.cell, sequences[:, t], states, training)
            if step_mask is None:
                states = new_states
                last = output
            else:
                step_keep = step_mask[:, t]
                keep = _expand(step_keep, output)
                prev_out = torch.zeros_like(output) if last is None else last
                out_fill = torch.zeros_like(output) if self.zero_output_for_mask else prev_out
                last = torch.where(keep, output, out_fill)
                states = tree.pack_sequence_as(
                    states,
                    [
                        torch.where(_expand(step_keep, new), new, old)
                        for new, old in zip(
                            tree.flatten(new_states), tree.flatten(states), strict=True
                        )
                    ],
                )
            if self.return_sequences:
                outputs.append(last)
        if self.return_sequences:
            return torch.stack(outputs, 1), list(states)
        return last, list(states)

    # ---------------------------------------------------------- serialization

    def _rnn_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config

    def get_config(self) -> dict:
        config = self._rnn_config()
        config["cell"] = serialization_lib.serialize_keras_object(self.cell)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from ktorch.layers import deserialize

        config = dict(config)
        if "cell" not in config:
            # LSTM, GRU, SimpleRNN: the cell's arguments are the layer's own.
            return cls(**config)
        cell = deserialize(config.pop("cell"), custom_objects=custom_objects)
        return cls(cell, **config)


def _spec(shape, dtype):
    if isinstance(shape, list):
        return [_spec(s, dtype) for s in shape]
    return KerasTensor(shape, dtype)


def _expand(keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return keep.reshape((-1,) + (1,) * (like.dim() - 1))


def _reset_dropout_masks(cell) -> None:
    if isinstance(cell, DropoutRNNCell):
        cell.reset_dropout_mask()
        cell.reset_recurrent_dropout_mask()
    if isinstance(cell, StackedRNNCells):
        for inner in cell.cells:
            _reset_dropout_masks(inner)
