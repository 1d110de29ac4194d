"""`Activation`: applies an activation function to its input."""

from __future__ import annotations

from ktorch import activations
from ktorch.layers.layer import Layer


class Activation(Layer):
    """Applies an activation function to the output.

    Args:
        activation: activation function name (`"relu"`) or callable.

    Call arguments:
        inputs: tensor of any shape.

    Example:
        ```python
        layer = Activation("relu")
        layer(torch.tensor([-3.0, -1.0, 0.0, 2.0]))  # [0., 0., 0., 2.]
        ```
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.activation = activations.get(activation)
        self.built = True

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config
