"""`BaseConv`: the N-D convolution shared by `Conv1D`, `Conv2D` and `Conv3D`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ktorch import activations, config, constraints, initializers, regularizers
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer

CONV_OPS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class SpatialPadding:
    """Keras padding (`valid`, `same`, `causal`) turned into torch convolution arguments.

    Symmetric "same" padding is handed to the torch op; asymmetric amounts (odd totals,
    TensorFlow puts the extra cell at the end) and causal padding go through one `F.pad`.

    Args:
        padding: `"valid"`, `"same"` or `"causal"`.
        kernel_size, strides, dilation_rate: per-dimension tuples.
    """

    def __init__(self, padding: str, kernel_size, strides, dilation_rate):
        self.kernel_size = kernel_size
        self.strides = strides
        self.dilation_rate = dilation_rate
        self.rank = len(kernel_size)
        self.static = None
        if padding == "valid":
            self.static = (0, (0,) * self.rank)
        elif padding == "causal":
            self.static = ((dilation_rate[-1] * (kernel_size[-1] - 1), 0), (0,) * self.rank)
        elif all(s == 1 for s in strides):
            # With unit strides the "same" amounts do not depend on the input size.
            self.static = self._resolve([None] * self.rank)

    def _resolve(self, sizes):
        pads = [
            conv_utils.same_padding(size, k, s, d)
            for size, k, s, d in zip(
                sizes, self.kernel_size, self.strides, self.dilation_rate, strict=True
            )
        ]
        if all(left == right for left, right in pads):
            return 0, tuple(left for left, _ in pads)
        return conv_utils.flat_pad(pads), (0,) * self.rank

    def __call__(self, x: torch.Tensor):
        """Returns `(inputs, torch_padding)` for a channels_first tensor `x`.

        Args:
            x: the input, channels first.

        Returns:
            The (possibly zero-padded) input and the symmetric padding for the torch op.
        """
        pad, torch_padding = self.static or self._resolve(x.shape[2:])
        if pad:
            x = F.pad(x, pad)
        return x, torch_padding


def cast_like(weight, x: torch.Tensor):
    """`weight` in `x`'s dtype (mixed-precision policies keep float32 weights), or None."""
    if weight is None or weight.dtype == x.dtype:
        return weight
    return weight.to(x.dtype)


def check_lora(lora_rank) -> None:
    """Raises for LoRA arguments, which ktorch's convolutions do not implement."""
    if lora_rank is not None:
        raise ValueError(
            f"Argument `lora_rank` is not supported by ktorch convolutions. "
            f"Received: lora_rank={lora_rank}"
        )


def check_positive(value, name: str) -> None:
    """Raises unless `value` is None or a strictly positive int."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a strictly positive value. "
            f"Received {name}={value}."
        )


def check_strides_dilation(strides, dilation_rate) -> None:
    """Raises when strides > 1 and dilation_rate > 1 are combined, as Keras does."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
            f"Received: strides={strides} and dilation_rate={dilation_rate}"
        )


def input_channels(layer: Layer, input_shape) -> int:
    """The channel count of `input_shape` for `layer.data_format`, which must be known."""
    axis = -1 if layer.data_format == "channels_last" else 1
    channels = input_shape[axis]
    if channels is None:
        raise ValueError(
            f"The channel dimension of the inputs to layer '{layer.name}' should be defined. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    return int(channels)


def conv_output_shape(layer: Layer, input_shape, channels: int) -> tuple:
    """Keras's output shape of a convolution-like `layer` that outputs `channels` channels."""
    input_shape = tuple(input_shape)
    rank = layer.rank
    if len(input_shape) != rank + 2:
        raise ValueError(
            f"Input to layer '{layer.name}' must have rank {rank + 2}. "
            f"Received: input_shape={input_shape}"
        )
    axes = conv_utils.spatial_axes(layer.data_format, rank)
    spatial = tuple(
        conv_utils.conv_output_length(input_shape[a], k, s, layer.padding, d)
        for a, k, s, d in zip(
            axes, layer.kernel_size, layer.strides, layer.dilation_rate, strict=True
        )
    )
    if any(length is not None and length <= 0 for length in spatial):
        raise ValueError(
            "Computed output size would be zero or negative. Received "
            f"`inputs shape={input_shape}`, `kernel_size={layer.kernel_size}`, "
            f"`dilation_rate={layer.dilation_rate}`, `strides={layer.strides}`, "
            f"`padding={layer.padding}`."
        )
    if layer.data_format == "channels_last":
        return (input_shape[0], *spatial, channels)
    return (input_shape[0], channels, *spatial)


class BaseConv(Layer):
    """Abstract N-D convolution: `activation(conv(inputs, kernel) + bias)`.

    Weights have Keras shapes (kernel `(*kernel_size, in // groups, filters)`) and are viewed in
    torch's layout inside `call`. With `data_format="channels_last"` the input is permuted to a
    channels_first view (its memory is torch's channels_last format) and the result permuted
    back, so no activation is copied to change layout.

    Args:
        rank: number of spatial dimensions (1, 2 or 3).
        filters: number of output channels.
        kernel_size: int or tuple of `rank` ints, the window size.
        strides: int or tuple of `rank` ints (> 1 is incompatible with dilation_rate > 1).
        padding: `"valid"`, `"same"` (TensorFlow's rule: extra cell at the end) or, for
            rank 1, `"causal"`.
        data_format: `"channels_last"` (default, from `ktorch.config.image_data_format()`) or
            `"channels_first"`.
        dilation_rate: int or tuple of `rank` ints.
        groups: number of channel groups; input channels and filters must be divisible by it.
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
        lora_rank=None,
        lora_alpha=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        check_lora(lora_rank)
        self.rank = rank
        self.filters = filters
        self.groups = groups
        self.kernel_size = conv_utils.standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = conv_utils.standardize_tuple(strides, rank, "strides")
        self.dilation_rate = conv_utils.standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = conv_utils.standardize_padding(padding, allow_causal=rank == 1)
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
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(
                f"The number of groups must be a positive integer. Received: groups={groups}."
            )
        if filters % groups != 0:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={groups}, filters={filters}."
            )
        check_strides_dilation(self.strides, self.dilation_rate)
        self._init_call_plan()

    def _init_call_plan(self) -> None:
        """Precomputes what `call` needs, so a step runs no argument logic."""
        self._channels_last = self.data_format == "channels_last"
        layout = self._layout = conv_utils.TorchLayout(self.data_format, self.rank)
        self._kernel_perm = conv_utils.kernel_to_torch(self.rank)
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
        if channels % self.groups != 0:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of "
                f"groups. Received groups={self.groups}, but the input has {channels} channels "
                f"(full input shape is {tuple(input_shape)})."
            )
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels // self.groups, self.filters),
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
        x, padding = self._pad(self._layout.to_torch(inputs))
        kernel = cast_like(self.kernel, x).permute(self._kernel_perm)
        outputs = self._conv(
            x,
            self._layout.kernel(kernel),
            cast_like(self.bias, x),
            self._torch_strides,
            padding,
            self._torch_dilation,
            self.groups,
        )
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
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "groups": self.groups,
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
