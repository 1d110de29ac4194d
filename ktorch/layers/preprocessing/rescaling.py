"""`Rescaling`: multiplies inputs by `scale` and adds `offset`."""

from __future__ import annotations

import numpy as np
import torch

from ktorch import config as ktorch_config
from ktorch.layers.layer import Layer
from ktorch.saving import serialization_lib


class Rescaling(Layer):
    """Rescales inputs: `outputs = inputs * scale + offset`.

    Args:
        scale: scalar, or one value per channel (a list or array).
        offset: scalar, or one value per channel.

    With per-channel values and `image_data_format() == "channels_first"`, the values are
    broadcast along axis 1 of `(batch, channels, height, width)` inputs.

    Example:
        ```python
        layer = Rescaling(scale=1.0 / 127.5, offset=-1.0)  # [0, 255] -> [-1, 1]
        layer(torch.tensor([[0.0, 255.0]]))  # [[-1., 1.]]
        ```
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True
        # Per-channel values live in (non-persistent) buffers so they follow `.to(device)`
        # and are not copied from the host at every call.
        self.register_buffer("_scale_tensor", _as_tensor(scale), persistent=False)
        self.register_buffer("_offset_tensor", _as_tensor(offset), persistent=False)
        self.built = True

    def _value(self, python_value, tensor):
        if tensor is None:
            return python_value
        value = tensor.to(self._compute_torch_dtype)
        if value.ndim > 0 and ktorch_config.image_data_format() == "channels_first":
            value = value.reshape(tuple(value.shape) + (1,) * (3 - value.ndim))
        return value

    def call(self, inputs):
        inputs = inputs.to(self._compute_torch_dtype)
        scale = self._value(self.scale, self._scale_tensor)
        offset = self._value(self.offset, self._offset_tensor)
        return inputs * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "scale": serialization_lib.serialize_keras_object(self.scale),
                "offset": serialization_lib.serialize_keras_object(self.offset),
            }
        )
        return config


def _as_tensor(value) -> torch.Tensor | None:
    """A tensor for per-channel values; None for Python scalars (used as they are)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None
    if torch.is_tensor(value):
        return value.detach().clone()
    return torch.as_tensor(np.asarray(value, dtype=np.float64))
