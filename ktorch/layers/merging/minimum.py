"""`Minimum` and `minimum`: element-wise minimum of a list of inputs."""

from __future__ import annotations

import torch

from ktorch.layers.merging.base_merge import Merge, apply_op_with_masks


class Minimum(Merge):
    """Element-wise minimum of a list of inputs; masked entries do not take part.

    Example:
        ```python
        Minimum()([torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])])  # [[1., 2.]]
        ```
    """

    def _merge_function(self, inputs, masks):
        return apply_op_with_masks(torch.minimum, inputs, masks)


def minimum(inputs, **kwargs):
    """Functional form of `Minimum`: builds the layer and calls it on `inputs` (a list)."""
    return Minimum(**kwargs)(inputs)
