"""`Masking`: masks timesteps whose features all equal a given value."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor


class Masking(Layer):
    """Masks timesteps whose features all equal `mask_value`.

    For each timestep `inputs[i, t, :]`, if every feature equals `mask_value` the timestep is
    masked (skipped) in all downstream layers that support masking, and its output is zeroed.

    Args:
        mask_value: the padding value to mask.

    Call arguments:
        inputs: tensor of shape `(batch, timesteps, features)` (or any rank >= 2); the mask
            has the input shape without its last axis.

    Example:
        ```python
        x = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]])
        y = Masking(mask_value=0.0)(x)  # y._keras_mask: [[False, True]]
        ```
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True
        self.built = True

    def compute_mask(self, inputs, mask=None):
        return torch.any(inputs != self.mask_value, dim=-1)

    def call(self, inputs):
        keep = torch.any(inputs != self.mask_value, dim=-1, keepdim=True)
        return inputs.masked_fill(~keep, 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, *args, **kwargs):
        output = KerasTensor(inputs.shape, self.compute_dtype)
        output._mask_shape = tuple(inputs.shape[:-1])
        return output

    def get_config(self) -> dict:
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
