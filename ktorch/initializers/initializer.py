"""Base class of weight initializers."""

from __future__ import annotations

from typing import Any

import torch

from ktorch import config

_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "int": "int32"}


def standardize_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Resolves a dtype name (`"float32"`), a torch dtype or None (floatx) to a torch dtype.

    Args:
        dtype: a dtype name, a `torch.dtype`, or None for `ktorch.config.floatx()`.

    Returns:
        The corresponding `torch.dtype`.
    """
    if dtype is None:
        dtype = config.floatx()
    if isinstance(dtype, torch.dtype):
        return dtype
    name = getattr(dtype, "name", dtype)
    if isinstance(name, str):
        name = _DTYPE_ALIASES.get(name, name)
        resolved = getattr(torch, name, None)
        if isinstance(resolved, torch.dtype):
            return resolved
    raise ValueError(
        f"Invalid value for argument dtype. Expected a dtype name such as 'float32' or a "
        f"torch.dtype. Received: dtype={dtype!r}"
    )


class Initializer:
    """Base class of all initializers: a callable `(shape, dtype=None) -> torch.Tensor`.

    Subclasses implement `__call__(shape, dtype=None)` returning a CPU tensor of that shape
    and dtype, and `get_config()` when they take arguments.

    Example:
        ```python
        class ExampleRandomNormal(Initializer):
            def __init__(self, mean, stddev):
                self.mean = mean
                self.stddev = stddev

            def __call__(self, shape, dtype=None):
                dtype = standardize_dtype(dtype)
                return torch.randn(shape, dtype=dtype) * self.stddev + self.mean

            def get_config(self):
                return {"mean": self.mean, "stddev": self.stddev}
        ```
    """

    _keras_module = "keras.initializers"

    def __call__(self, shape: tuple[int, ...], dtype: str | torch.dtype | None = None):
        """Returns a tensor of `shape` and `dtype` filled as the initializer specifies.

        Args:
            shape: shape of the tensor.
            dtype: dtype of the tensor; defaults to `ktorch.config.floatx()`.
        """
        raise NotImplementedError("Initializer subclasses must implement `__call__()`.")

    def get_config(self) -> dict[str, Any]:
        """Returns the initializer's arguments as a JSON-serializable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Creates an initializer from the output of `get_config()`."""
        return cls(**config)

    def clone(self) -> Initializer:
        """Returns a new initializer with the same configuration."""
        return self.__class__.from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
