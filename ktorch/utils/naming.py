"""Keras-style unique names: `dense`, `dense_1`, `dense_2`, ..."""

from __future__ import annotations

import collections
import re

_uids: collections.defaultdict[str, int] = collections.defaultdict(int)


def to_snake_case(name: str) -> str:
    """`"Conv2DTranspose"` -> `"conv2d_transpose"`, as Keras names layers."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def uniquify(name: str) -> str:
    """Returns `name` the first time, then `name_1`, `name_2`, ..."""
    count = _uids[name]
    _uids[name] += 1
    return name if count == 0 else f"{name}_{count}"


def auto_name(class_name: str) -> str:
    return uniquify(to_snake_case(class_name))


def reset_uids() -> None:
    """Forgets all generated names (what `ktorch.backend.clear_session()` does)."""
    _uids.clear()
