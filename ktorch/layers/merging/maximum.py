"""`Maximum` and `maximum`: element-wise maximum of a list of inputs."""

from __future__ import annotations

import torch

from ktorch.layers.merging.base_merge import Merge, apply_op_with_masks


class Maximum(Merge):
    """Element-wise maximum of a list of inputs; masked entries do not take part.

    Example:
        ```python
        Maximum()([torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])])  # [[3., 5.]]
        ```
    """

    def _merge_function(self, inputs, masks):
        return apply_op_with_masks(torch.maximum, inputs, masks)


def maximum(inputs, **kwargs):
    """Functional form of `Maximum`: builds the layer and calls it on `inputs` (a list)."""
    return Maximum(**kwargs)(inputs)
