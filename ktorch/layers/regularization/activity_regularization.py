"""`ActivityRegularization`: adds an L1/L2 penalty on its input to the layer losses."""

from __future__ import annotations

from ktorch import regularizers
from ktorch.layers.layer import Layer


class ActivityRegularization(Layer):
    """Identity layer that adds `l1 * sum(|x|) + l2 * sum(x ** 2)` of its input to `losses`.

    Args:
        l1: L1 regularization factor.
        l2: L2 regularization factor.

    Example:
        ```python
        layer = ActivityRegularization(l1=0.01)
        y = layer(torch.ones(1, 3))  # layer.losses holds the penalty
        ```
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs):
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.supports_masking = True
        self.l1 = l1
        self.l2 = l2
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("activity_regularizer", None)
        config.update({"l1": self.l1, "l2": self.l2})
        return config
