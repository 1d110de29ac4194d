"""`DepthwiseConv1D`: 1D depthwise convolution."""

from __future__ import annotations

from ktorch.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv


class DepthwiseConv1D(BaseDepthwiseConv):
    """1D depthwise convolution: each input channel is convolved with its own
    `depth_multiplier` filters; output channel `c * depth_multiplier + m` comes from input
    channel `c` and filter `m`.

    Args:
        kernel_size: int or tuple of 1 ints.
        strides: int or tuple of 1 ints.
        padding: `"valid"` or `"same"` (TensorFlow's rule: the extra cell of an odd total goes
            at the end).
        depth_multiplier: number of filters per input channel.
        data_format: `"channels_last"` (inputs `(batch, steps, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, steps)`).
        dilation_rate: int or tuple of 1 ints.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        depthwise_initializer, bias_initializer: initializers of the weights.
        depthwise_regularizer, bias_regularizer, activity_regularizer: regularizers.
        depthwise_constraint, bias_constraint: constraints applied after optimizer steps.

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.

    Weights:
        kernel `(kernel_size, in_channels, depth_multiplier)` (Keras layout), bias
        `(in_channels * depth_multiplier,)`.

    Example:
        ```python
        layer = DepthwiseConv1D(3, depth_multiplier=2, padding="same")
        y = layer(torch.zeros(4, 10, 6))  # (4, 10, 12)
        ```
    """

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            rank=1,
            depth_multiplier=depth_multiplier,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            depthwise_initializer=depthwise_initializer,
            bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
