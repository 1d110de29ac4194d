"""`Add` and `add`: element-wise sum of a list of inputs."""

from __future__ import annotations

from ktorch.layers.merging.base_merge import Merge


class Add(Merge):
    """Adds a list of inputs element-wise (all of the same shape, or broadcastable).

    Example:
        ```python
        Add()([torch.ones(2, 3), torch.ones(2, 3)])  # all 2.
        ```
    """

    def _merge_function(self, inputs, masks):
        output = inputs[0]
        for x in inputs[1:]:
            output = output + x
        return output


def add(inputs, **kwargs):
    """Functional form of `Add`: builds the layer and calls it on `inputs` (a list)."""
    return Add(**kwargs)(inputs)
