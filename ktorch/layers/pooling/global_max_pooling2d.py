"""`GlobalMaxPooling2D`: maximum over all rows and columns."""

from __future__ import annotations

from ktorch.layers.pooling.base_global_pooling import BaseGlobalPooling


class GlobalMaxPooling2D(BaseGlobalPooling):
    """Global max pooling for 2D data: the maximum over all rows and columns.

    Args:
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`).
        keepdims: keep the reduced axes with size 1 (output rank 4 instead of 2).

    Call arguments:
        inputs: a 4D tensor in `data_format` layout.

    Example:
        ```python
        y = GlobalMaxPooling2D()(torch.zeros(4, 7, 7, 8))  # (4, 8)
        ```
    """

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(pool_dimensions=2, data_format=data_format, keepdims=keepdims, **kwargs)

    def call(self, inputs):
        self._check_rank(inputs)
        return inputs.amax(dim=self._axes, keepdim=self.keepdims)


GlobalMaxPool2D = GlobalMaxPooling2D
