"""`SeparableConv1D`: 1D depthwise-separable convolution."""

from __future__ import annotations

from ktorch.layers.convolutional.base_separable_conv import BaseSeparableConv


class SeparableConv1D(BaseSeparableConv):
    """1D separable convolution: a depthwise convolution (each input channel with its own
    `depth_multiplier` filters) followed by a pointwise convolution mixing channels to
    `filters` outputs.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of 1 ints (of the depthwise step).
        strides: int or tuple of 1 ints.
        padding: `"valid"` or `"same"` (TensorFlow's rule: the extra cell of an odd total goes
            at the end).
        data_format: `"channels_last"` (inputs `(batch, steps, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, steps)`).
        dilation_rate: int or tuple of 1 ints.
        depth_multiplier: number of depthwise filters per input channel.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        depthwise_initializer, pointwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer:
            regularizers.
        depthwise_constraint, pointwise_constraint, bias_constraint: constraints.

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.

    Weights:
        depthwise_kernel `(kernel_size, in_channels, depth_multiplier)`, pointwise_kernel
        `(1, in_channels * depth_multiplier, filters)` (Keras layouts), bias `(filters,)`.

    Example:
        ```python
        layer = SeparableConv1D(8, 3, padding="same")
        y = layer(torch.zeros(4, 10, 6))  # (4, 10, 8)
        ```
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate=1,
        depth_multiplier: int = 1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            rank=1,
            depth_multiplier=depth_multiplier,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            depthwise_initializer=depthwise_initializer,
            pointwise_initializer=pointwise_initializer,
            bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer,
            pointwise_regularizer=pointwise_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint,
            pointwise_constraint=pointwise_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )


SeparableConvolution1D = SeparableConv1D
