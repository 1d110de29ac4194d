"""Saving and loading: object registry, configs, files."""

# Registers Keras 2's `hard_sigmoid` (`keras2>hard_sigmoid`), which models converted from Keras 2
# files keep in their configs: such a model saved again reloads in any process.
from ktorch.saving import legacy_config  # noqa: F401
from ktorch.saving.object_registration import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from ktorch.saving.saving_api import (
    load_model,
    load_weights,
    save_model,
    save_weights,
)
from ktorch.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "load_weights",
    "register_keras_serializable",
    "save_model",
    "save_weights",
    "serialize_keras_object",
]
