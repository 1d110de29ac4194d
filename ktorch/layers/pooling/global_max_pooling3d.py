"""`GlobalMaxPooling3D`: maximum over all three spatial axes."""

from __future__ import annotations

from ktorch.layers.pooling.base_global_pooling import BaseGlobalPooling


class GlobalMaxPooling3D(BaseGlobalPooling):
    """Global max pooling for 3D data: the maximum over all three spatial axes.

    Args:
        data_format: `"channels_last"` (inputs `(batch, d1, d2, d3, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, d1, d2, d3)`).
        keepdims: keep the reduced axes with size 1 (output rank 5 instead of 2).

    Call arguments:
        inputs: a 5D tensor in `data_format` layout.

    Example:
        ```python
        y = GlobalMaxPooling3D()(torch.zeros(2, 4, 4, 4, 3))  # (2, 3)
        ```
    """

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(pool_dimensions=3, data_format=data_format, keepdims=keepdims, **kwargs)

    def call(self, inputs):
        self._check_rank(inputs)
        return inputs.amax(dim=self._axes, keepdim=self.keepdims)


GlobalMaxPool3D = GlobalMaxPooling3D
