"""`GlobalMaxPooling1D`: maximum over all steps."""

from __future__ import annotations

from ktorch.layers.pooling.base_global_pooling import BaseGlobalPooling


class GlobalMaxPooling1D(BaseGlobalPooling):
    """Global max pooling for 1D data: the maximum over all steps.

    Args:
        data_format: `"channels_last"` (inputs `(batch, steps, features)`, the default) or
            `"channels_first"` (inputs `(batch, features, steps)`).
        keepdims: keep the reduced axes with size 1 (output rank 3 instead of 2).

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.

    Example:
        ```python
        y = GlobalMaxPooling1D()(torch.zeros(4, 10, 8))  # (4, 8)
        ```
    """

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(pool_dimensions=1, data_format=data_format, keepdims=keepdims, **kwargs)

    def call(self, inputs):
        self._check_rank(inputs)
        return inputs.amax(dim=self._axes, keepdim=self.keepdims)


GlobalMaxPool1D = GlobalMaxPooling1D
