"""Registry of custom classes and functions for deserialization.

This module sits at the bottom of the package (like `config`): every configurable object
(layers, losses, initializers, ...) resolves names through it, so it imports nothing else
from ktorch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
_GLOBAL_CUSTOM_NAMES: dict[Any, str] = {}
_scope = threading.local()


class CustomObjectScope:
    """Exposes custom classes and functions to deserialization inside a `with` block.

    Args:
        custom_objects: dict mapping names to classes or functions.

    Example:
        ```python
        with CustomObjectScope({"MyLayer": MyLayer}):
            model = ktorch.models.model_from_json(text)
        ```
    """

    def __init__(self, custom_objects: dict[str, Any] | None = None):
        self.custom_objects = dict(custom_objects or {})
        self._backup: dict[str, Any] | None = None

    def __enter__(self) -> CustomObjectScope:
        self._backup = getattr(_scope, "objects", None)
        merged = dict(self._backup or {})
        merged.update(self.custom_objects)
        _scope.objects = merged
        return self

    def __exit__(self, *exc) -> None:
        _scope.objects = self._backup


custom_object_scope = CustomObjectScope


def get_custom_objects() -> dict[str, Any]:
    """Returns the global dict of registered custom objects (mutable)."""
    return _GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable:
    """Registers a class or function so that it can be deserialized by name.

    The registered name is `"package>name"` (`name` defaults to the class or function name).

    Args:
        package: namespace of the registered name.
        name: name of the object; defaults to its `__name__`.
    """
    if ">" in package:
        raise ValueError(f"Argument `package` must not contain '>'. Received: package={package!r}")

    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if isinstance(obj, type) and not hasattr(obj, "get_config"):
            raise ValueError(
                f"Cannot register {obj.__name__}: a class must define `get_config()` to be "
                "serializable."
            )
        _GLOBAL_CUSTOM_OBJECTS[registered] = obj
        _GLOBAL_CUSTOM_NAMES[obj] = registered
        return obj

    return decorator


def get_registered_name(obj) -> str:
    """Returns the registered name of `obj`, or its `__name__` when not registered."""
    # A Model subclass built functionally runs as a generated variant of its class.
    obj = vars(obj).get("_functional_origin", obj) if isinstance(obj, type) else obj
    if obj in _GLOBAL_CUSTOM_NAMES:
        return _GLOBAL_CUSTOM_NAMES[obj]
    return obj.__name__


def get_registered_object(
    name: str, custom_objects: dict | None = None, module_objects: dict | None = None
):
    """Looks `name` up in the scope, `custom_objects`, the registry, then `module_objects`."""
    scoped = getattr(_scope, "objects", None)
    for table in (scoped, custom_objects, _GLOBAL_CUSTOM_OBJECTS):
        if table and name in table:
            return table[name]
    if ">" in name:
        short = name.split(">", 1)[1]
        for table in (scoped, custom_objects):
            if table and short in table:
                return table[short]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None
