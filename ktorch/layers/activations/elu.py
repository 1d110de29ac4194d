"""`ELU`: exponential linear unit."""

from __future__ import annotations

from ktorch import activations
from ktorch.layers.layer import Layer


class ELU(Layer):
    """Exponential linear unit: `f(x) = alpha * (exp(x) - 1)` for `x < 0`, `x` otherwise.

    Args:
        alpha: scale of the negative part.

    Example:
        ```python
        ELU(alpha=1.0)(torch.tensor([-1.0, 2.0]))  # [-0.6321, 2.]
        ```
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["alpha"] = self.alpha
        return config
