"""`RepeatVector`: repeats a vector `n` times along a new axis."""

from __future__ import annotations

from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class RepeatVector(Layer):
    """Repeats a `(batch, features)` input `n` times into `(batch, n, features)`.

    Args:
        n: the number of repetitions, a positive int.

    Call arguments:
        inputs: a 2D tensor.

    Example:
        ```python
        y = RepeatVector(3)(torch.zeros(8, 32))  # (8, 3, 32)
        ```
    """

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.")
        if n <= 0:
            raise ValueError(f"Argument `n` should be a positive integer. Received: n={n}")
        self.n = n
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs):
        # An expanded view: the repetitions share the input's memory (no copy).
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"n": self.n})
        return config_
