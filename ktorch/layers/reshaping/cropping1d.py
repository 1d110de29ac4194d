"""`Cropping1D`: crops the steps axis."""

from __future__ import annotations

from ktorch.layers.convolutional import conv_utils
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer


class Cropping1D(Layer):
    """Cropping for 1D data: removes cells at the start and end of the steps axis.

    Args:
        cropping: int (same at both ends) or tuple `(before, after)`.

    Call arguments:
        inputs: a 3D tensor `(batch, steps, features)`.

    Example:
        ```python
        y = Cropping1D((1, 2))(torch.zeros(4, 10, 8))  # (4, 7, 8)
        ```
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = conv_utils.standardize_tuple(cropping, 2, "cropping", allow_zero=True)
        self.input_spec = InputSpec(ndim=3)
        self._axes = (1,)
        index = [slice(None)] * 3
        for axis, (before, after) in zip(self._axes, (self.cropping,), strict=True):
            index[axis] = slice(before, -after if after else None)
        self._index = tuple(index)

    def _check(self, shape) -> None:
        for axis, (before, after) in zip(self._axes, (self.cropping,), strict=True):
            if shape[axis] is not None and before + after >= shape[axis]:
                raise ValueError(
                    "Values in `cropping` argument should be smaller than the corresponding "
                    f"spatial dimension of the input. Received: input_shape={tuple(shape)}, "
                    f"cropping={self.cropping}"
                )

    def call(self, inputs):
        self._check(inputs.shape)
        # Slicing is a view: no data is copied.
        return inputs[self._index]

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shape = list(input_shape)
        for axis, (before, after) in zip(self._axes, (self.cropping,), strict=True):
            if shape[axis] is not None:
                shape[axis] -= before + after
        return tuple(shape)

    def get_config(self) -> dict:
        config_ = super().get_config()
        config_.update({"cropping": self.cropping})
        return config_
