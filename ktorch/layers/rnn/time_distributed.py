"""`TimeDistributed`: applies a layer to every temporal slice of an input."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.rnn.stacked_rnn_cells import build_sublayer
from ktorch.saving import serialization_lib
from ktorch.utils import tree


class TimeDistributed(Layer):
    """Applies `layer` to every timestep of `(batch, timesteps, ...)` inputs.

    The batch and time axes are merged into one batch axis (a view for contiguous inputs),
    the layer runs once on all slices, and the time axis is split back out.

    Args:
        layer: the layer to apply (e.g. `Dense`, `Conv2D`).

    Call arguments:
        inputs: `(batch, timesteps, ...)`.
        training: passed to the layer.
        mask: optional `(batch, timesteps, ...)` mask, passed to layers that take one.

    Example:
        ```python
        layer = TimeDistributed(Dense(8))
        y = layer(torch.zeros(32, 10, 16))  # (32, 10, 8)
        ```
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                "Please initialize `TimeDistributed` layer with a `ktorch.layers.Layer` "
                f"instance. Received: {layer}"
            )
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = True

    def _get_child_input_shape(self, input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(
                "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 "
                f"dimensions, received: {input_shape}"
            )
        return (input_shape[0], *input_shape[2:])

    def build(self, input_shape) -> None:
        build_sublayer(self.layer, self._get_child_input_shape(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        child = self.layer.compute_output_shape(self._get_child_input_shape(input_shape))
        return (child[0], input_shape[1], *child[1:])

    def call(self, inputs, training=None, mask=None):
        batch, steps = inputs.shape[0], inputs.shape[1]
        if mask is not None and tuple(mask.shape[:2]) != (batch, steps):
            raise ValueError(
                f"The `mask` passed to the `TimeDistributed` layer has a shape "
                f"{tuple(mask.shape)} that is incompatible with the input shape "
                f"{tuple(inputs.shape)}. Expected mask shape prefix: ({batch}, {steps})."
            )
        merged = inputs.reshape(batch * steps, *inputs.shape[2:])
        kwargs = {"training": training}
        if mask is not None and self.layer._call_has_mask:
            kwargs["mask"] = mask.reshape(batch * steps, *mask.shape[2:])
        outputs = self.layer(merged, **kwargs)

        def split(x):
            return x.reshape(batch, steps, *x.shape[1:]) if torch.is_tensor(x) else x

        return tree.map_structure(split, outputs)

    def get_config(self) -> dict:
        config = super().get_config()
        config["layer"] = serialization_lib.serialize_keras_object(self.layer)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from ktorch.layers import deserialize

        config = dict(config)
        layer = deserialize(config.pop("layer"), custom_objects=custom_objects)
        return cls(layer, **config)
