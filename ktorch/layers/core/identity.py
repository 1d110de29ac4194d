"""`Identity`: returns its input unchanged."""

from __future__ import annotations

from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.utils import tree


class Identity(Layer):
    """Identity layer: a placeholder that returns its input (and its mask) unchanged.

    Example:
        ```python
        Identity()(torch.ones(2, 3))  # the same tensor
        ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, *args, **kwargs):
        def spec(x):
            out = KerasTensor(x.shape, x.dtype)
            out._mask_shape = x._mask_shape
            return out

        return tree.map_structure(spec, inputs)
