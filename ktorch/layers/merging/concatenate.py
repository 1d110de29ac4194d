"""`Concatenate` and `concatenate`: joins a list of inputs along an axis."""

from __future__ import annotations

import torch

from ktorch.layers.merging.base_merge import Merge, _as_bool


class Concatenate(Merge):
    """Concatenates a list of inputs along `axis`; all other axes must match.

    Args:
        axis: the concatenation axis.

    Example:
        ```python
        Concatenate(axis=1)([torch.zeros(2, 3), torch.ones(2, 4)])  # (2, 7)
        ```
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape) -> None:
        if (
            not isinstance(input_shape, (list, tuple))
            or len(input_shape) < 1
            or not isinstance(input_shape[0], (list, tuple))
        ):
            raise ValueError(
                "A `Concatenate` layer should be called on a list of at least 1 input. "
                f"Received: input_shape={input_shape}"
            )
        reduced = []
        for shape in input_shape:
            shape = list(shape)
            if len(shape) > self.axis:
                del shape[self.axis]
            reduced.append(tuple(shape))
        if len(set(reduced)) != 1:
            message = (
                "A `Concatenate` layer requires inputs with matching shapes except for the "
                f"concatenation axis. Received: input_shape={input_shape}"
            )
            if len({len(s) for s in reduced}) != 1:
                raise ValueError(message)
            for axis in range(len(reduced[0])):
                if len({s[axis] for s in reduced if s[axis] is not None}) > 1:
                    raise ValueError(message)
        self.built = True

    def _merge_function(self, inputs, masks):
        return torch.cat(inputs, dim=self.axis)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not isinstance(
            input_shape[0], (list, tuple)
        ):
            raise ValueError(
                "A `Concatenate` layer should be called on a list of inputs. "
                f"Received: input_shape={input_shape}"
            )
        output_shape = list(input_shape[0])
        for shape in input_shape[1:]:
            if output_shape[self.axis] is None or shape[self.axis] is None:
                output_shape[self.axis] = None
                break
            output_shape[self.axis] += shape[self.axis]
        return tuple(output_shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"`mask` should be a list. Received mask={mask}")
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"`inputs` should be a list. Received: inputs={inputs}")
        if len(mask) != len(inputs):
            raise ValueError(
                "The lists `inputs` and `mask` should have the same length. Received: "
                f"inputs={inputs} of length {len(inputs)}, and mask={mask} of length {len(mask)}"
            )
        if all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask, strict=True):
            if m is None:
                masks.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
                continue
            m = _as_bool(m).to(x.device)
            if m.ndim < x.ndim:
                m = m.unsqueeze(-1).expand(x.shape)
            masks.append(m)
        return torch.cat(masks, dim=self.axis).any(dim=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config["axis"] = self.axis
        return config


def concatenate(inputs, axis: int = -1, **kwargs):
    """Functional form of `Concatenate`: builds the layer and calls it on `inputs` (a list)."""
    return Concatenate(axis=axis, **kwargs)(inputs)
