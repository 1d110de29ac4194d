"""`Dot` and `dot`: batched dot product of two inputs."""

from __future__ import annotations

import math

import torch

from ktorch import config as ktorch_config
from ktorch.layers.merging.base_merge import Merge


def _l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    inv_norm = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
    return x * torch.clamp(inv_norm, max=1.0 / ktorch_config.epsilon())


def batch_dot(x: torch.Tensor, y: torch.Tensor, axes) -> torch.Tensor:
    """Per-sample dot product of `x` and `y` over one axis of each.

    Args:
        x, y: tensors with the batch axis first.
        axes: `(axis of x, axis of y)` to contract, non-negative and not the batch axis.

    Returns:
        A tensor of shape `x.shape` without `axes[0]`, then `y.shape[1:]` without `axes[1]`;
        `(batch, 1)` when both inputs are 2D.
    """
    a0, a1 = axes
    x_rest = x.shape[1:a0] + x.shape[a0 + 1 :]
    y_rest = y.shape[1:a1] + y.shape[a1 + 1 :]
    batch = x.shape[0]
    x3 = x.movedim(a0, -1).reshape(batch, math.prod(x_rest), x.shape[a0])
    y3 = y.movedim(a1, 1).reshape(batch, y.shape[a1], math.prod(y_rest))
    out = torch.bmm(x3, y3)
    if not x_rest and not y_rest:
        return out.reshape(batch, 1)
    return out.reshape(batch, *x_rest, *y_rest)


class Dot(Merge):
    """Dot product between samples of two tensors, along the given axes.

    For inputs of shapes `(batch, n)` and `(batch, n)` the output is `(batch, 1)`; in general
    it is the first input's shape without its contracted axis followed by the second's
    (without batch and contracted axis).

    Args:
        axes: axis (int) or pair of axes to contract.
        normalize: whether to L2-normalize the inputs along the contracted axes first, so the
            output is the cosine proximity.

    Example:
        ```python
        Dot(axes=1)([torch.ones(2, 3), torch.ones(2, 3)])  # [[3.], [3.]]
        ```
    """

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)):
                raise TypeError(
                    "Invalid type for argument `axes`: it should be a list or an int. "
                    f"Received: axes={axes}"
                )
            if len(axes) != 2:
                raise ValueError(
                    "Invalid format for argument `axes`: it should contain two elements. "
                    f"Received: axes={axes}"
                )
            if not isinstance(axes[0], int) or not isinstance(axes[1], int):
                raise ValueError(
                    "Invalid format for argument `axes`: list elements should be integers. "
                    f"Received: axes={axes}"
                )
        self.axes = axes
        self.normalize = normalize

    def _resolve_axes(self, ndim1: int, ndim2: int) -> list[int]:
        if isinstance(self.axes, int):
            if self.axes < 0:
                return [self.axes % ndim1, self.axes % ndim2]
            return [self.axes, self.axes]
        return [a % n if a < 0 else a for a, n in zip(self.axes, (ndim1, ndim2), strict=True)]

    def build(self, input_shape) -> None:
        if (
            not isinstance(input_shape, (list, tuple))
            or len(input_shape) != 2
            or not isinstance(input_shape[0], (list, tuple))
        ):
            raise ValueError(
                "A `Dot` layer should be called on a list of 2 inputs. "
                f"Received: input_shape={input_shape}"
            )
        shape1, shape2 = input_shape
        axes = self._resolve_axes(len(shape1), len(shape2))
        if shape1[axes[0]] != shape2[axes[1]]:
            raise ValueError(
                f"Incompatible input shapes: axis values {shape1[axes[0]]} (at axis {axes[0]}) "
                f"!= {shape2[axes[1]]} (at axis {axes[1]}). Full input shapes: {shape1}, "
                f"{shape2}"
            )
        self.built = True

    def _merge_function(self, inputs, masks):
        if len(inputs) != 2:
            raise ValueError(
                f"A `Dot` layer should be called on exactly 2 inputs. Received: inputs={inputs}"
            )
        x1, x2 = inputs
        axes = self._resolve_axes(x1.ndim, x2.ndim)
        if 0 in axes:
            raise ValueError(
                "Cannot perform batch_dot over axis 0. If your inputs are not batched, add a "
                f"dummy batch dimension to your inputs. Received: axes={self.axes}"
            )
        if self.normalize:
            x1 = _l2_normalize(x1, axes[0])
            x2 = _l2_normalize(x2, axes[1])
        return batch_dot(x1, x2, axes)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                "A `Dot` layer should be called on a list of 2 inputs. "
                f"Received: input_shape={input_shape}"
            )
        shape1, shape2 = list(input_shape[0]), list(input_shape[1])
        axes = self._resolve_axes(len(shape1), len(shape2))
        shape1.pop(axes[0])
        shape2.pop(axes[1])
        shape2.pop(0)
        output_shape = shape1 + shape2
        if len(output_shape) == 1:
            output_shape.append(1)
        return tuple(output_shape)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"axes": self.axes, "normalize": self.normalize})
        return config


def dot(inputs, axes=-1, **kwargs):
    """Functional form of `Dot`: builds the layer and calls it on `inputs` (2 tensors)."""
    return Dot(axes=axes, **kwargs)(inputs)
