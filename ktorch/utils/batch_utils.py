"""Packing and unpacking of `(x, y, sample_weight)` batches, as Keras's utilities do."""

from __future__ import annotations


def unpack_x_y_sample_weight(data) -> tuple:
    """Splits a batch into `(x, y, sample_weight)`; the missing parts are None.

    Args:
        data: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)` (a tuple or a list).

    Returns:
        The tuple `(x, y, sample_weight)`.

    Example:
        ```python
        def train_step(self, data):
            x, y, sample_weight = ktorch.utils.unpack_x_y_sample_weight(data)
        ```
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(
        "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`. "
        f"Received a tuple of length {len(data)}."
    )


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """The inverse of `unpack_x_y_sample_weight`: `x`, `(x, y)` or `(x, y, sample_weight)`."""
    if y is None:
        # A tuple or list x would otherwise be read back as (x, y).
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)
