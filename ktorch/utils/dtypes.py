"""Dtype names: Keras's dtype strings (`"float32"`) and the matching `torch.dtype`."""

from __future__ import annotations

from typing import Any

import torch

from ktorch import config

# Short names torch also defines, read the way Keras users mean them ("int" is int64).
_ALIASES = {"float": "float32", "int": "int64", "double": "float64"}


def standardize_dtype(dtype: Any) -> str:
    """Returns the Keras dtype name of `dtype`.

    Args:
        dtype: None (meaning `ktorch.config.floatx()`), a dtype name, a `torch.dtype`, or an
            object with a `name` such as a NumPy dtype.

    Returns:
        The dtype name, e.g. `"float32"`.

    Example:
        ```python
        standardize_dtype(torch.int64)  # "int64"
        ```
    """
    if dtype is None:
        return config.floatx()
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    name = str(getattr(dtype, "name", dtype))
    name = _ALIASES.get(name, name)
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(
            "Invalid dtype. Expected a dtype name such as 'float32', a torch.dtype or a NumPy "
            f"dtype. Received: dtype={dtype!r}"
        )
    return name


def torch_dtype(dtype: Any) -> torch.dtype:
    """Returns the `torch.dtype` of `dtype` (anything `standardize_dtype` accepts)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return getattr(torch, standardize_dtype(dtype))
