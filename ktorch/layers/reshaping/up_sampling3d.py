"""`UpSampling3D`: repeats cells along the three spatial axes."""

from __future__ import annotations

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.reshaping.reshaping_utils import repeat_nearest


class UpSampling3D(Layer):
    """Upsampling for 3D data: repeats each cell `size[i]` times along spatial axis `i`.

    Args:
        size: int or tuple of 3 ints, the factors of the three spatial axes.
        data_format: `"channels_last"` (inputs `(batch, d1, d2, d3, channels)`, the default)
            or `"channels_first"` (inputs `(batch, channels, d1, d2, d3)`).

    Call arguments:
        inputs: a 5D tensor in `data_format` layout.

    Example:
        ```python
        y = UpSampling3D(2)(torch.zeros(2, 3, 3, 3, 4))  # (2, 6, 6, 6, 4)
        ```
    """

    def __init__(self, size=(2, 2, 2), data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.size = conv_utils.standardize_tuple(size, 3, "size")
        self.input_spec = InputSpec(ndim=5)
        self._axes = conv_utils.spatial_axes(self.data_format, 3)

    def call(self, inputs):
        return repeat_nearest(inputs, self._axes, self.size)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, factor in zip(self._axes, self.size, strict=True):
            if shape[axis] is not None:
                shape[axis] *= factor
        return tuple(shape)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"size": self.size, "data_format": self.data_format})
        return config_
