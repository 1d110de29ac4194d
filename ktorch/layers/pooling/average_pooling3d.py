"""`AveragePooling3D`: average pooling over 3D windows."""

from __future__ import annotations

from ktorch.layers.pooling.base_pooling import BasePooling


class AveragePooling3D(BasePooling):
    """Average pooling for 3D spatial data.

    Takes the mean over windows of `pool_size`, moved by `strides`. Output length per
    spatial axis: `(n - pool_size) // strides + 1` with `"valid"`, `(n - 1) // strides + 1`
    with `"same"`; a window's mean counts only its real (unpadded) cells.

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
        layer = AveragePooling3D((2, 2, 2))
        y = layer(torch.zeros(2, 8, 8, 8, 3))  # (2, 4, 4, 4, 3)
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
            pool_dimensions=3,
            pool_mode="average",
            padding=padding,
            data_format=data_format,
            name=name,
            **kwargs,
        )


AvgPool3D = AveragePooling3D
