"""`BaseSeparableConv`: depthwise then pointwise convolution, for `SeparableConv1D` / `2D`."""

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
from ktorch.layers.convolutional.base_depthwise_conv import depthwise_kernel
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class BaseSeparableConv(Layer):
    """Abstract N-D separable convolution: a depthwise convolution (each input channel with its
    own `depth_multiplier` filters) followed by a pointwise (1x1) convolution to `filters`.

    Args:
        rank: number of spatial dimensions.
        depth_multiplier: number of depthwise filters per input channel.
        filters: number of output channels.
        kernel_size: int or tuple of `rank` ints (of the depthwise step).
        strides: int or tuple of `rank` ints.
        padding: `"valid"` or `"same"` (TensorFlow's rule).
        data_format: `"channels_last"` (default) or `"channels_first"`.
        dilation_rate: int or tuple of `rank` ints.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        depthwise_initializer, pointwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer:
            regularizers.
        depthwise_constraint, pointwise_constraint, bias_constraint: constraints.
    """

    def __init__(
        self,
        rank: int,
        depth_multiplier: int,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate=1,
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
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.depth_multiplier = depth_multiplier
        self.filters = filters
        self.kernel_size = conv_utils.standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = conv_utils.standardize_tuple(strides, rank, "strides")
        self.dilation_rate = conv_utils.standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = conv_utils.standardize_padding(padding)
        self.data_format = config.standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=rank + 2)
        check_positive(depth_multiplier, "depth_multiplier")
        check_positive(filters, "filters")
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
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel",
            shape=(*(1,) * self.rank, channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
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
        depthwise = depthwise_kernel(self, cast_like(self.depthwise_kernel, x))
        x = self._conv(
            x, depthwise, None, self._torch_strides, padding, self._torch_dilation, self._channels
        )
        pointwise = cast_like(self.pointwise_kernel, x).permute(self._kernel_perm)
        outputs = self._conv(x, self._layout.kernel(pointwise), cast_like(self.bias, x))
        outputs = self._layout.from_torch(outputs)
        if self._linear:
            return outputs
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return conv_output_shape(self, input_shape, self.filters)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update(
            {
                "depth_multiplier": self.depth_multiplier,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return config_
