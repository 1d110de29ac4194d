"""`Conv1DTranspose`: deconvolution over steps."""

from __future__ import annotations

from ktorch.layers.convolutional.base_conv_transpose import BaseConvTranspose


class Conv1DTranspose(BaseConvTranspose):
    """1D transposed convolution layer (deconvolution over steps).

    Maps a tensor shaped like a convolution's output back to the shape of its input, with
    Keras's output-size rules (`k' = (k - 1) * dilation + 1` per dimension):
    `"valid"`: `(n - 1) * s + k' + output_padding` (default output_padding `max(k', s) - k'`);
    `"same"`: `n * s`, or `(n - 1) * s + k' % 2 + output_padding` when output_padding is given.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of 1 ints.
        strides: int or tuple of 1 ints (> 1 is incompatible with dilation_rate > 1).
        padding: `"valid"` or `"same"`.
        output_padding: int or tuple of 1 ints, each smaller than its stride, or None
            for Keras's default.
        data_format: `"channels_last"` (inputs `(batch, steps, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, steps)`).
        dilation_rate: int or tuple of 1 ints.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: initializers of the weights.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints applied after optimizer steps.

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.

    Weights:
        kernel `(kernel_size, filters, in_channels)` (Keras layout), bias `(filters,)`.

    Example:
        ```python
        layer = Conv1DTranspose(8, 3, strides=2, padding="same")
        y = layer(torch.zeros(4, 10, 16))  # (4, 20, 8)
        ```
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        output_padding=None,
        data_format: str | None = None,
        dilation_rate=1,
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
            rank=1,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
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


Convolution1DTranspose = Conv1DTranspose
