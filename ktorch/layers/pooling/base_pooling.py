"""`BasePooling`: N-D max and average pooling with Keras's "same" padding rule."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class BasePooling(Layer):
    """Abstract N-D pooling over windows of `pool_size` moved by `strides`.

    With `padding="same"` the windows are placed as TensorFlow places them (an odd total
    padding puts the extra cell at the end) and padded cells never count: max pooling ignores
    them, average pooling divides by the number of real cells in each window.

    Args:
        pool_size: int or tuple of `pool_dimensions` ints.
        strides: int or tuple of ints; None means `pool_size`.
        pool_dimensions: number of spatial dimensions.
        pool_mode: `"max"` or `"average"`.
        padding: `"valid"` or `"same"`.
        data_format: `"channels_last"` (default) or `"channels_first"`.
    """

    def __init__(
        self,
        pool_size,
        strides,
        pool_dimensions: int,
        pool_mode: str = "max",
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.pool_size = conv_utils.standardize_tuple(pool_size, pool_dimensions, "pool_size")
        strides = pool_size if strides is None else strides
        self.strides = conv_utils.standardize_tuple(strides, pool_dimensions, "strides")
        if pool_mode not in ("max", "average"):
            raise ValueError(
                f"Invalid value for argument `pool_mode`. Expected 'max' or 'average'. "
                f"Received: pool_mode={pool_mode!r}"
            )
        self.pool_mode = pool_mode
        self.padding = conv_utils.standardize_padding(padding)
        self.data_format = config.standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=pool_dimensions + 2)
        self._rank = pool_dimensions
        self._channels_last = self.data_format == "channels_last"
        layout = self._layout = conv_utils.TorchLayout(self.data_format, pool_dimensions)
        self._torch_pool = layout.spatial(self.pool_size, 1)
        self._torch_strides = layout.spatial(self.strides, 1)
        self._window = math.prod(self.pool_size)
        self._static_pads = None
        if self.padding == "valid":
            self._static_pads = [(0, 0)] * layout.rank
        elif all(s == 1 for s in self.strides):
            # With unit strides the "same" amounts do not depend on the input size.
            self._static_pads = [conv_utils.same_padding(0, k, 1) for k in self._torch_pool]

    def _pads(self, x: torch.Tensor) -> list[tuple[int, int]]:
        if self._static_pads is not None:
            return self._static_pads
        return [
            conv_utils.same_padding(n, k, s)
            for n, k, s in zip(x.shape[2:], self._torch_pool, self._torch_strides, strict=True)
        ]

    def _max_pool(self, x: torch.Tensor, pads) -> torch.Tensor:
        pool = _MAX_POOL[self._layout.rank]
        if all(left == right for left, right in pads):
            padding = tuple(left for left, _ in pads)
            return pool(x, self._torch_pool, self._torch_strides, padding)
        x = F.pad(x, conv_utils.flat_pad(pads), value=-math.inf)
        return pool(x, self._torch_pool, self._torch_strides)

    def _average_pool(self, x: torch.Tensor, pads) -> torch.Tensor:
        rank = self._layout.rank
        pool = _AVG_POOL[rank]
        if all(left == right for left, right in pads):
            padding = tuple(left for left, _ in pads)
            return pool(x, self._torch_pool, self._torch_strides, padding, False, False)
        # Asymmetric padding: window sums over zero padding, divided by real-cell counts that
        # are built on the input's device (no host transfer).
        spatial = x.shape[2:]
        padded = F.pad(x, conv_utils.flat_pad(pads))
        sums = pool(padded, self._torch_pool, self._torch_strides, 0, False, True)
        counts = None
        for axis, (n, k, s, (left, _)) in enumerate(
            zip(spatial, self._torch_pool, self._torch_strides, pads, strict=True)
        ):
            start = torch.arange(sums.shape[2 + axis], device=x.device) * s - left
            count = (start + k).clamp(max=n) - start.clamp(min=0)
            count = count.reshape((-1,) + (1,) * (rank - 1 - axis))
            counts = count if counts is None else counts * count
        return sums * self._window / counts.to(sums.dtype)

    def call(self, inputs):
        # channels_last: a permuted view, no copy; torch sees channels_last memory.
        x = self._layout.to_torch(inputs)
        pads = self._pads(x)
        if self.pool_mode == "max":
            return self._layout.from_torch(self._max_pool(x, pads))
        return self._layout.from_torch(self._average_pool(x, pads))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        axes = conv_utils.spatial_axes(self.data_format, self._rank)
        spatial = tuple(
            conv_utils.conv_output_length(input_shape[a], k, s, self.padding)
            for a, k, s in zip(axes, self.pool_size, self.strides, strict=True)
        )
        if any(length is not None and length <= 0 for length in spatial):
            raise ValueError(
                "Computed output size would be zero or negative. Received: "
                f"`inputs.shape={input_shape}`, `pool_size={self.pool_size}`, "
                f"`strides={self.strides}`, `padding={self.padding}`."
            )
        if self._channels_last:
            return (input_shape[0], *spatial, input_shape[-1])
        return (input_shape[0], input_shape[1], *spatial)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update(
            {
                "pool_size": self.pool_size,
                "padding": self.padding,
                "strides": self.strides,
                "data_format": self.data_format,
            }
        )
        return config_
