"""Activation functions, with Keras 3's names, arguments and formulas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ktorch.activations.activations import (
    celu,
    elu,
    exponential,
    gelu,
    glu,
    hard_shrink,
    hard_sigmoid,
    hard_silu,
    hard_swish,
    hard_tanh,
    leaky_relu,
    linear,
    log_sigmoid,
    log_softmax,
    mish,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    soft_shrink,
    softmax,
    softplus,
    softsign,
    sparse_plus,
    sparse_sigmoid,
    sparsemax,
    squareplus,
    swish,
    tanh,
    tanh_shrink,
    threshold,
)
from ktorch.saving.object_registration import get_registered_object
from ktorch.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

_FUNCTIONS = (
    celu,
    elu,
    exponential,
    gelu,
    glu,
    hard_shrink,
    hard_sigmoid,
    hard_silu,
    hard_tanh,
    leaky_relu,
    linear,
    log_sigmoid,
    log_softmax,
    mish,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    soft_shrink,
    softmax,
    softplus,
    softsign,
    sparse_plus,
    sparse_sigmoid,
    sparsemax,
    squareplus,
    tanh,
    tanh_shrink,
    threshold,
)

ALL_OBJECTS_DICT: dict[str, Callable] = {fn.__name__: fn for fn in _FUNCTIONS}
ALL_OBJECTS_DICT["swish"] = silu
ALL_OBJECTS_DICT["hard_swish"] = hard_silu

_NAMES = {fn: fn.__name__ for fn in _FUNCTIONS}


def serialize(activation: Callable) -> str | dict[str, Any]:
    """Returns the name of a built-in activation, or the config of a custom one.

    Args:
        activation: an activation function (or a configurable callable object).

    Returns:
        The name string for built-in activations (`"relu"`); a config dict otherwise.
    """
    name = _NAMES.get(activation)
    if name is not None:
        return name
    return serialize_keras_object(activation)


def deserialize(config: str | dict[str, Any], custom_objects: dict | None = None) -> Callable:
    """Returns the activation function named by `config` (a name or a serialized dict).

    Args:
        config: a name such as `"relu"`, or a dict as written by `serialize()`.
        custom_objects: extra name-to-function mapping for custom activations.
    """
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="activation function",
    )


def get(identifier: Any) -> Callable:
    """Returns an activation function from a name, a config dict or a callable.

    Args:
        identifier: None (gives `linear`), a name such as `"relu"` or `"swish"`, a dict from
            `serialize()`, or a callable.

    Returns:
        The activation function.

    Example:
        ```python
        act = ktorch.activations.get("gelu")
        y = act(torch.randn(4, 8))
        ```
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        obj = get_registered_object(identifier, None, ALL_OBJECTS_DICT)
    elif isinstance(identifier, dict):
        obj = deserialize(identifier)
    else:
        obj = identifier
    if callable(obj):
        return obj
    raise ValueError(
        "Could not interpret activation function identifier. Expected a known activation name "
        f"such as 'relu', a config dict or a callable. Received: identifier={identifier!r}"
    )


__all__ = [
    "ALL_OBJECTS_DICT",
    "celu",
    "deserialize",
    "elu",
    "exponential",
    "gelu",
    "get",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
]
