"""`Conv3D`: spatial convolution over volumes."""

from __future__ import annotations

from ktorch.layers.convolutional.base_conv import BaseConv


class Conv3D(BaseConv):
    """3D convolution layer (spatial convolution over volumes).

    Convolves (cross-correlates) a kernel with the input over three spatial dimensions,
    adds a bias and applies `activation`.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of 3 ints, the window size.
        strides: int or tuple of 3 ints (> 1 is incompatible with dilation_rate > 1).
        padding: `"valid"` or `"same"` (TensorFlow's rule: the extra cell of an odd total
            goes at the end).
        data_format: `"channels_last"` (inputs `(batch, d1, d2, d3, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, d1, d2, d3)`).
        dilation_rate: int or tuple of 3 ints, for dilated convolution.
        groups: number of channel groups; input channels and `filters` must be divisible by it.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: initializers of the weights.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints applied after optimizer steps.

    Call arguments:
        inputs: a 5D tensor in `data_format` layout.

    Weights:
        kernel `(kd1, kd2, kd3, in // groups, filters)` (Keras layout), bias `(filters,)`.

    Example:
        ```python
        layer = Conv3D(8, 3, padding="same", activation="relu")
        y = layer(torch.zeros(2, 8, 8, 8, 3))  # (2, 8, 8, 8, 8)
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
        groups: int = 1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            rank=3,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            groups=groups,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )


Convolution3D = Conv3D
