"""Minimal nested-structure helpers (lists, tuples, dicts) used across the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def flatten(structure: Any) -> list:
    """Leaves of a nested list/tuple/dict structure, dicts in sorted-key order."""
    if isinstance(structure, (list, tuple)):
        out = []
        for item in structure:
            out.extend(flatten(item))
        return out
    if isinstance(structure, dict):
        out = []
        for key in sorted(structure):
            out.extend(flatten(structure[key]))
        return out
    return [structure]


def map_structure(fn: Callable, structure: Any) -> Any:
    """Applies `fn` to every leaf, keeping the structure."""
    if isinstance(structure, list):
        return [map_structure(fn, x) for x in structure]
    if isinstance(structure, tuple):
        return tuple(map_structure(fn, x) for x in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def pack_sequence_as(structure: Any, flat: list) -> Any:
    """Inverse of `flatten`: rebuilds `structure` with leaves taken from `flat`."""
    it = iter(flat)

    def build(s):
        if isinstance(s, list):
            return [build(x) for x in s]
        if isinstance(s, tuple):
            return tuple(build(x) for x in s)
        if isinstance(s, dict):
            built = {k: build(s[k]) for k in sorted(s)}
            return {k: built[k] for k in s}
        return next(it)

    return build(structure)


def is_nested(structure: Any) -> bool:
    return isinstance(structure, (list, tuple, dict))
