"""`Cropping3D`: crops the three spatial axes."""

from __future__ import annotations

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.reshaping.reshaping_utils import standardize_pairs


class Cropping3D(Layer):
    """Cropping for 3D data: removes cells at the start and end of the three spatial axes.

    Args:
        cropping: int (same everywhere), tuple of 3 ints (symmetric per axis) or tuple
            of 3 pairs `(before, after)`.
        data_format: `"channels_last"` (inputs `(batch, d1, d2, d3, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, d1, d2, d3)`).

    Call arguments:
        inputs: a 5D tensor in `data_format` layout.

    Example:
        ```python
        y = Cropping3D(1)(torch.zeros(2, 6, 6, 6, 3))  # (2, 4, 4, 4, 3)
        ```
    """

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.cropping = standardize_pairs(cropping, 3, "cropping")
        self.input_spec = InputSpec(ndim=5)
        self._axes = conv_utils.spatial_axes(self.data_format, 3)
        index = [slice(None)] * 5
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
