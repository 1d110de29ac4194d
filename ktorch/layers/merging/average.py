"""`Average` and `average`: element-wise mean of a list of inputs."""

from __future__ import annotations

from ktorch.layers.merging.base_merge import Merge


class Average(Merge):
    """Averages a list of inputs element-wise.

    Example:
        ```python
        Average()([torch.zeros(2, 3), torch.ones(2, 3)])  # all 0.5
        ```
    """

    def _merge_function(self, inputs, masks):
        output = inputs[0]
        for x in inputs[1:]:
            output = output + x
        return output / len(inputs)


def average(inputs, **kwargs):
    """Functional form of `Average`: builds the layer and calls it on `inputs` (a list)."""
    return Average(**kwargs)(inputs)
