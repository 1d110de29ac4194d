"""`Reshape`: reshapes the non-batch axes to a target shape."""

from __future__ import annotations

import math

from ktorch.layers.layer import Layer


def _validate_target_shape(target_shape) -> tuple[int, ...]:
    target_shape = tuple(int(d) for d in target_shape)
    if any(d < -1 for d in target_shape):
        raise ValueError(
            "Each dimension in `target_shape` must be a non-negative integer, or `-1` for a "
            f"single unknown dimension. Received: target_shape={target_shape}."
        )
    if target_shape.count(-1) > 1:
        raise ValueError(
            "There must be at most one unknown dimension (-1) in `target_shape`. "
            f"Received: target_shape={target_shape}."
        )
    return target_shape


class Reshape(Layer):
    """Reshapes the input to `(batch, *target_shape)`; one entry may be -1 (inferred).

    Args:
        target_shape: the new shape without the batch axis, e.g. `(3, 4)` or `(-1, 2, 2)`.

    Call arguments:
        inputs: a tensor whose non-batch size matches `target_shape`.

    Example:
        ```python
        y = Reshape((3, 4))(torch.zeros(8, 12))  # (8, 3, 4)
        ```
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = _validate_target_shape(target_shape)

    def call(self, inputs):
        # reshape is a view (no copy) whenever the layout allows it.
        return inputs.reshape(inputs.shape[0], *self.target_shape)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        target = self.target_shape
        if any(d is None for d in rest):
            return (input_shape[0], *(None if d == -1 else d for d in target))
        size = math.prod(rest)
        if -1 not in target:
            if size != math.prod(target):
                raise ValueError(
                    "The total size of the tensor must be unchanged. Received: "
                    f"input_shape={rest}, target_shape={target}"
                )
            return (input_shape[0], *target)
        known = math.prod(d for d in target if d != -1)
        if known == 0 or size % known != 0:
            raise ValueError(
                "The total size of the tensor must be unchanged, but the input size "
                f"{size} cannot be divided into target_shape={target}. Received: "
                f"input_shape={rest}"
            )
        return (input_shape[0], *(size // known if d == -1 else d for d in target))

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"target_shape": self.target_shape})
        return config_
