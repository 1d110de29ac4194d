"""`StackedRNNCells`: several recurrent cells run as one, each feeding the next."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.saving import serialization_lib
from ktorch.utils import tree


def build_sublayer(layer, input_shape) -> None:
    """Builds a wrapped layer for `input_shape` (recording its build shape) if not built."""
    if isinstance(layer, Layer) and not layer.built:
        layer._build_with_shapes({layer._first_arg_name(): tuple(input_shape)})


def cell_call(cell, inputs, states, training):
    """One step of `cell`: `(output, new_states)` with new_states always a list."""
    if isinstance(cell, Layer):
        # The cell's own `call`: per-step Layer.__call__ bookkeeping is not needed here.
        if cell._call_has_training:
            output, new_states = cell.call(inputs, states, training=training)
        else:
            output, new_states = cell.call(inputs, states)
    else:
        output, new_states = (cell if callable(cell) else cell.call)(inputs, states)
    if not tree.is_nested(new_states):
        new_states = [new_states]
    return output, list(new_states)


def output_size_of(cell) -> int:
    """The output size of a cell (its `output_size`, else its first state size)."""
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    state_size = cell.state_size
    return state_size[0] if isinstance(state_size, (list, tuple)) else state_size


def zero_states(cell, batch_size: int, dtype, device) -> list:
    """Zero initial states for `cell`, one `(batch, size)` tensor per state size."""
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    return [torch.zeros((batch_size, size), dtype=dtype, device=device) for size in sizes]


def initial_state_of(cell, batch_size: int, dtype, device) -> list:
    """The cell's `get_initial_state(batch_size)` as a list, or zeros."""
    fn = getattr(cell, "get_initial_state", None)
    if fn is None:
        return zero_states(cell, batch_size, dtype, device)
    state = fn(batch_size=batch_size)
    return list(state) if tree.is_nested(state) else [state]


class StackedRNNCells(Layer):
    """Wraps a list of recurrent cells so that they behave as one cell.

    The output of each cell is the input of the next; the states are one entry per cell.

    Args:
        cells: list of cells (layers with `call(inputs, states)` and `state_size`).

    Example:
        ```python
        cells = [LSTMCell(8), LSTMCell(4)]
        layer = RNN(StackedRNNCells(cells))
        y = layer(torch.zeros(2, 5, 3))  # (2, 4)
        ```
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            if "call" not in dir(cell):
                raise ValueError(
                    f"All cells must have a `call` method. Received cell without a `call` "
                    f"method: {cell}"
                )
            if "state_size" not in dir(cell):
                raise ValueError(
                    "All cells must have a `state_size` attribute. Received cell without a "
                    f"`state_size`: {cell}"
                )
        self.cells = list(cells)

    @property
    def state_size(self) -> list:
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self) -> int:
        return output_size_of(self.cells[-1])

    def get_initial_state(self, batch_size: int | None = None) -> list:
        device = self._cells_device()
        return [
            initial_state_of(cell, batch_size, self._compute_torch_dtype, device)
            for cell in self.cells
        ]

    def _cells_device(self):
        for param in self.parameters():
            return param.device
        return None

    def call(self, inputs, states, training=False):
        new_states = []
        for cell, cell_states in zip(self.cells, states, strict=False):
            was_nested = tree.is_nested(cell_states)
            cell_states = list(cell_states) if was_nested else [cell_states]
            inputs, cell_new = cell_call(cell, inputs, cell_states, training)
            new_states.append(cell_new if was_nested or len(cell_new) > 1 else cell_new[0])
        return inputs, new_states

    def build(self, input_shape) -> None:
        batch_size = tree.flatten(input_shape)[0]
        for cell in self.cells:
            build_sublayer(cell, input_shape)
            input_shape = (batch_size, output_size_of(cell))
        self.built = True

    def get_config(self) -> dict:
        config = super().get_config()
        config["cells"] = [serialization_lib.serialize_keras_object(c) for c in self.cells]
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from ktorch.layers import deserialize

        config = dict(config)
        cells = [deserialize(c, custom_objects=custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)
