"""Weight regularizers: penalties added to the training loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ktorch import config


def _validate_float_arg(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (float, int))
        or math.isinf(value)
        or math.isnan(value)
        or value < 0
    ):
        raise ValueError(
            f"Invalid value for argument {name}. Expected a non-negative float. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _as_float32(value: float) -> float:
    # Keras keeps this factor as a float32 tensor, so its config holds the float32 value.
    return float(np.float32(value))


def _l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    inv_norm = torch.rsqrt(torch.sum(x * x, dim=axis, keepdim=True))
    return x * torch.clamp(inv_norm, max=1.0 / config.epsilon())


class Regularizer:
    """Base class of weight regularizers: a callable `(weight) -> scalar tensor`.

    Subclasses implement `__call__(x)` and `get_config()`.

    Example:
        ```python
        class L2Regularizer(Regularizer):
            def __init__(self, strength):
                self.strength = strength

            def __call__(self, x):
                return self.strength * torch.sum(torch.square(x))

            def get_config(self):
                return {"strength": self.strength}
        ```
    """

    _keras_module = "keras.regularizers"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the penalty for weight `x` as a scalar tensor."""
        return x.new_zeros(())

    def get_config(self) -> dict[str, Any]:
        """Returns the regularizer's arguments as a JSON-serializable dict."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config().")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Creates a regularizer from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """Penalty `l1 * sum(abs(x)) + l2 * sum(square(x))`.

    Args:
        l1: L1 factor (non-negative; None means 0).
        l2: L2 factor (non-negative; None means 0).

    Example:
        ```python
        penalty = L1L2(l1=0.01, l2=0.01)(torch.ones(3, 3))
        ```
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _validate_float_arg(0.0 if l1 is None else l1, "l1")
        self.l2 = _validate_float_arg(0.0 if l2 is None else l2, "l2")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        penalty = x.new_zeros(())
        if self.l1 != 0.0:
            penalty = penalty + self.l1 * torch.sum(torch.abs(x))
        if self.l2 != 0.0:
            penalty = penalty + self.l2 * torch.sum(torch.square(x))
        return penalty

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """Penalty `l1 * sum(abs(x))`.

    Args:
        l1: non-negative factor (None means 0.01).
    """

    def __init__(self, l1: float = 0.01):
        self.l1 = _as_float32(_validate_float_arg(0.01 if l1 is None else l1, "l1"))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.l1 * torch.sum(torch.abs(x))

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """Penalty `l2 * sum(square(x))`.

    Args:
        l2: non-negative factor (None means 0.01).
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = _validate_float_arg(0.01 if l2 is None else l2, "l2")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2 * torch.sum(torch.square(x))

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalty encouraging the rows (or columns) of a 2D weight to be orthonormal.

    The rows (`mode="rows"`) or columns (`mode="columns"`) are L2-normalized, and the penalty
    is `factor * 0.5 * sum(|off-diagonal dot products|) / number_of_pairs`.

    Args:
        factor: non-negative strength of the penalty.
        mode: `"rows"` or `"columns"`.
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = _as_float32(_validate_float_arg(factor, "factor"))
        if mode not in ("rows", "columns"):
            raise ValueError(
                "Invalid value for argument mode. Expected one of ('rows', 'columns'). "
                f"Received: mode={mode!r}"
            )
        self.mode = mode

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2:
            raise ValueError(
                "Inputs to OrthogonalRegularizer must have rank 2. Received: "
                f"inputs.shape={tuple(x.shape)}"
            )
        if self.mode == "rows":
            x = _l2_normalize(x, axis=1)
            product = x @ x.T
        else:
            x = _l2_normalize(x, axis=0)
            product = x.T @ x
        size = product.shape[0]
        off_diagonal = product * (1.0 - torch.eye(size, dtype=x.dtype, device=x.device))
        num_pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * torch.sum(torch.abs(off_diagonal)) / num_pairs

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}
