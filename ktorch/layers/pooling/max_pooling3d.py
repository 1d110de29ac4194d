"""`MaxPooling3D`: max pooling over 3D windows."""

from __future__ import annotations

from ktorch.layers.pooling.base_pooling import BasePooling


class MaxPooling3D(BasePooling):
    """Max pooling for 3D spatial data.

    Takes the maximum over windows of `pool_size`, moved by `strides`. Output length per
    spatial axis: `(n - pool_size) // strides + 1` with `"valid"`, `(n - 1) // strides + 1`
    with `"same"`; padded cells are ignored.

    Args:
        pool_size: int or tuple of 3 ints, the window size.
        strides: int or tuple of 3 ints; None (default) means `pool_size`.
        padding: `"valid"` or `"same"`.
        data_format: `"channels_last"` (inputs `(batch, d1, d2, d3, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, d1, d2, d3)`).

    Call arguments:
        inputs: a 5D tensor in `data_format` layout.

    Example:
        ```python
        layer = MaxPooling3D((2, 2, 2))
        y = layer(torch.zeros(2, 8, 8, 8, 3))  # (2, 4, 4, 4, 3)
        ```
    """

    def __init__(
        self,
        pool_size=(2, 2, 2),
        strides=None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(
            pool_size,
            strides,
            pool_dimensions=3,
            pool_mode="max",
            padding=padding,
            data_format=data_format,
            name=name,
            **kwargs,
        )


MaxPool3D = MaxPooling3D
