"""`AveragePooling2D`: average pooling over 2D windows."""

from __future__ import annotations

from ktorch.layers.pooling.base_pooling import BasePooling


class AveragePooling2D(BasePooling):
    """Average pooling for 2D spatial data.

    Takes the mean over windows of `pool_size`, moved by `strides`. Output length per
    spatial axis: `(n - pool_size) // strides + 1` with `"valid"`, `(n - 1) // strides + 1`
    with `"same"`; a window's mean counts only its real (unpadded) cells.

    Args:
        pool_size: int or tuple of 2 ints, the window size.
        strides: int or tuple of 2 ints; None (default) means `pool_size`.
        padding: `"valid"` or `"same"`.
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`, the default) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`).

    Call arguments:
        inputs: a 4D tensor in `data_format` layout.

    Example:
        ```python
        layer = AveragePooling2D((2, 2))
        y = layer(torch.zeros(4, 28, 28, 8))  # (4, 14, 14, 8)
        ```
    """

    def __init__(
        self,
        pool_size,
        strides=None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(
            pool_size,
            strides,
            pool_dimensions=2,
            pool_mode="average",
            padding=padding,
            data_format=data_format,
            name=name,
            **kwargs,
        )


AvgPool2D = AveragePooling2D
