"""`Cropping2D`: crops the rows and columns."""

from __future__ import annotations

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.reshaping.reshaping_utils import standardize_pairs


class Cropping2D(Layer):
    """Cropping for 2D data: removes cells at the start and end of the rows and columns.

    Args:
        cropping: int (same everywhere), tuple of 2 ints (symmetric rows, cols) or
            tuple of 2 pairs `((top, bottom), (left, right))`.
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`).

    Call arguments:
        inputs: a 4D tensor in `data_format` layout.

    Example:
        ```python
        y = Cropping2D(((1, 1), (2, 0)))(torch.zeros(4, 8, 8, 3))  # (4, 6, 6, 3)
        ```
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.cropping = standardize_pairs(cropping, 2, "cropping")
        self.input_spec = InputSpec(ndim=4)
        self._axes = conv_utils.spatial_axes(self.data_format, 2)
        index = [slice(None)] * 4
        for axis, (before, after) in zip(self._axes, self.cropping, strict=True):
            index[axis] = slice(before, -after if after else None)
        self._index = tuple(index)

    def _check(self, shape) -> None:
        for axis, (before, after) in zip(self._axes, self.cropping, strict=True):
            if shape[axis] is not None and before + after >= shape[axis]:
                raise ValueError(
                    "Values in `cropping` argument should be smaller than the corresponding "
                    f"spatial dimension of the input. Received: input_shape={tuple(shape)}, "
                    f"cropping={self.cropping}"
                )

    def call(self, inputs):
        self._check(inputs.shape)
        # Slicing is a view: no data is copied.
        return inputs[self._index]

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shape = list(input_shape)
        for axis, (before, after) in zip(self._axes, self.cropping, strict=True):
            if shape[axis] is not None:
                shape[axis] -= before + after
        return tuple(shape)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"cropping": self.cropping, "data_format": self.data_format})
        return config_
