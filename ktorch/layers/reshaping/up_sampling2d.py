"""`UpSampling2D`: scales rows and columns by integer factors."""

from __future__ import annotations

import torch.nn.functional as F

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.reshaping.reshaping_utils import repeat_nearest

_INTERPOLATIONS = ("nearest", "bilinear")


class UpSampling2D(Layer):
    """Upsampling for 2D data: scales rows by `size[0]` and columns by `size[1]`.

    `"nearest"` repeats each pixel; `"bilinear"` interpolates with half-pixel centers (no
    corner alignment), as Keras's image resizing does.

    Args:
        size: int or tuple of 2 ints, the row and column factors.
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`, the default)
            or `"channels_first"` (inputs `(batch, channels, rows, cols)`).
        interpolation: `"nearest"` or `"bilinear"`.

    Call arguments:
        inputs: a 4D tensor in `data_format` layout.

    Example:
        ```python
        y = UpSampling2D((2, 3))(torch.zeros(4, 5, 5, 3))  # (4, 10, 15, 3)
        ```
    """

    def __init__(
        self,
        size=(2, 2),
        data_format: str | None = None,
        interpolation: str = "nearest",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.size = conv_utils.standardize_tuple(size, 2, "size")
        interpolation = interpolation.lower()
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"Invalid value for argument `interpolation`. Expected one of "
                f"{_INTERPOLATIONS}. Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation
        self.input_spec = InputSpec(ndim=4)
        self._axes = conv_utils.spatial_axes(self.data_format, 2)
        self._channels_last = self.data_format == "channels_last"

    def call(self, inputs):
        if self.interpolation == "nearest":
            return repeat_nearest(inputs, self._axes, self.size)
        # channels_last: a permuted view, no copy; torch sees channels_last memory.
        x = inputs.permute(0, 3, 1, 2) if self._channels_last else inputs
        height, width = x.shape[2] * self.size[0], x.shape[3] * self.size[1]
        outputs = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        return outputs.permute(0, 2, 3, 1) if self._channels_last else outputs

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, factor in zip(self._axes, self.size, strict=True):
            if shape[axis] is not None:
                shape[axis] *= factor
        return tuple(shape)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update(
            {
                "size": self.size,
                "data_format": self.data_format,
                "interpolation": self.interpolation,
            }
        )
        return config_
