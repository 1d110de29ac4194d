"""`InputLayer` and `Input()`: the entry points of a functional graph."""

from __future__ import annotations

from ktorch import config
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor, Node


class InputLayer(Layer):
    """The layer behind `Input()`: holds the input's shape, dtype and name.

    Args:
        shape: shape without the batch axis (None for unknown sizes).
        batch_size: fixed batch size, or None.
        dtype: dtype of the input (floatx by default).
        input_tensor: an existing KerasTensor to wrap instead of creating one.
        name: the input's name (`input_layer`, `input_layer_1`, ... by default).
        batch_shape: full shape including the batch axis (alternative to shape + batch_size).
    """

    def __init__(
        self,
        shape=None,
        batch_size=None,
        dtype=None,
        sparse=None,
        ragged=None,
        batch_shape=None,
        input_tensor=None,
        optional=False,
        name=None,
        **kwargs,
    ):
        if "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        super().__init__(name=name, dtype=dtype, **kwargs)
        if shape is not None and batch_shape is not None:
            raise ValueError(
                "You cannot pass both `shape` and `batch_shape` at the same time. "
                f"Received: shape={shape}, batch_shape={batch_shape}"
            )
        if input_tensor is not None:
            if not isinstance(input_tensor, KerasTensor):
                raise ValueError(
                    "Argument `input_tensor` must be a KerasTensor. "
                    f"Received: input_tensor={input_tensor!r}"
                )
            batch_shape = input_tensor.shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument to `Input`.")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        self.batch_shape = tuple(batch_shape)
        self._input_dtype = dtype if dtype is not None else config.floatx()
        self.sparse = bool(sparse)
        self.optional = optional
        if input_tensor is None:
            input_tensor = KerasTensor(self.batch_shape, self._input_dtype, name=self.name)
        self.built = True
        Node(self, (), {}, input_tensor)
        self._input_tensor = input_tensor

    def call(self, inputs):
        return inputs

    @property
    def output(self):
        return self._input_tensor

    def get_config(self) -> dict:
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self._input_tensor.dtype,
            "sparse": self.sparse,
            "optional": self.optional,
            "name": self.name,
        }


def Input(  # noqa: N802 - Keras's public name
    shape=None,
    batch_size=None,
    dtype=None,
    sparse=None,
    batch_shape=None,
    name=None,
    tensor=None,
    optional=False,
) -> KerasTensor:
    """Creates a symbolic input tensor for a functional model.

    Args:
        shape: shape without the batch axis, e.g. `(28, 28, 1)`; None for unknown sizes.
        batch_size: optional fixed batch size.
        dtype: input dtype (floatx by default).
        batch_shape: full shape including the batch axis.
        name: the input's name (also the key for dict inputs).

    Returns:
        A `KerasTensor`.

    Example:
        ```python
        x = ktorch.Input(shape=(784,))
        y = ktorch.layers.Dense(10)(x)
        model = ktorch.Model(x, y)
        ```
    """
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        batch_shape=batch_shape,
        name=name,
        input_tensor=tensor,
        optional=optional,
    )
    return layer.output
