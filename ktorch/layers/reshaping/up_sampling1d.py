"""`UpSampling1D`: repeats each step `size` times."""

from __future__ import annotations

from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.reshaping.reshaping_utils import repeat_nearest


class UpSampling1D(Layer):
    """Upsampling for 1D data: repeats each step `size` times along the steps axis.

    Args:
        size: the repetition factor, a positive int.

    Call arguments:
        inputs: a 3D tensor `(batch, steps, features)`.

    Example:
        ```python
        y = UpSampling1D(2)(torch.zeros(4, 10, 8))  # (4, 20, 8)
        ```
    """

    def __init__(self, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"Expected an integer value for `size`, got {type(size)}.")
        if size <= 0:
            raise ValueError(f"Argument `size` should be a positive integer. Received: size={size}")
        self.size = size
        self.input_spec = InputSpec(ndim=3)

    def call(self, inputs):
        return repeat_nearest(inputs, (1,), (self.size,))

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] * self.size
        return (input_shape[0], steps, input_shape[2])

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"size": self.size})
        return config_
