"""Optimizers: Keras 3's optimizers running on `torch.optim`."""

from __future__ import annotations

from typing import Any

import torch

from ktorch.optimizers import schedules
from ktorch.optimizers.adadelta import Adadelta
from ktorch.optimizers.adagrad import Adagrad
from ktorch.optimizers.adam import Adam
from ktorch.optimizers.adamax import Adamax
from ktorch.optimizers.adamw import AdamW
from ktorch.optimizers.lion import Lion
from ktorch.optimizers.nadam import Nadam
from ktorch.optimizers.optimizer import Optimizer
from ktorch.optimizers.rmsprop import RMSprop
from ktorch.optimizers.sgd import SGD
from ktorch.optimizers.torch_optimizer import TorchOptimizer
from ktorch.saving import serialization_lib

ALL_OBJECTS = (Optimizer, Adam, SGD, RMSprop, Adadelta, AdamW, Adagrad, Adamax, Nadam, Lion)
ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in ALL_OBJECTS}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Returns the config dict of an optimizer."""
    return serialization_lib.serialize_keras_object(optimizer)


def deserialize(config: dict[str, Any], custom_objects: dict | None = None) -> Optimizer:
    """Rebuilds an optimizer from `serialize` output (class names are case-insensitive).

    Args:
        config: a dict with `class_name` and `config`.
        custom_objects: user classes by name.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "Could not interpret serialized optimizer: expected a dict with 'class_name' and "
            f"'config'. Received: {config!r}"
        )
    config = dict(config)
    if config["class_name"].lower() in ALL_OBJECTS_DICT:
        config["class_name"] = config["class_name"].lower()
        config["registered_name"] = config["class_name"]
    return serialization_lib.deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="optimizer",
    )


def get(identifier: Any) -> Optimizer | None:
    """Returns an optimizer for a name, a config dict, an `Optimizer` or a torch optimizer.

    Args:
        identifier: `"adam"`, `"sgd"`, `"rmsprop"`, ... (case-insensitive), a config dict, an
            `Optimizer` (returned as is), or a `torch.optim.Optimizer` (wrapped in a
            `TorchOptimizer`).

    Returns:
        An `Optimizer`, or None for None.

    Example:
        ```python
        optimizer = ktorch.optimizers.get("adam")
        ```
    """
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, torch.optim.Optimizer):
        return TorchOptimizer(identifier)
    if isinstance(identifier, str):
        if identifier.lower() not in ALL_OBJECTS_DICT or identifier.lower() == "optimizer":
            raise ValueError(
                f"Unknown optimizer: '{identifier}'. Expected one of "
                f"{sorted(set(ALL_OBJECTS_DICT) - {'optimizer'})} (case-insensitive), an "
                "Optimizer, a torch.optim.Optimizer or a config dict."
            )
        return deserialize({"class_name": identifier, "config": {}})
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
        if isinstance(obj, Optimizer):
            return obj
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")


__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "SGD",
    "TorchOptimizer",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]
