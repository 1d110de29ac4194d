"""`BaseGlobalPooling`: reduction over all spatial axes, for the global pooling layers."""

from __future__ import annotations

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec, assert_input_compatibility
from ktorch.layers.layer import Layer


class BaseGlobalPooling(Layer):
    """Abstract global pooling: reduces every spatial axis, keeping batch and channels.

    Args:
        pool_dimensions: number of spatial dimensions.
        data_format: `"channels_last"` (default) or `"channels_first"`.
        keepdims: keep the spatial axes with size 1.
    """

    def __init__(
        self,
        pool_dimensions: int,
        data_format: str | None = None,
        keepdims: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.keepdims = keepdims
        self.input_spec = InputSpec(ndim=pool_dimensions + 2)
        # Reducing in place of the layout: channels_last needs no permute at all.
        self._axes = conv_utils.spatial_axes(self.data_format, pool_dimensions)
        self._ndim = pool_dimensions + 2

    def _check_rank(self, inputs) -> None:
        """Raises Keras's input error for a wrong rank, which a reduction would not catch."""
        if inputs.ndim != self._ndim:
            assert_input_compatibility(self.input_spec, tuple(inputs.shape), self.name)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        rank = len(input_shape) - 2
        if self.data_format == "channels_last":
            if self.keepdims:
                return (input_shape[0], *(1,) * rank, input_shape[-1])
            return (input_shape[0], input_shape[-1])
        if self.keepdims:
            return (input_shape[0], input_shape[1], *(1,) * rank)
        return (input_shape[0], input_shape[1])

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config_
