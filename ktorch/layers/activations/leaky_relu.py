"""`LeakyReLU`: leaky rectified linear unit."""

from __future__ import annotations

import warnings

from ktorch import activations
from ktorch.layers.layer import Layer


class LeakyReLU(Layer):
    """Leaky ReLU: `f(x) = negative_slope * x` for `x < 0`, `x` otherwise.

    Args:
        negative_slope: slope for negative inputs (non-negative, 0.3 by default). Keras 2's
            `alpha` is accepted as a deprecated alias.

    Example:
        ```python
        LeakyReLU(negative_slope=0.5)(torch.tensor([-2.0, 3.0]))  # [-1., 3.]
        ```
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2
            )
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(
                "The negative_slope value of a Leaky ReLU layer cannot be None or negative "
                f"value. Expected a float. Received: negative_slope={negative_slope}"
            )
        self.negative_slope = negative_slope
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config
