"""`GlobalAveragePooling2D`: mean over all rows and columns."""

from __future__ import annotations

from ktorch.layers.pooling.base_global_pooling import BaseGlobalPooling


class GlobalAveragePooling2D(BaseGlobalPooling):
    """Global average pooling for 2D data: the mean over all rows and columns.

    Args:
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`).
        keepdims: keep the reduced axes with size 1 (output rank 4 instead of 2).

    Call arguments:
        inputs: a 4D tensor in `data_format` layout.

    Example:
        ```python
        y = GlobalAveragePooling2D()(torch.zeros(4, 7, 7, 8))  # (4, 8)
        ```
    """

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(pool_dimensions=2, data_format=data_format, keepdims=keepdims, **kwargs)

    def call(self, inputs):
        self._check_rank(inputs)
        return inputs.mean(dim=self._axes, keepdim=self.keepdims)


GlobalAvgPool2D = GlobalAveragePooling2D
