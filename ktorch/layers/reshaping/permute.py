"""`Permute`: reorders the non-batch axes."""

from __future__ import annotations

from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class Permute(Layer):
    """Permutes the non-batch axes of the input by a pattern indexed from 1.

    Args:
        dims: the permutation of `(1, ..., rank - 1)`, e.g. `(2, 1)` swaps the two axes of a
            rank-3 input.

    Call arguments:
        inputs: a tensor of rank `len(dims) + 1`.

    Example:
        ```python
        y = Permute((2, 1))(torch.zeros(4, 10, 64))  # (4, 64, 10)
        ```
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in "
                f"`dims` must be consecutive and start from 1. Received dims={dims}"
            )
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)
        self._perm = (0, *self.dims)

    def call(self, inputs):
        # A view: no data is moved.
        return inputs.permute(self._perm)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"dims": self.dims})
        return config_
