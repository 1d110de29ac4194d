"""`BaseDepthwiseConv`: the N-D depthwise convolution of `DepthwiseConv1D` / `DepthwiseConv2D`."""

from __future__ import annotations

from ktorch import activations, config, constraints, initializers, regularizers
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.convolutional.base_conv import (
    CONV_OPS,
    SpatialPadding,
    cast_like,
    check_positive,
    conv_output_shape,
    input_channels,
)
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


def depthwise_kernel(layer: Layer, kernel):
    """A Keras depthwise kernel `(*k, in, m)` viewed as torch's grouped weight `(in * m, 1, *k)`
    (with the unit axis of a lifted 1D layout)."""
    flat = kernel.reshape(*layer.kernel_size, 1, layer._channels * layer.depth_multiplier)
    return layer._layout.kernel(flat.permute(layer._kernel_perm))


class BaseDepthwiseConv(Layer):
    """Abstract N-D depthwise convolution: each input channel is convolved with its own
    `depth_multiplier` filters (a grouped convolution with one group per channel).

    Output channel `c * depth_multiplier + m` comes from input channel `c` and filter `m`, as in
    Keras.

    Args:
        rank: number of spatial dimensions.
        depth_multiplier: number of filters per input channel.
        kernel_size: int or tuple of `rank` ints.
        strides: int or tuple of `rank` ints.
        padding: `"valid"` or `"same"` (TensorFlow's rule).
        data_format: `"channels_last"` (default) or `"channels_first"`.
        dilation_rate: int or tuple of `rank` ints.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        depthwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, bias_regularizer, activity_regularizer: regularizers.
        depthwise_constraint, bias_constraint: constraints.
    """

    def __init__(
        self,
        rank: int,
        depth_multiplier: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
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
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.depth_multiplier = depth_multiplier
        self.kernel_size = conv_utils.standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = conv_utils.standardize_tuple(strides, rank, "strides")
        self.dilation_rate = conv_utils.standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = conv_utils.standardize_padding(padding)
        self.data_format = config.standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=rank + 2)
        check_positive(depth_multiplier, "depth_multiplier")
        self._channels_last = self.data_format == "channels_last"
        layout = self._layout = conv_utils.TorchLayout(self.data_format, rank)
        self._kernel_perm = conv_utils.kernel_to_torch(rank)
        self._torch_strides = layout.spatial(self.strides, 1)
        self._torch_dilation = layout.spatial(self.dilation_rate, 1)
        self._pad = SpatialPadding(
            self.padding,
            layout.spatial(self.kernel_size, 1),
            self._torch_strides,
            self._torch_dilation,
        )
        self._conv = CONV_OPS[layout.rank]
        self._linear = self.activation is activations.linear

    def build(self, input_shape) -> None:
        channels = input_channels(self, input_shape)
        axis = -1 if self._channels_last else 1
        self.input_spec = InputSpec(min_ndim=self.rank + 2, axes={axis: channels})
        self.compute_output_shape(input_shape)
        self._channels = channels
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(channels * self.depth_multiplier,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        # channels_last: a permuted view, no copy; torch sees channels_last memory.
        x, padding = self._pad(self._layout.to_torch(inputs))
        outputs = self._conv(
            x,
            depthwise_kernel(self, cast_like(self.kernel, x)),
            cast_like(self.bias, x),
            self._torch_strides,
            padding,
            self._torch_dilation,
            self._channels,
        )
        outputs = self._layout.from_torch(outputs)
        if self._linear:
            return outputs
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        channels = input_channels(self, input_shape)
        return conv_output_shape(self, input_shape, channels * self.depth_multiplier)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update(
            {
                "depth_multiplier": self.depth_multiplier,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return config_
