"""`UnitNormalization`: scales each sample to unit L2 norm along the given axes."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer

_EPSILON = 1e-12


class UnitNormalization(Layer):
    """L2-normalizes its inputs along `axis`: `x / max(sqrt(sum(x ** 2)), 1e-12)`.

    Args:
        axis: axis or list of axes along which the norm is taken.

    Example:
        ```python
        UnitNormalization()(torch.tensor([[3.0, 4.0]]))  # [[0.6, 0.8]]
        ```
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = list(axis)
        elif isinstance(axis, int):
            self.axis = axis
        else:
            raise TypeError(
                "Invalid value for `axis` argument: expected an int or a list/tuple of ints. "
                f"Received: axis={axis}"
            )
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        inv_norm = torch.rsqrt(torch.sum(torch.square(inputs), dim=axis, keepdim=True))
        return inputs * torch.clamp(inv_norm, max=1.0 / _EPSILON)

    def compute_output_shape(self, input_shape):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in axes:
            if not -len(input_shape) <= axis < len(input_shape):
                raise ValueError(
                    f"Axis {self.axis} is out of bounds for input shape {tuple(input_shape)}."
                )
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["axis"] = self.axis
        return config
