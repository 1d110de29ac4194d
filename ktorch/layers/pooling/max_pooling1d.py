"""`MaxPooling1D`: max pooling over 1D windows."""

from __future__ import annotations

from ktorch.layers.pooling.base_pooling import BasePooling


class MaxPooling1D(BasePooling):
    """Max pooling for 1D temporal data.

    Takes the maximum over windows of `pool_size`, moved by `strides`. Output length per
    spatial axis: `(n - pool_size) // strides + 1` with `"valid"`, `(n - 1) // strides + 1`
    with `"same"`; padded cells are ignored.

    Args:
        pool_size: int or tuple of 1 ints, the window size.
        strides: int or tuple of 1 ints; None (default) means `pool_size`.
        padding: `"valid"` or `"same"`.
        data_format: `"channels_last"` (inputs `(batch, steps, features)`, the default) or
            `"channels_first"` (inputs `(batch, features, steps)`).

    Call arguments:
        inputs: a 3D tensor in `data_format` layout.

    Example:
        ```python
        layer = MaxPooling1D(2)
        y = layer(torch.zeros(4, 10, 8))  # (4, 5, 8)
        ```
    """

    def __init__(
        self,
        pool_size=2,
        strides=None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(
            pool_size,
            strides,
            pool_dimensions=1,
            pool_mode="max",
            padding=padding,
            data_format=data_format,
            name=name,
            **kwargs,
        )


MaxPool1D = MaxPooling1D
