"""Helpers shared by the padding, cropping and up-sampling layers."""

from __future__ import annotations

import torch

from ktorch.layers.convolutional import conv_utils

_ORDINALS = ("1st", "2nd", "3rd")


def standardize_pairs(value, rank: int, name: str) -> tuple[tuple[int, int], ...]:
    """Per-axis `(before, after)` amounts from an int, `rank` ints or `rank` pairs.

    Args:
        value: an int (same amount everywhere), or a tuple of `rank` entries, each an int
            (symmetric) or a pair `(before, after)`.
        rank: number of spatial axes.
        name: the argument name (`"padding"`, `"cropping"`) for error messages.

    Returns:
        A tuple of `rank` pairs of non-negative ints.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`{name}` cannot be negative. Received: {name}={value}.")
        return ((value, value),) * rank
    if not hasattr(value, "__len__"):
        raise ValueError(
            f"`{name}` should be either an int, a tuple of {rank} ints or a tuple of {rank} "
            f"tuples of 2 ints. Received: {name}={value}."
        )
    if len(value) != rank:
        raise ValueError(f"`{name}` should have {rank} elements. Received: {name}={value}.")
    return tuple(
        conv_utils.standardize_tuple(entry, 2, f"{_ORDINALS[i]} entry of {name}", allow_zero=True)
        for i, entry in enumerate(value)
    )


def repeat_nearest(x: torch.Tensor, axes: tuple[int, ...], factors: tuple[int, ...]):
    """Repeats each element `factors[i]` times along `axes[i]` (nearest-neighbour upsampling).

    One broadcast view and one copy, whatever the number of axes.

    Args:
        x: the input tensor.
        axes: the axes to upsample, in increasing order.
        factors: the repetition count of each axis.

    Returns:
        The upsampled tensor.
    """
    view_shape, expand_shape, out_shape = [], [], []
    factor_of = dict(zip(axes, factors, strict=True))
    for axis, size in enumerate(x.shape):
        view_shape.append(size)
        expand_shape.append(size)
        factor = factor_of.get(axis)
        if factor is None:
            out_shape.append(size)
            continue
        view_shape.append(1)
        expand_shape.append(factor)
        out_shape.append(size * factor)
    return x.reshape(view_shape).expand(expand_shape).reshape(out_shape)
