"""`Merge`: the base of the layers that combine a list of tensors element-wise."""

from __future__ import annotations

import torch

from ktorch.layers.layer import Layer


class Merge(Layer):
    """Base class of the element-wise merge layers (`Add`, `Multiply`, ...).

    Inputs of different ranks are broadcast by inserting axes after the batch axis; sizes
    equal to 1 broadcast. The output mask is the logical OR of the input masks when every
    input has one, else None.

    Call arguments:
        inputs: a list of tensors.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self._reshape_required = False

    def _merge_function(self, inputs, masks):
        raise NotImplementedError

    def _compute_elemwise_op_output_shape(self, shape1, shape2):
        if shape1 is None or shape2 is None:
            return None
        if len(shape1) < len(shape2):
            return self._compute_elemwise_op_output_shape(shape2, shape1)
        if not shape2:
            return tuple(shape1)
        output_shape = list(shape1[: -len(shape2)])
        for i, j in zip(shape1[-len(shape2) :], shape2, strict=True):
            if i is None or j is None:
                output_shape.append(None)
            elif i == 1:
                output_shape.append(j)
            elif j == 1 or i == j:
                output_shape.append(i)
            else:
                raise ValueError(
                    f"Inputs have incompatible shapes. Received shapes {tuple(shape1)} and "
                    f"{tuple(shape2)}"
                )
        return tuple(output_shape)

    def _check_input_shapes(self, input_shape) -> None:
        if (
            not isinstance(input_shape, (list, tuple))
            or not input_shape
            or not isinstance(input_shape[0], (list, tuple))
        ):
            raise ValueError(
                "A merge layer should be called on a list of inputs. "
                f"Received: input_shape={input_shape} (not a list of shapes)"
            )
        batch_sizes = {s[0] for s in input_shape if s} - {None}
        if len(batch_sizes) > 1:
            raise ValueError(
                "Cannot merge tensors with different batch sizes. Received tensors with shapes "
                f"{input_shape}"
            )

    def build(self, input_shape) -> None:
        self._check_input_shapes(input_shape)
        output_shape = input_shape[0][1:]
        for shape in input_shape[1:]:
            output_shape = self._compute_elemwise_op_output_shape(output_shape, shape[1:])
        self._reshape_required = len({len(s) for s in input_shape}) != 1
        self.built = True

    def call(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                "A merge layer should be called on a list of inputs. "
                f"Received: inputs={inputs} (not a list of tensors)"
            )
        inputs = list(inputs)
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
        if self._reshape_required:
            max_ndim = max(x.ndim for x in inputs)
            expanded = []
            for i, x in enumerate(inputs):
                if x.ndim < max_ndim:
                    # A view: new axes after the batch axis broadcast a lower-rank input (whose
                    # mask no longer lines up with it, so it is dropped as Keras does).
                    x = x.reshape(x.shape[:1] + (1,) * (max_ndim - x.ndim) + x.shape[1:])
                    masks[i] = None
                expanded.append(x)
            inputs = expanded
        return self._merge_function(inputs, masks)

    def compute_output_shape(self, input_shape):
        output_shape = input_shape[0][1:]
        for shape in input_shape[1:]:
            output_shape = self._compute_elemwise_op_output_shape(output_shape, shape[1:])
        batch_sizes = {s[0] for s in input_shape if s is not None} - {None}
        batch = next(iter(batch_sizes)) if len(batch_sizes) == 1 else None
        return (batch, *output_shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"`mask` should be a list. Received: mask={mask}")
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"`inputs` should be a list. Received: inputs={inputs}")
        if len(mask) != len(inputs):
            raise ValueError(
                "The lists `inputs` and `mask` should have the same length. Received: "
                f"inputs={inputs} of length {len(inputs)}, and mask={mask} of length {len(mask)}"
            )
        if any(m is None for m in mask):
            return None
        output_mask = _as_bool(mask[0])
        for m in mask[1:]:
            output_mask = output_mask | _as_bool(m)
        return output_mask


def _as_bool(mask) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    return mask if mask.dtype == torch.bool else mask != 0


def expand_mask(mask, x):
    """Broadcasts a `(batch, ...)` mask without the feature axis to the shape of `x`."""
    if mask is None:
        return None
    return _as_bool(mask).to(x.device).unsqueeze(-1).expand(x.shape)


def apply_op_with_masks(op, inputs, masks):
    """Folds `op` over `inputs`; masked entries take the other operand's value."""
    output, output_mask = None, None
    for x, mask in zip(inputs, masks, strict=True):
        mask = expand_mask(mask, x)
        if output is None:
            output, output_mask = x, mask
            continue
        if mask is not None:
            x = torch.where(mask, x, output)
        if output_mask is not None:
            output = torch.where(output_mask, output, x)
        output_mask = output_mask | mask if mask is not None and output_mask is not None else None
        output = op(output, x)
    return output
