"""`BatchNormalization`: normalizes with batch statistics in training, moving ones otherwise."""

from __future__ import annotations

import torch

from ktorch import config as ktorch_config
from ktorch import constraints, initializers, regularizers
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.ops import fused_batch_norm

_HALF = (torch.float16, torch.bfloat16)


def _masked_moments(x, mask, reduction_axes):
    weights = mask.unsqueeze(-1).expand(x.shape)
    count = weights.sum(dim=reduction_axes, keepdim=True, dtype=x.dtype) + ktorch_config.epsilon()
    mean = torch.where(weights, x, 0.0).sum(dim=reduction_axes, keepdim=True) / count
    centered = torch.where(weights, x - mean, 0.0)
    variance = centered.square().sum(dim=reduction_axes, keepdim=True) / count
    return mean.flatten(), variance.flatten()


def _masked_batch_norm(
    x: torch.Tensor,
    axis: int,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    moving_mean: torch.Tensor,
    moving_variance: torch.Tensor,
    momentum: float,
    epsilon: float,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Keras's training-mode batch normalization with statistics over the unmasked entries.

    `mask` has the input shape without its last axis; the moving statistics are updated in
    place with `moving = moving * momentum + batch * (1 - momentum)`.
    """
    reduction_axes = [d for d in range(x.ndim) if d != axis]
    mean, variance = _masked_moments(x, mask.to(torch.bool), reduction_axes)
    with torch.no_grad():
        moving_mean.mul_(momentum).add_(mean.detach(), alpha=1.0 - momentum)
        moving_variance.mul_(momentum).add_(variance.detach(), alpha=1.0 - momentum)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    inv = torch.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    shift = -mean * inv
    if beta is not None:
        shift = shift + beta
    return x * inv.reshape(shape) + shift.reshape(shape)


class BatchNormalization(Layer):
    """Normalizes its inputs per channel: zero mean and unit variance, then scale and shift.

    In training (`training=True`) the layer normalizes with the mean and variance of the
    current batch and updates its moving statistics,
    `moving_mean = moving_mean * momentum + mean(batch) * (1 - momentum)` (likewise the
    variance, with the biased batch variance); at inference it uses the moving statistics.
    With `trainable=False` the layer always runs in inference mode, even with
    `training=True` (the fine-tuning convention of Keras).

    Both modes run the fused kernels of `ktorch.ops.fused_batch_norm` (one pass for the
    statistics, one for the output, one op for the gradients), reading channels_first and
    channels_last inputs, and NCHW tensors in `torch.channels_last` memory, in place; the
    output keeps the input's memory format. `ktorch.ops.set_backend("reference")` selects the
    pure-PyTorch implementation; a masked batch in training always uses plain torch ops.
    float16/bfloat16 inputs are computed in float32 and the result cast back, as in Keras.

    Args:
        axis: the channel axis (-1 for channels_last, 1 for channels_first inputs).
        momentum: momentum of the moving averages.
        epsilon: small float added to the variance.
        center: whether to add the learned offset `beta`.
        scale: whether to multiply by the learned `gamma`.
        beta_initializer, gamma_initializer: initializers of the learned weights.
        moving_mean_initializer, moving_variance_initializer: initializers of the moving
            statistics.
        beta_regularizer, gamma_regularizer: regularizers of the learned weights.
        beta_constraint, gamma_constraint: constraints of the learned weights.

    Call arguments:
        inputs: tensor of rank >= 2.
        training: training mode (batch statistics) or inference mode (moving statistics).
        mask: optional mask of the input shape without its last axis; masked entries do not
            count in the batch statistics.

    Weights:
        gamma `(channels,)`, beta `(channels,)` (trainable), moving_mean `(channels,)`,
        moving_variance `(channels,)` (non-trainable), in that order.

    Example:
        ```python
        layer = BatchNormalization()
        y = layer(torch.randn(8, 4, 4, 3), training=True)  # updates the moving statistics
        ```
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        renorm: bool = False,
        renorm_clipping=None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if renorm:
            raise ValueError(f"Argument `renorm` is not supported. Received: renorm={renorm}")
        if synchronized:
            raise ValueError(
                f"Argument `synchronized` is not supported. Received: synchronized={synchronized}"
            )
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.renorm = renorm
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.synchronized = synchronized
        self.supports_masking = True

    def build(self, input_shape) -> None:
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"Axis {self.axis} is out of bounds for input shape {tuple(input_shape)}. "
                f"Received: axis={self.axis}"
            )
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                f"Axis {self.axis} of the input to layer '{self.name}' must have a defined "
                f"size. Received: input_shape={tuple(input_shape)}"
            )
        shape = (channels,)
        self.gamma = (
            self.add_weight(
                shape=shape,
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
                shape=shape,
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                autocast=False,
                name="beta",
            )
            if self.center
            else None
        )
        self.moving_mean = self.add_weight(
            shape=shape,
            initializer=self.moving_mean_initializer,
            trainable=False,
            autocast=False,
            name="moving_mean",
        )
        self.moving_variance = self.add_weight(
            shape=shape,
            initializer=self.moving_variance_initializer,
            trainable=False,
            autocast=False,
            name="moving_variance",
        )
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: channels})
        self.built = True

    def call(self, inputs, training=None, mask=None):
        if mask is not None and mask.ndim != inputs.ndim - 1:
            raise ValueError(
                "The mask provided should be one dimension less than the inputs. Received: "
                f"mask.shape={tuple(mask.shape)}, inputs.shape={tuple(inputs.shape)}"
            )
        # Keras computes float16/bfloat16 inputs in float32. The op does that internally and
        # rounds once on output, so an input already in the compute dtype is not upcast (no
        # copy); one in another dtype is, to keep float32 precision up to the final cast.
        x = inputs
        if x.dtype in _HALF and x.dtype is not self._compute_torch_dtype:
            x = x.float()
        axis = self.axis % x.ndim
        training = bool(training) and self.trainable
        if mask is not None and training:
            outputs = _masked_batch_norm(
                x.float() if x.dtype in _HALF else x,
                axis,
                self.gamma,
                self.beta,
                self.moving_mean,
                self.moving_variance,
                self.momentum,
                self.epsilon,
                mask,
            )
        else:
            outputs = fused_batch_norm(
                x,
                self.moving_mean,
                self.moving_variance,
                self.gamma,
                self.beta,
                axis=axis,
                training=training,
                momentum=self.momentum,
                epsilon=self.epsilon,
            )
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
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(
                    self.moving_variance_initializer
                ),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint),
                "synchronized": self.synchronized,
                "renorm": self.renorm,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum,
            }
        )
        return config
