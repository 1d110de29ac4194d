"""`Multiply` and `multiply`: element-wise product of a list of inputs."""

from __future__ import annotations

from ktorch.layers.merging.base_merge import Merge, expand_mask


class Multiply(Merge):
    """Multiplies a list of inputs element-wise.

    Masked entries count as 1; when every input is masked, positions masked in all inputs
    are zero.

    Example:
        ```python
        Multiply()([torch.full((2, 3), 2.0), torch.full((2, 3), 3.0)])  # all 6.
        ```
    """

    def _merge_function(self, inputs, masks):
        all_masked = all(m is not None for m in masks)
        output, output_mask = None, None
        for x, mask in zip(inputs, masks, strict=True):
            if mask is not None:
                mask = expand_mask(mask, x)
                x = x.masked_fill(~mask, 1)
                if all_masked:
                    output_mask = mask if output_mask is None else output_mask | mask
            output = x if output is None else output * x
        if all_masked:
            output = output.masked_fill(~output_mask, 0)
        return output


def multiply(inputs, **kwargs):
    """Functional form of `Multiply`: builds the layer and calls it on `inputs` (a list)."""
    return Multiply(**kwargs)(inputs)
