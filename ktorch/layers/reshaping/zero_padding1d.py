"""`ZeroPadding1D`: pads the steps axis with zeros."""

from __future__ import annotations

import torch.nn.functional as F

from ktorch import config
from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class ZeroPadding1D(Layer):
    """Zero-padding for 1D data: adds rows of zeros at the start and end of the steps axis.

    Args:
        padding: int (same at both ends) or tuple `(before, after)`.
        data_format: `"channels_last"` (inputs `(batch, steps, features)`, the default) or
            `"channels_first"` (inputs `(batch, features, steps)`).

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.

    Example:
        ```python
        y = ZeroPadding1D(2)(torch.zeros(4, 10, 8))  # (4, 14, 8)
        ```
    """

    def __init__(self, padding=1, data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.padding = conv_utils.standardize_tuple(padding, 2, "padding", allow_zero=True)
        self.input_spec = InputSpec(ndim=3)
        self._offset = 2 if self.data_format == "channels_first" else 1
        flat = [] if self.data_format == "channels_first" else [0, 0]
        for before, after in reversed((self.padding,)):
            flat.extend((before, after))
        self._flat = tuple(flat)

    def call(self, inputs):
        return F.pad(inputs, self._flat)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for i, (before, after) in enumerate((self.padding,)):
            axis = self._offset + i
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"padding": self.padding, "data_format": self.data_format})
        return config_
