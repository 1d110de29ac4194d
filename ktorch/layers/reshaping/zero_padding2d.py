"""`ZeroPadding2D`: pads the rows and columns with zeros."""

from __future__ import annotations

import torch.nn.functional as F

from ktorch import config
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.reshaping.reshaping_utils import standardize_pairs


class ZeroPadding2D(Layer):
    """Zero-padding for 2D data: adds rows of zeros at the start and end of the rows and columns.

    Args:
        padding: int (same everywhere), tuple of 2 ints (symmetric rows, cols) or tuple
            of 2 pairs `((top, bottom), (left, right))`.
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`).

    Call arguments:
        inputs: a 4D tensor in `data_format` layout.

    Example:
        ```python
        y = ZeroPadding2D((1, 2))(torch.zeros(4, 8, 8, 3))  # (4, 10, 12, 3)
        ```
    """

    def __init__(self, padding=(1, 1), data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.padding = standardize_pairs(padding, 2, "padding")
        self.input_spec = InputSpec(ndim=4)
        self._offset = 2 if self.data_format == "channels_first" else 1
        flat = [] if self.data_format == "channels_first" else [0, 0]
        for before, after in reversed(self.padding):
            flat.extend((before, after))
        self._flat = tuple(flat)

    def call(self, inputs):
        return F.pad(inputs, self._flat)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for i, (before, after) in enumerate(self.padding):
            axis = self._offset + i
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"padding": self.padding, "data_format": self.data_format})
        return config_
