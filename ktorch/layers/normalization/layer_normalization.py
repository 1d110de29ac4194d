"""`LayerNormalization`: normalizes each sample over its feature axes."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ktorch import constraints, initializers, regularizers
from ktorch.layers.layer import Layer

_HALF = (torch.float16, torch.bfloat16)


class LayerNormalization(Layer):
    """Layer normalization: per sample, zero mean and unit variance over `axis`.

    `outputs = (inputs - mean) / sqrt(variance + epsilon) * gamma + beta`, with the mean and
    the (biased) variance taken over `axis` for each sample.

    Args:
        axis: axis or list of axes to normalize over (typically the features axis, -1).
        epsilon: small float added to the variance.
        center: whether to add the learned offset `beta`.
        scale: whether to multiply by the learned `gamma`.
        rms_scaling: deprecated Keras option: scale by `rsqrt(variance + epsilon)` and
            `gamma` only, without centering (implies no `beta`).
        beta_initializer, gamma_initializer: initializers of the weights.
        beta_regularizer, gamma_regularizer: regularizers of the weights.
        beta_constraint, gamma_constraint: constraints of the weights.

    Weights:
        gamma and beta, of shape `input_shape[axis]` (one size per normalized axis).

    Example:
        ```python
        layer = LayerNormalization()
        y = layer(torch.randn(2, 5, 8))  # each y[i, t] has mean 0, variance ~1
        ```
    """

    def __init__(
        self,
        axis=-1,
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
        rms_scaling = kwargs.pop("rms_scaling", False)
        if rms_scaling:
            warnings.warn(
                "You passed `rms_scaling=True`, which is deprecated. It scales the inputs by "
                "the variance, not the root mean square.",
                stacklevel=2,
            )
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = list(axis)
        elif isinstance(axis, int):
            self.axis = axis
        else:
            raise TypeError(
                "Expected an int or a list/tuple of ints for the argument 'axis'. "
                f"Received: axis={axis!r}"
            )
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.autocast = False

    def build(self, input_shape) -> None:
        ndim = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in axes:
            if not -ndim <= axis < ndim:
                raise ValueError(
                    f"Axis {axis} is out of bounds for input shape {tuple(input_shape)}. "
                    f"Received: axis={self.axis}"
                )
        self.axis = sorted(axes)
        shape = tuple(input_shape[d] for d in self.axis)
        self.gamma = (
            self.add_weight(
                shape=shape,
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                autocast=False,
                name="gamma",
            )
            if self.scale or self.rms_scaling
            else None
        )
        self.beta = (
            self.add_weight(
                shape=shape,
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                autocast=False,
                name="beta",
            )
            if self.center and not self.rms_scaling
            else None
        )
        self.built = True

    def call(self, inputs):
        x = inputs.float() if inputs.dtype in _HALF else inputs
        ndim = x.ndim
        axes = sorted(d % ndim for d in self.axis)
        trailing = axes == list(range(ndim - len(axes), ndim))
        if trailing and not self.rms_scaling:
            normalized_shape = tuple(x.shape[ndim - len(axes) :])
            outputs = F.layer_norm(x, normalized_shape, self.gamma, self.beta, self.epsilon)
        else:
            broadcast = [1] * ndim
            for d in axes:
                broadcast[d] = x.shape[d]
            if self.rms_scaling:
                variance = torch.var(x, dim=axes, unbiased=False, keepdim=True)
                outputs = x * torch.rsqrt(variance + self.epsilon)
                if self.gamma is not None:
                    outputs = outputs * self.gamma.reshape(broadcast)
            else:
                variance, mean = torch.var_mean(x, dim=axes, unbiased=False, keepdim=True)
                inv = torch.rsqrt(variance + self.epsilon)
                if self.gamma is not None:
                    inv = inv * self.gamma.reshape(broadcast)
                shift = -mean * inv
                if self.beta is not None:
                    shift = shift + self.beta.reshape(broadcast)
                outputs = x * inv + shift
        return outputs.to(self._compute_torch_dtype)

    def compute_output_shape(self, input_shape):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in axes:
            if not -len(input_shape) <= axis < len(input_shape):
                raise ValueError(
                    f"Axis {axis} is out of bounds for input shape {tuple(input_shape)}. "
                    f"Received: axis={self.axis}"
                )
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "rms_scaling": self.rms_scaling,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
            }
        )
        return config
