"""Object (de)serialization in the Keras 3 config format.

A serialized object is `{"module", "class_name", "config", "registered_name"}`; plain values
(numbers, strings, lists, dicts) pass through. The module names are Keras's (`"keras.layers"`,
`"keras.initializers"`, ...) so that configs move between Keras and ktorch.
"""

from __future__ import annotations

import inspect
from typing import Any

from ktorch.saving.object_registration import (
    _GLOBAL_CUSTOM_NAMES,
    get_registered_object,
)


def serialize_keras_object(obj: Any) -> Any:
    """Returns a JSON-compatible description of `obj`."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): serialize_keras_object(v) for k, v in obj.items()}
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        if obj in _GLOBAL_CUSTOM_NAMES:
            return {
                "module": obj.__module__,
                "class_name": "function",
                "config": _GLOBAL_CUSTOM_NAMES[obj],
                "registered_name": "function",
            }
        return obj.__name__
    if isinstance(obj, type):
        return obj.__name__
    if not hasattr(obj, "get_config"):
        raise TypeError(
            f"Cannot serialize object {obj!r} of type {type(obj).__name__}: it has no "
            "`get_config()` method."
        )
    cls = type(obj)
    registered = _GLOBAL_CUSTOM_NAMES.get(cls)
    module = getattr(cls, "_keras_module", None)
    public = registered is None and module is not None and cls.__module__.startswith("ktorch.")
    if not public:
        module = cls.__module__
    return {
        "module": module,
        "class_name": cls.__name__,
        "config": serialize_keras_object(obj.get_config()),
        # As Keras writes it: None for the library's public classes, else the registered name.
        "registered_name": None if public else (registered or cls.__name__),
    }


def deserialize_keras_object(
    config: Any,
    module_objects: dict | None = None,
    custom_objects: dict | None = None,
    printable_module_name: str = "object",
) -> Any:
    """Rebuilds an object from `serialize_keras_object` output or a plain name.

    Args:
        config: a name (`"relu"`), a dict as written by `serialize_keras_object`, or None.
        module_objects: built-in name-to-object table of the calling module.
        custom_objects: user-provided name-to-object table.
        printable_module_name: what the object is, for error messages.
    """
    if config is None:
        return None
    if isinstance(config, str):
        obj = get_registered_object(config, custom_objects, module_objects)
        if obj is None:
            raise ValueError(
                f"Unknown {printable_module_name}: '{config}'. Please ensure you are using a "
                "`ktorch.utils.CustomObjectScope` and that this object is included in the scope, "
                "or pass it in `custom_objects`."
            )
        return obj() if isinstance(obj, type) else obj
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Could not interpret serialized {printable_module_name}: {config!r}. Expected a "
            "name or a dict with 'class_name' and 'config'."
        )
    class_name = config["class_name"]
    inner = config.get("config", {})
    if class_name == "function":
        name = inner if isinstance(inner, str) else config.get("registered_name")
        obj = get_registered_object(name, custom_objects, module_objects)
        if obj is None:
            raise ValueError(f"Unknown {printable_module_name} function: '{name}'.")
        return obj
    registered = config.get("registered_name") or class_name
    cls = get_registered_object(registered, custom_objects, module_objects)
    if cls is None:
        cls = get_registered_object(class_name, custom_objects, module_objects)
    if cls is None:
        raise ValueError(
            f"Unknown {printable_module_name}: '{registered}'. Please ensure you are using a "
            "`ktorch.utils.CustomObjectScope` and that this object is included in the scope, or "
            "pass it in `custom_objects`."
        )
    if not isinstance(inner, dict):
        raise ValueError(
            f"Invalid config for {printable_module_name} '{class_name}': expected a dict. "
            f"Received: {inner!r}"
        )
    if hasattr(cls, "from_config"):
        return cls.from_config(inner)
    return cls(**inner)


# What deserializing a hostile or damaged config can raise: a missing key or index, a name
# that resolves to the wrong kind of object, a value of the wrong type or an absurd size for a
# layer argument (TypeError, RuntimeError from the allocator, OverflowError), a graph nested too
# deep. The loaders turn these into a ValueError naming the file.
CONFIG_ERRORS = (
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    RuntimeError,
    ArithmeticError,
    RecursionError,
)

# Keras configs nest a few levels per nested model; a file nested deeper than this is refused
# before deserialization, whose recursion depth would otherwise depend on the caller's stack.
MAX_CONFIG_DEPTH = 256


def check_config_depth(config: Any, what: str) -> None:
    """Raises `ValueError` naming `what` if `config` nests lists/dicts deeper than
    `MAX_CONFIG_DEPTH` levels. Iterative, so any parsed document can be checked."""
    pending = [(config, 1)]
    while pending:
        value, depth = pending.pop()
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(
                f"{what} is nested more than {MAX_CONFIG_DEPTH} levels deep; refusing it."
            )
        items = value.values() if isinstance(value, dict) else value
        pending.extend((item, depth + 1) for item in items)
