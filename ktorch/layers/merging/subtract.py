"""`Subtract` and `subtract`: element-wise difference of two inputs."""

from __future__ import annotations

from ktorch.layers.merging.base_merge import Merge


class Subtract(Merge):
    """Subtracts two inputs: `inputs[0] - inputs[1]`, element-wise.

    Example:
        ```python
        Subtract()([torch.full((2, 3), 3.0), torch.ones(2, 3)])  # all 2.
        ```
    """

    def build(self, input_shape) -> None:
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                "A `Subtract` layer should be called on exactly 2 inputs. "
                f"Received: input_shape={input_shape}"
            )

    def _merge_function(self, inputs, masks):
        if len(inputs) != 2:
            raise ValueError(
                "A `Subtract` layer should be called on exactly 2 inputs. "
                f"Received: inputs={inputs}"
            )
        return inputs[0] - inputs[1]


def subtract(inputs, **kwargs):
    """Functional form of `Subtract`: builds the layer and calls it on `inputs` (2 tensors)."""
    return Subtract(**kwargs)(inputs)
