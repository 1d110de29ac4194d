"""Weight regularizers, with Keras 3's names, arguments and formulas."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ktorch.regularizers.regularizers import L1, L1L2, L2, OrthogonalRegularizer, Regularizer
from ktorch.saving.object_registration import get_registered_object
from ktorch.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

ALL_OBJECTS_DICT: dict[str, type] = {
    "Regularizer": Regularizer,
    "regularizer": Regularizer,
    "L1": L1,
    "l1": L1,
    "L2": L2,
    "l2": L2,
    "L1L2": L1L2,
    "l1l2": L1L2,
    "l1_l2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def serialize(regularizer: Regularizer) -> dict[str, Any]:
    """Returns the Keras config dict (`module`, `class_name`, `config`) of a regularizer."""
    return serialize_keras_object(regularizer)


def deserialize(config: dict[str, Any] | str, custom_objects: dict | None = None) -> Regularizer:
    """Rebuilds a regularizer from `serialize()` output or a name.

    Args:
        config: a config dict as written by `serialize()` (or by Keras), or a name.
        custom_objects: extra name-to-class mapping for custom regularizers.
    """
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="regularizer",
    )


def get(identifier: Any) -> Callable | None:
    """Returns a regularizer from a name, a config dict, a class or a callable.

    Args:
        identifier: None; a name such as `"l2"` or `"L1L2"`; a dict from `serialize()`; a
            `Regularizer` class or instance; or a callable `(weight) -> scalar tensor`.

    Returns:
        A regularizer (or None for None).

    Example:
        ```python
        reg = ktorch.regularizers.get({"class_name": "L2", "config": {"l2": 1e-4}})
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
        "Could not interpret regularizer identifier. Expected a known regularizer name such as "
        f"'l2', a config dict or a callable. Received: identifier={identifier!r}"
    )


__all__ = [
    "ALL_OBJECTS_DICT",
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "deserialize",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
]
