"""`PReLU`: parametric ReLU with a learned slope for negative inputs."""

from __future__ import annotations

import torch.nn.functional as F

from ktorch import constraints, initializers, regularizers
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class PReLU(Layer):
    """Parametric ReLU: `f(x) = alpha * x` for `x < 0`, `x` otherwise, `alpha` learned.

    Args:
        alpha_initializer: initializer of the `alpha` weight (zeros).
        alpha_regularizer: regularizer of `alpha`.
        alpha_constraint: constraint of `alpha`.
        shared_axes: axes (1-based, excluding the batch axis) along which `alpha` is shared,
            e.g. `[1, 2]` for one slope per channel of an NHWC image.

    Weights:
        alpha: the input shape without the batch axis, with size 1 on the shared axes.

    Example:
        ```python
        layer = PReLU(shared_axes=[1, 2])
        y = layer(torch.randn(2, 8, 8, 3))  # alpha has shape (1, 1, 3)
        ```
    """

    def __init__(
        self,
        alpha_initializer="Zeros",
        alpha_regularizer=None,
        alpha_constraint=None,
        shared_axes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif not isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [shared_axes]
        else:
            self.shared_axes = list(shared_axes)

    def build(self, input_shape) -> None:
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            param_shape[axis - 1] = 1
        self.alpha = self.add_weight(
            shape=param_shape,
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            name="alpha",
        )
        axes = {}
        if self.shared_axes:
            for i in range(1, len(input_shape)):
                if i not in self.shared_axes:
                    axes[i] = input_shape[i]
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes)
        self.built = True

    def call(self, inputs):
        return F.relu(inputs) - self.alpha * F.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes,
            }
        )
        return config
