"""`Flatten`: flattens every axis but the batch axis."""

from __future__ import annotations

import math

from ktorch import config
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class Flatten(Layer):
    """Flattens the input to `(batch, features)`; inputs of shape `(batch,)` become `(batch, 1)`.

    With `data_format="channels_first"` the channel axis is first moved last, so the feature
    order is the same as for the channels_last version of the data (as in Keras).

    Args:
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Call arguments:
        inputs: a tensor of rank >= 1.

    Example:
        ```python
        y = Flatten()(torch.zeros(4, 10, 64))  # (4, 640)
        ```
    """

    def __init__(self, data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = config.standardize_data_format(data_format)
        self.input_spec = InputSpec(min_ndim=1)
        self._channels_first = self.data_format == "channels_first"

    def call(self, inputs):
        rank = inputs.ndim
        if self._channels_first and rank > 2:
            inputs = inputs.permute(0, *range(2, rank), 1)
        # reshape is a view (no copy) whenever the layout allows it.
        return inputs.reshape(inputs.shape[0], -1) if rank > 1 else inputs.reshape(-1, 1)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        if not rest:
            return (input_shape[0], 1)
        if any(d is None for d in rest):
            return (input_shape[0], None)
        return (input_shape[0], math.prod(rest))

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"data_format": self.data_format})
        return config_
