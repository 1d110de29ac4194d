"""`ktorch.layers.serialize` / `deserialize`: layer configs in the Keras 3 format."""

from __future__ import annotations

from ktorch.saving import serialization_lib


def _module_objects() -> dict:
    import ktorch.layers as layers_module
    from ktorch import models

    objects = {
        name: obj
        for name, obj in vars(layers_module).items()
        if isinstance(obj, type) and hasattr(obj, "get_config")
    }
    objects.update(
        {"Functional": models.Functional, "Sequential": models.Sequential, "Model": models.Model}
    )
    return objects


def serialize(layer) -> dict:
    """Returns the Keras 3 config dict of `layer` (module, class_name, config, ...)."""
    return serialization_lib.serialize_keras_object(layer)


def deserialize(config, custom_objects=None):
    """Rebuilds a layer (or model) from `serialize` output."""
    layer = serialization_lib.deserialize_keras_object(
        config,
        module_objects=_module_objects(),
        custom_objects=custom_objects,
        printable_module_name="layer",
    )
    build_config = config.get("build_config") if isinstance(config, dict) else None
    if build_config and hasattr(layer, "build_from_config") and not layer.built:
        layer.build_from_config(build_config)
    return layer
