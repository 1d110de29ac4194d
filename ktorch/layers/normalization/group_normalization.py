"""`GroupNormalization`: normalizes groups of channels per sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ktorch import constraints, initializers, regularizers
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer

_HALF = (torch.float16, torch.bfloat16)


class GroupNormalization(Layer):
    """Group normalization: channels are split into groups, each normalized per sample.

    The mean and (biased) variance are taken over each group's channels and all spatial
    positions of a sample. `groups=1` is layer normalization over all features, `groups=-1`
    (one channel per group) instance normalization.

    Args:
        groups: number of groups (must divide the number of channels), or -1.
        axis: the channel axis.
        epsilon: small float added to the variance.
        center: whether to add the learned offset `beta`.
        scale: whether to multiply by the learned `gamma`.
        beta_initializer, gamma_initializer: initializers of the weights.
        beta_regularizer, gamma_regularizer: regularizers of the weights.
        beta_constraint, gamma_constraint: constraints of the weights.

    Weights:
        gamma `(channels,)`, beta `(channels,)`.

    Example:
        ```python
        layer = GroupNormalization(groups=4)
        y = layer(torch.randn(2, 8, 8, 16))  # 4 groups of 4 channels
        ```
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        if not isinstance(groups, int) or (groups <= 0 and groups != -1):
            raise ValueError(
                "Received an invalid value for argument `groups`, expected a positive integer "
                f"(or `-1` for instance normalization). Received: groups={groups}"
            )
        super().__init__(**kwargs)
        self.supports_masking = True
        self.autocast = False
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def build(self, input_shape) -> None:
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(
                f"Axis {self.axis} of input tensor should have a defined dimension but the "
                f"layer received an input with shape {tuple(input_shape)}."
            )
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(
                f"Number of groups ({self.groups}) cannot be more than the number of channels "
                f"({dim})."
            )
        if dim % self.groups != 0:
            raise ValueError(
                f"Number of groups ({self.groups}) must be a multiple of the number of channels "
                f"({dim})."
            )
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: dim})
        self.gamma = (
            self.add_weight(
                shape=(dim,),
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                autocast=False,
                name="gamma",
            )
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(
                shape=(dim,),
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                autocast=False,
                name="beta",
            )
            if self.center
            else None
        )
        self.built = True

    def call(self, inputs):
        x = inputs.float() if inputs.dtype in _HALF else inputs
        axis = self.axis % x.ndim
        # F.group_norm expects (batch, channels, ...): a channels-last input is passed as a view.
        x_nc = x if axis == 1 else x.movedim(axis, 1)
        outputs = F.group_norm(x_nc, self.groups, self.gamma, self.beta, self.epsilon)
        if axis != 1:
            outputs = outputs.movedim(1, axis)
        return outputs.to(self._compute_torch_dtype)

    def compute_output_shape(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(
                f"Axis {self.axis} is out of bounds for input shape {tuple(input_shape)}. "
                f"Received: axis={self.axis}"
            )
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "groups": self.groups,
                "axis": self.axis,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
            }
        )
        return config
