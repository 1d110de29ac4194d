"""`Variable`: a `torch.nn.Parameter` that also speaks Keras's variable API."""

from __future__ import annotations

import copy

import numpy as np
import torch


class Variable(torch.nn.Parameter):
    """A layer weight: a `torch.nn.Parameter` with Keras's `Variable` attributes.

    Non-trainable weights (e.g. batch-norm moving statistics) are Variables with
    `requires_grad=False`, so `parameters()`, `state_dict()`, `.to()` and DDP all see them.

    Attributes:
        name: the weight's own name (`"kernel"`).
        path: the layer path plus name (`"dense/kernel"`).
        trainable: whether the optimizer updates it; setting it sets `requires_grad`.
        value: the tensor itself, so `v.value.grad` works as in the Keras torch guide.
        regularizer: callable adding a penalty to the layer's `losses`, or None.
        constraint: callable projecting the weight after each optimizer step, or None.
    """

    def __new__(cls, data=None, requires_grad: bool = True, **kwargs):
        if data is None:
            data = torch.empty(0)
        return torch.Tensor._make_subclass(cls, data, requires_grad)

    def __init__(
        self,
        data=None,
        requires_grad: bool = True,
        name: str = "variable",
        path: str | None = None,
        regularizer=None,
        constraint=None,
    ):
        self._keras_name = name
        self._keras_path = path or name
        self._trainable = bool(requires_grad)
        self.regularizer = regularizer
        self.constraint = constraint

    def __deepcopy__(self, memo):
        result = type(self)(
            self.data.clone(memory_format=torch.preserve_format), self.requires_grad
        )
        memo[id(self)] = result
        for key, value in self.__dict__.items():
            setattr(result, key, copy.deepcopy(value, memo))
        return result

    def __reduce_ex__(self, protocol):
        return (
            _rebuild_variable,
            (self.data, self.requires_grad, dict(self.__dict__)),
        )

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path}, shape={tuple(self.shape)}, "
            f"dtype={str(self.dtype).replace('torch.', '')}, trainable={self.trainable}>"
        )

    @property
    def name(self) -> str:
        return self._keras_name

    @property
    def path(self) -> str:
        return self._keras_path

    @property
    def value(self) -> Variable:
        return self

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.requires_grad_(self._trainable)

    def assign(self, value) -> Variable:
        """Copies `value` (array or tensor of the same shape) into the weight, in place."""
        value = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
        if tuple(value.shape) != tuple(self.shape):
            raise ValueError(
                f"Cannot assign to variable '{self.path}': expected shape {tuple(self.shape)}. "
                f"Received: value.shape={tuple(value.shape)}"
            )
        with torch.no_grad():
            self.copy_(value.to(device=self.device, dtype=self.dtype))
        return self

    def assign_add(self, value) -> Variable:
        with torch.no_grad():
            self.add_(torch.as_tensor(value, device=self.device, dtype=self.dtype))
        return self

    def assign_sub(self, value) -> Variable:
        with torch.no_grad():
            self.sub_(torch.as_tensor(value, device=self.device, dtype=self.dtype))
        return self

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """A copy of the value as a NumPy array (never a view of the weight's memory)."""
        return to_numpy_copy(self)


def to_numpy_copy(tensor: torch.Tensor) -> np.ndarray:
    """`tensor` as a NumPy array that does not share its memory (a later update of the tensor
    leaves the array unchanged, as Keras's `get_weights` promises)."""
    value = tensor.detach()
    # .cpu() of a device tensor already copies; a CPU tensor needs its own copy.
    value = value.clone() if value.device.type == "cpu" else value.cpu()
    return value.numpy()


def _rebuild_variable(data, requires_grad, state):
    variable = Variable(data, requires_grad)
    variable.__dict__.update(state)
    return variable
