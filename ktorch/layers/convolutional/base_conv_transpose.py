"""`BaseConvTranspose`: the N-D transposed convolution shared by `Conv1DTranspose` and kin."""

from __future__ import annotations

import torch.nn.functional as F

from ktorch import activations, config, constraints, initializers, regularizers
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.convolutional.base_conv import (
    cast_like,
    check_positive,
    check_strides_dilation,
    input_channels,
)
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer

_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _torch_arguments(kernel_size, strides, padding, output_padding, dilation_rate):
    """Torch `padding`, `output_padding` and a final crop reproducing Keras's output window.

    Keras's result is the full transposed convolution cropped by `conv_transpose_crops`; torch
    crops `padding` from both ends and appends `output_padding` cells, so symmetric crops map
    onto the op and only the asymmetric rest is sliced off.
    """
    paddings, output_paddings, slices = [], [], []
    for i, (k, s, d) in enumerate(zip(kernel_size, strides, dilation_rate, strict=True)):
        extra = None if output_padding is None else output_padding[i]
        start, end = conv_utils.conv_transpose_crops(k, s, padding, extra, d)
        if 0 <= start - end < max(s, d):
            paddings.append(start)
            output_paddings.append(start - end)
            slices.append(slice(None))
        elif end < 0:
            paddings.append(0)
            output_paddings.append(-end)
            slices.append(slice(start, None))
        else:
            crop = min(start, end)
            paddings.append(crop)
            output_paddings.append(0)
            slices.append(slice(start - crop, (crop - end) or None))
    needs_slice = any(sl != slice(None) for sl in slices)
    return tuple(paddings), tuple(output_paddings), tuple(slices) if needs_slice else None


class BaseConvTranspose(Layer):
    """Abstract N-D transposed convolution (the gradient of a convolution with respect to its
    input), with Keras's output-size rules.

    Output length per spatial dimension, with `k' = (k - 1) * dilation + 1`:
    `"valid"`: `(n - 1) * s + k' + output_padding` (default output_padding: `max(k', s) - k'`);
    `"same"`: `n * s`, or `(n - 1) * s + k' % 2 + output_padding` when output_padding is given.

    Args:
        rank: number of spatial dimensions.
        filters: number of output channels.
        kernel_size: int or tuple of `rank` ints.
        strides: int or tuple of `rank` ints.
        padding: `"valid"` or `"same"`.
        output_padding: int or tuple of `rank` ints, each smaller than its stride, or None.
        data_format: `"channels_last"` (default) or `"channels_first"`.
        dilation_rate: int or tuple of `rank` ints.
        activation: activation name or callable (None: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
    """

    def __init__(
        self,
        rank: int,
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
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = filters
        self.kernel_size = conv_utils.standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = conv_utils.standardize_tuple(strides, rank, "strides")
        self.dilation_rate = conv_utils.standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = conv_utils.standardize_padding(padding)
        self.output_padding = (
            None
            if output_padding is None
            else conv_utils.standardize_tuple(
                output_padding, rank, "output_padding", allow_zero=True
            )
        )
        self.data_format = config.standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=rank + 2)
        check_positive(filters, "filters")
        if self.output_padding is not None:
            for i, (extra, stride) in enumerate(
                zip(self.output_padding, self.strides, strict=True)
            ):
                if extra >= stride:
                    raise ValueError(
                        "`output_padding` must be strictly less than `strides` for all "
                        f"dimensions. At dimension {i}, `output_padding` is {extra} but "
                        f"`strides` is {stride}. Received: output_padding={self.output_padding}, "
                        f"strides={self.strides}"
                    )
        check_strides_dilation(self.strides, self.dilation_rate)
        self._channels_last = self.data_format == "channels_last"
        layout = self._layout = conv_utils.TorchLayout(self.data_format, rank)
        self._kernel_perm = conv_utils.kernel_to_torch(rank)
        padding, output_padding, crop = _torch_arguments(
            self.kernel_size, self.strides, self.padding, self.output_padding, self.dilation_rate
        )
        self._torch_padding = layout.spatial(padding, 0)
        self._torch_output_padding = layout.spatial(output_padding, 0)
        self._crop = None if crop is None else layout.spatial(crop, slice(None))
        self._torch_strides = layout.spatial(self.strides, 1)
        self._torch_dilation = layout.spatial(self.dilation_rate, 1)
        self._conv = _CONV_TRANSPOSE[layout.rank]
        self._linear = self.activation is activations.linear

    def build(self, input_shape) -> None:
        channels = input_channels(self, input_shape)
        axis = -1 if self._channels_last else 1
        self.input_spec = InputSpec(min_ndim=self.rank + 2, axes={axis: channels})
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, self.filters, channels),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
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
        x = self._layout.to_torch(inputs)
        kernel = cast_like(self.kernel, x).permute(self._kernel_perm)
        outputs = self._conv(
            x,
            self._layout.kernel(kernel),
            cast_like(self.bias, x),
            self._torch_strides,
            self._torch_padding,
            self._torch_output_padding,
            1,
            self._torch_dilation,
        )
        if self._crop is not None:
            outputs = outputs[(slice(None), slice(None), *self._crop)]
        outputs = self._layout.from_torch(outputs)
        if self._linear:
            return outputs
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        axes = conv_utils.spatial_axes(self.data_format, self.rank)
        extras = self.output_padding or (None,) * self.rank
        spatial = tuple(
            conv_utils.conv_transpose_output_length(input_shape[a], k, s, self.padding, e, d)
            for a, k, s, e, d in zip(
                axes, self.kernel_size, self.strides, extras, self.dilation_rate, strict=True
            )
        )
        if self._channels_last:
            return (input_shape[0], *spatial, self.filters)
        return (input_shape[0], self.filters, *spatial)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "output_padding": self.output_padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return config_
