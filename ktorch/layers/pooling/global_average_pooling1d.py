"""`GlobalAveragePooling1D`: mean over all steps."""

from __future__ import annotations

import torch

from ktorch.layers.pooling.base_global_pooling import BaseGlobalPooling


class GlobalAveragePooling1D(BaseGlobalPooling):
    """Global average pooling for 1D data: the mean over all steps.

    Args:
        data_format: `"channels_last"` (inputs `(batch, steps, features)`, the default) or
            `"channels_first"` (inputs `(batch, features, steps)`).
        keepdims: keep the reduced axes with size 1 (output rank 3 instead of 2).

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.
        mask: optional `(batch, steps)` boolean mask; the mean is taken over the unmasked
            steps only.

    Example:
        ```python
        y = GlobalAveragePooling1D()(torch.zeros(4, 10, 8))  # (4, 8)
        ```
    """

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(pool_dimensions=1, data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True
        self._mask_axis = 2 if self.data_format == "channels_last" else 1

    def call(self, inputs, mask=None):
        self._check_rank(inputs)
        if mask is None:
            return inputs.mean(dim=self._axes, keepdim=self.keepdims)
        keep = mask.unsqueeze(self._mask_axis).to(torch.bool)
        total = torch.where(keep, inputs, 0).sum(dim=self._axes, keepdim=self.keepdims)
        count = keep.to(inputs.dtype).sum(dim=self._axes, keepdim=self.keepdims)
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None


GlobalAvgPool1D = GlobalAveragePooling1D
