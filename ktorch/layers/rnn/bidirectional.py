"""`Bidirectional`: runs a recurrent layer forwards and backwards and merges the results."""

from __future__ import annotations

import copy

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.layers.rnn.stacked_rnn_cells import build_sublayer
from ktorch.saving import serialization_lib

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _renamed_copy(layer, prefix: str, go_backwards: bool | None = None):
    from ktorch.layers import deserialize

    config = serialization_lib.serialize_keras_object(layer)
    config["config"]["name"] = f"{prefix}{layer.name.removeprefix(prefix)}"
    if go_backwards is not None:
        config["config"]["go_backwards"] = go_backwards
    return deserialize(config)


class Bidirectional(Layer):
    """Bidirectional wrapper for recurrent layers.

    The wrapped layer is copied twice: `forward_layer` reads the sequence in order,
    `backward_layer` (a copy with `go_backwards=True`, unless given) reads it reversed; with
    `return_sequences` the backward outputs are flipped back into time order before merging.

    Args:
        layer: a recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, `RNN`).
        merge_mode: how to combine the two outputs: `"concat"` (default), `"sum"`, `"mul"`,
            `"ave"`, or None to return both.
        weights: optional initial weights (forward ones, then backward ones).
        backward_layer: optional layer for the backward direction (must have
            `go_backwards=True` and the same `return_sequences`, `return_state`, `stateful`).

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional list: the forward states, then the backward states.
        mask: optional `(batch, timesteps)` booleans.
        training: whether dropout is active.

    Example:
        ```python
        layer = Bidirectional(LSTM(10, return_sequences=True))
        y = layer(torch.zeros(2, 5, 3))  # (2, 5, 20)
        ```
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                "Please initialize `Bidirectional` layer with a `ktorch.layers.Layer` "
                f"instance. Received: {layer}"
            )
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(
                "`backward_layer` need to be a `ktorch.layers.Layer` instance. Received: "
                f"{backward_layer}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                '{"sum", "mul", "ave", "concat", None}'
            )
        super().__init__(**kwargs)
        self.forward_layer = _renamed_copy(layer, "forward_")
        if backward_layer is None:
            backward_layer = _renamed_copy(layer, "backward_", go_backwards=True)
        self.backward_layer = backward_layer
        if hasattr(layer, "use_cudnn"):
            self.forward_layer.use_cudnn = layer.use_cudnn
            self.backward_layer.use_cudnn = layer.use_cudnn
        self._verify_layer_config()
        for sub in (self.forward_layer, self.backward_layer):
            if getattr(sub, "zero_output_for_mask", None) is not None:
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        if weights:
            half = len(weights) // 2
            self.forward_layer.__dict__["_initial_weights"] = list(weights[:half])
            self.backward_layer.__dict__["_initial_weights"] = list(weights[half:])
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True
        self.input_spec = layer.input_spec
        if self._batch_input_shape is None and layer._batch_input_shape is not None:
            # `Bidirectional(LSTM(..., input_shape=...))` as first layer of a Sequential model.
            self.__dict__["_batch_input_shape"] = layer._batch_input_shape

    def _verify_layer_config(self) -> None:
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards={forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}"
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(forward, attr) != getattr(backward, attr):
                raise ValueError(
                    "Forward layer and backward layer are expected to have the same value for "
                    f'attribute "{attr}", got "{getattr(forward, attr)}" for forward layer and '
                    f'"{getattr(backward, attr)}" for backward layer'
                )

    def build(self, sequences_shape, initial_state_shape=None) -> None:
        build_sublayer(self.forward_layer, sequences_shape)
        build_sublayer(self.backward_layer, sequences_shape)
        self.built = True

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        output_shape = self.forward_layer.compute_output_shape(sequences_shape)
        state_shape = ()
        if self.return_state:
            output_shape, state_shape = output_shape[0], tuple(output_shape[1:])
        if self.merge_mode == "concat":
            output_shape = tuple(output_shape[:-1]) + (output_shape[-1] * 2,)
        if self.merge_mode is None:
            return (output_shape, output_shape) + state_shape + state_shape
        if self.return_state:
            return (output_shape,) + state_shape + state_shape
        return tuple(output_shape)

    def compute_output_spec(self, sequences, initial_state=None, mask=None, training=None):
        # Never runs the layers: building a graph must not touch a stateful layer's state.
        shapes = self.compute_output_shape(sequences.shape)
        several = self.return_state or self.merge_mode is None
        specs = [KerasTensor(s, self._compute_dtype) for s in (shapes if several else [shapes])]
        if self.return_sequences and sequences._mask_shape is not None:
            for spec in specs[: 2 if self.merge_mode is None else 1]:
                spec._mask_shape = sequences._mask_shape
        return tuple(specs) if several else specs[0]

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.return_sequences:
            output_mask = [mask, mask] if self.merge_mode is None else [mask]
        else:
            output_mask = [None, None] if self.merge_mode is None else [None]
        if self.return_state:
            count = 2 * len(self.forward_layer.state_size)
            return output_mask + [None] * count
        return output_mask if self.merge_mode is None else output_mask[0]

    def call(self, sequences, initial_state=None, mask=None, training=None):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, mask=mask, training=training)
        y_rev = self.backward_layer(
            sequences, initial_state=backward_state, mask=mask, training=training
        )
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = torch.flip(y_rev, (1,))
        if self.merge_mode == "concat":
            output = (torch.cat([y, y_rev], dim=-1),)
        elif self.merge_mode == "sum":
            output = (y + y_rev,)
        elif self.merge_mode == "ave":
            output = ((y + y_rev) / 2,)
        elif self.merge_mode == "mul":
            output = (y * y_rev,)
        else:
            output = (y, y_rev)
        if self.return_state or self.merge_mode is None:
            return output + states
        return output[0]

    @property
    def states(self):
        """The carried states of both directions (stateful layers), else None."""
        forward, backward = self.forward_layer.states, self.backward_layer.states
        if forward and backward:
            return tuple(forward) + tuple(backward)
        return None

    def reset_states(self, states=None) -> None:
        """Resets the carried states of both directions."""
        if not self.stateful:
            raise AttributeError(f"Layer '{self.name}' must be stateful to reset its states.")
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        half = len(states) // 2
        self.forward_layer.reset_states(states[:half])
        self.backward_layer.reset_states(states[half:])

    reset_state = reset_states

    def get_config(self) -> dict:
        config = super().get_config()
        config["merge_mode"] = self.merge_mode
        config["layer"] = serialization_lib.serialize_keras_object(self.forward_layer)
        config["backward_layer"] = serialization_lib.serialize_keras_object(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from ktorch.layers import deserialize

        config = copy.deepcopy(config)
        config["layer"] = deserialize(config["layer"], custom_objects=custom_objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            config["backward_layer"] = deserialize(backward, custom_objects=custom_objects)
        return cls(**config)
