"""Weight constraints, with Keras 3's names, arguments and formulas."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ktorch.constraints.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm
from ktorch.saving.object_registration import get_registered_object
from ktorch.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

ALL_OBJECTS_DICT: dict[str, type] = {
    "Constraint": Constraint,
    "constraint": Constraint,
    "MaxNorm": MaxNorm,
    "max_norm": MaxNorm,
    "MinMaxNorm": MinMaxNorm,
    "min_max_norm": MinMaxNorm,
    "NonNeg": NonNeg,
    "non_neg": NonNeg,
    "UnitNorm": UnitNorm,
    "unit_norm": UnitNorm,
}


def serialize(constraint: Constraint) -> dict[str, Any]:
    """Returns the Keras config dict (`module`, `class_name`, `config`) of a constraint."""
    return serialize_keras_object(constraint)


def deserialize(config: dict[str, Any] | str, custom_objects: dict | None = None) -> Constraint:
    """Rebuilds a constraint from `serialize()` output or a name.

    Args:
        config: a config dict as written by `serialize()` (or by Keras), or a name.
        custom_objects: extra name-to-class mapping for custom constraints.
    """
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="constraint",
    )


def get(identifier: Any) -> Callable | None:
    """Returns a constraint from a name, a config dict, a class or a callable.

    Args:
        identifier: None; a name such as `"non_neg"` or `"MaxNorm"`; a dict from
            `serialize()`; a `Constraint` class or instance; or a callable `(w) -> w`.

    Returns:
        A constraint (or None for None).

    Example:
        ```python
        c = ktorch.constraints.get("unit_norm")
        ```
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = get_registered_object(identifier, None, ALL_OBJECTS_DICT)
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(
        "Could not interpret constraint identifier. Expected a known constraint name such as "
        f"'max_norm', a config dict or a callable. Received: identifier={identifier!r}"
    )


__all__ = [
    "ALL_OBJECTS_DICT",
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]
