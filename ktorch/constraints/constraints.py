"""Weight constraints: projections applied to a weight after each optimizer update."""

from __future__ import annotations

from typing import Any

import torch

from ktorch import config


def _norms(w: torch.Tensor, axis: int | list[int] | tuple[int, ...] | None) -> torch.Tensor:
    dim = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return torch.sqrt(torch.sum(torch.square(w), dim=dim, keepdim=True))


class Constraint:
    """Base class of weight constraints: a callable `(w) -> projected w`.

    Example:
        ```python
        class NonNegative(Constraint):
            def __call__(self, w):
                return torch.clamp(w, min=0.0)
        ```
    """

    _keras_module = "keras.constraints"

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        """Returns the projection of weight `w` onto the constraint set."""
        return w

    def get_config(self) -> dict[str, Any]:
        """Returns the constraint's arguments as a JSON-serializable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Creates a constraint from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Rescales weights whose norm along `axis` exceeds `max_value`.

    Args:
        max_value: the largest norm allowed.
        axis: axis (or axes) along which norms are computed; for a Dense kernel
            `(in, out)` the default 0 constrains each unit's incoming weights, for a Conv2D
            kernel `(kh, kw, in, out)` use `axis=[0, 1, 2]`.

    Example:
        ```python
        w = MaxNorm(2.0)(torch.randn(16, 4) * 10)
        ```
    """

    def __init__(self, max_value: float = 2, axis: int | list[int] = 0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = _norms(w, self.axis)
        desired = torch.clamp(norms, 0, self.max_value)
        return w * (desired / (config.epsilon() + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Clips weights to be non-negative."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return torch.clamp(w, min=0)


class UnitNorm(Constraint):
    """Rescales weights to unit norm along `axis`.

    Args:
        axis: axis (or axes) along which norms are computed.
    """

    def __init__(self, axis: int | list[int] = 0):
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w / (config.epsilon() + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves the norm of weights along `axis` into `[min_value, max_value]`.

    The new norm is `rate * clip(norm, min_value, max_value) + (1 - rate) * norm`.

    Args:
        min_value: the smallest norm allowed.
        max_value: the largest norm allowed.
        rate: how far to move towards the clipped norm (1.0 enforces it strictly).
        axis: axis (or axes) along which norms are computed.
    """

    def __init__(
        self,
        min_value: float = 0.0,
        max_value: float = 1.0,
        rate: float = 1.0,
        axis: int | list[int] = 0,
    ):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = _norms(w, self.axis)
        desired = (
            self.rate * torch.clamp(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        )
        return w * (desired / (config.epsilon() + norms))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }
