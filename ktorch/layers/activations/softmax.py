"""`Softmax`: softmax activation along one or more axes, with mask support."""

from __future__ import annotations

import torch

from ktorch import activations
from ktorch.layers.layer import Layer


def _large_negative(dtype: torch.dtype) -> float:
    return -3e4 if dtype == torch.float16 else -1e9


class Softmax(Layer):
    """Softmax activation: `exp(x) / sum(exp(x))` along `axis`.

    Args:
        axis: axis, or list of axes, along which the softmax normalizes.

    Call arguments:
        inputs: tensor of any shape.
        mask: optional boolean (or 0/1) tensor broadcastable to `inputs`; masked positions get
            probability 0 and the rest are renormalized (a fully masked slice gives zeros).

    Example:
        ```python
        Softmax()(torch.tensor([[1.0, 2.0, 1.0]]), mask=torch.tensor([[True, True, False]]))
        # [[0.2689, 0.7311, 0.]]
        ```
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.supports_masking = True
        self.built = True

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = torch.as_tensor(mask, device=inputs.device)
            _check_mask_shape(inputs, mask)
            if mask.dtype != torch.bool:
                mask = mask > 0.5
            # masked_fill takes a Python scalar: no constant tensor is created on the device.
            inputs = inputs.masked_fill(~mask, _large_negative(inputs.dtype))
        axis = self.axis
        if isinstance(axis, (list, tuple)):
            axis = axis[0] if len(axis) == 1 else tuple(axis)
        outputs = activations.softmax(inputs, axis=axis)
        if mask is not None:
            outputs = outputs.masked_fill(~mask, 0.0)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["axis"] = self.axis
        return config


def _check_mask_shape(inputs, mask) -> None:
    if mask.ndim > inputs.ndim:
        raise ValueError(
            "The `mask` must be broadcastable to `inputs` and must not have more dimensions. "
            f"Received: inputs.shape={tuple(inputs.shape)}, mask.shape={tuple(mask.shape)}"
        )
    for m_dim, i_dim in zip(reversed(mask.shape), reversed(inputs.shape), strict=False):
        if m_dim != 1 and m_dim != i_dim:
            raise ValueError(
                "The `mask` must be broadcastable to `inputs`. Each mask dimension must be 1 or "
                "match the corresponding input dimension. Received: "
                f"inputs.shape={tuple(inputs.shape)}, mask.shape={tuple(mask.shape)}"
            )
