"""Model architecture as JSON or YAML text, and `clone_model`.

The JSON is Keras 3's: `json.dumps` of the serialized model (`module`, `class_name`,
`config`, `registered_name`), so `keras.models.model_from_json` reads ktorch's text and
ktorch reads Keras's. YAML holds the same dict, written and read with PyYAML's safe dumper
and loader only: a document with Python tags is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from ktorch.layers.core.input_layer import Input, InputLayer
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.layers.serialization import deserialize as deserialize_layer
from ktorch.models.functional import Functional
from ktorch.models.model import Model
from ktorch.models.sequential import Sequential
from ktorch.saving.object_registration import CustomObjectScope
from ktorch.saving.serialization_lib import (
    CONFIG_ERRORS,
    check_config_depth,
    serialize_keras_object,
)
from ktorch.utils import tree


def _serialize_model(model: Layer) -> dict:
    if not isinstance(model, Layer):
        raise TypeError(
            f"Expected a ktorch model or layer. Received: model={model!r} of type "
            f"{type(model).__name__}"
        )
    return serialize_keras_object(model)


def _deserialize_model(config: Any, custom_objects: dict | None, source: str):
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Invalid model {source}: expected an object with 'class_name' and 'config'. "
            f"Received: {type(config).__name__}"
        )
    check_config_depth(config, f"Invalid model {source}: it")
    try:
        with CustomObjectScope(custom_objects or {}):
            return deserialize_layer(config, custom_objects=custom_objects)
    except CONFIG_ERRORS as error:
        raise ValueError(
            f"Invalid model {source}: it does not describe a valid model "
            f"({type(error).__name__}: {error})."
        ) from error


def model_to_json(model: Layer, **kwargs) -> str:
    """Returns the architecture of `model` as a JSON string (no weights).

    Args:
        model: a model (or layer).
        **kwargs: passed to `json.dumps` (e.g. `indent=2`).

    Returns:
        The JSON text.

    Example:
        ```python
        json_string = model.to_json()
        same_architecture = ktorch.models.model_from_json(json_string)
        ```
    """
    return json.dumps(_serialize_model(model), **kwargs)


def model_from_json(json_string: str, custom_objects: dict | None = None):
    """Builds a model, with fresh weights, from `model_to_json` (or Keras 3 `to_json`) text.

    Args:
        json_string: the JSON text.
        custom_objects: dict mapping names to the custom classes or functions it uses.

    Returns:
        The model (uncompiled).
    """
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise TypeError(
            f"Expected a JSON string. Received: json_string of type {type(json_string).__name__}"
        )
    try:
        config = json.loads(json_string)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"Invalid model JSON: {error}.") from error
    return _deserialize_model(config, custom_objects, "JSON")


def model_to_yaml(model: Layer, **kwargs) -> str:
    """Returns the architecture of `model` as a YAML string (no weights).

    Args:
        model: a model (or layer).
        **kwargs: passed to `yaml.safe_dump` (e.g. `indent=4`).

    Returns:
        The YAML text.
    """
    kwargs.setdefault("sort_keys", False)
    return yaml.safe_dump(_serialize_model(model), **kwargs)


def model_from_yaml(yaml_string: str, custom_objects: dict | None = None):
    """Builds a model, with fresh weights, from `model_to_yaml` text.

    Only plain YAML is read (`yaml.safe_load`): a document with Python object tags
    (`!!python/...`) raises `ValueError` and runs nothing, as does one whose aliases expand it
    to millions of values or make it contain itself.

    Args:
        yaml_string: the YAML text.
        custom_objects: dict mapping names to the custom classes or functions it uses.

    Returns:
        The model (uncompiled).
    """
    if not isinstance(yaml_string, (str, bytes, bytearray)):
        raise TypeError(
            f"Expected a YAML string. Received: yaml_string of type {type(yaml_string).__name__}"
        )
    try:
        config = yaml.safe_load(yaml_string)
    except yaml.constructor.ConstructorError as error:
        raise ValueError(
            "Refusing to load the model YAML: it contains a tag that only an unsafe loader "
            f"would construct (such as a Python object). {error}"
        ) from error
    except (yaml.YAMLError, RecursionError) as error:
        raise ValueError(f"Invalid model YAML: {error}") from error
    _check_expanded_size(config)
    return _deserialize_model(config, custom_objects, "YAML")


# A YAML alias repeats a whole list or mapping without repeating its text: a few lines can
# stand for billions of values ("billion laughs"), which reading the config would walk.
_MAX_YAML_VALUES = 1 << 22


def _check_expanded_size(document: Any) -> None:
    """Refuses a YAML document whose aliases expand it past `_MAX_YAML_VALUES` values, or
    make it contain itself; a document without aliases is its own size."""
    sizes: dict[int, int] = {}
    pending: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if id(value) in sizes:
            return sizes[id(value)]
        if id(value) in pending:
            raise ValueError("Invalid model YAML: an alias makes the document contain itself.")
        pending.add(id(value))
        total = 1 + sum(
            size(item) for item in (value.values() if isinstance(value, dict) else value)
        )
        if total > _MAX_YAML_VALUES:
            raise ValueError(
                f"Invalid model YAML: its aliases expand it to more than {_MAX_YAML_VALUES} "
                "values; refusing a potential alias bomb."
            )
        pending.discard(id(value))
        sizes[id(value)] = total
        return total

    try:
        size(document)
    except RecursionError as error:
        raise ValueError("Invalid model YAML: it is nested too deeply.") from error


def _default_clone(layer: Layer) -> Layer:
    return layer.__class__.from_config(layer.get_config())


def _caching(
    clone_function: Callable | None,
    call_function: Callable | None,
    recursive: bool,
    cache: dict,
) -> Callable:
    """A clone function that clones each layer once (shared layers stay shared)."""
    clone = clone_function or _default_clone
    if not callable(clone):
        raise ValueError(
            "Expected `clone_function` to be a callable. Received: "
            f"clone_function={clone_function!r}"
        )

    def wrapped(layer: Layer) -> Layer:
        if id(layer) not in cache:
            if recursive and isinstance(layer, (Sequential, Functional)):
                cache[id(layer)] = _clone(
                    layer, None, clone_function, call_function, recursive, cache
                )
            else:
                cache[id(layer)] = clone(layer)
        return cache[id(layer)]

    return wrapped


def _check_input_tensor(tensor) -> None:
    if not isinstance(tensor, KerasTensor) or not isinstance(tensor._keras_history[0], InputLayer):
        raise ValueError(
            "All entries of `input_tensors` must be symbolic tensors made by `ktorch.Input`. "
            f"Received: {tensor!r}"
        )


def _clone_sequential(model: Sequential, input_tensors, clone) -> Sequential:
    layers = [clone(layer) for layer in model.layers]
    if input_tensors is not None:
        if isinstance(input_tensors, (list, tuple)):
            if len(input_tensors) != 1:
                raise ValueError(
                    "Argument `input_tensors` must contain a single tensor for a Sequential "
                    f"model. Received: {len(input_tensors)} tensors"
                )
            input_tensors = input_tensors[0]
        _check_input_tensor(input_tensors)
        layers = [input_tensors, *layers]
    elif model.built and model.input_names:
        original = model.input
        layers = [
            Input(batch_shape=original.shape, dtype=original.dtype, name=original.name),
            *layers,
        ]
    return Sequential(layers, name=model.name, trainable=model.trainable)


def _clone_functional(model: Functional, input_tensors, clone, call_function) -> Functional:
    if input_tensors is None:
        inputs = tree.map_structure(
            lambda t: Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), model.input
        )
    else:
        for tensor in tree.flatten(input_tensors):
            _check_input_tensor(tensor)
        if len(tree.flatten(input_tensors)) != len(model.inputs):
            raise ValueError(
                f"`input_tensors` must match the model's {len(model.inputs)} input(s). "
                f"Received: {len(tree.flatten(input_tensors))} tensor(s)"
            )
        inputs = input_tensors
    values = {id(old): new for old, new in zip(model.inputs, tree.flatten(inputs), strict=True)}

    def new_value(x):
        return values[id(x)] if isinstance(x, KerasTensor) else x

    for node in model._nodes:
        layer = clone(node.layer)
        args = tree.map_structure(new_value, list(node.call_args))
        kwargs = tree.map_structure(new_value, dict(node.call_kwargs))
        if call_function is None:
            outputs = layer(*args, **kwargs)
        else:
            outputs = call_function(layer, *args, **kwargs)
        for old, new in zip(node.output_tensors, tree.flatten(outputs), strict=True):
            values[id(old)] = new
    outputs = tree.map_structure(lambda t: values[id(t)], model.output)
    return Functional(inputs, outputs, name=model.name, trainable=model.trainable)


def _clone(model, input_tensors, clone_function, call_function, recursive, cache):
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                "Argument `call_function` is not supported with Sequential models (their layers "
                "are listed, not called, when the model is made). Received: "
                f"call_function={call_function!r}"
            )
        clone = _caching(clone_function, None, recursive, cache)
        return _clone_sequential(model, input_tensors, clone)
    if isinstance(model, Functional):
        clone = _caching(clone_function, call_function, recursive, cache)
        return _clone_functional(model, input_tensors, clone, call_function)
    if not isinstance(model, Model):
        raise ValueError(
            f"Expected a ktorch Model to clone. Received: model={model!r} of type "
            f"{type(model).__name__}"
        )
    if clone_function is not None or input_tensors is not None or call_function is not None:
        raise ValueError(
            "Arguments `clone_function`, `call_function` and `input_tensors` are only supported "
            f"for Sequential and Functional models. Received a model of type "
            f"'{type(model).__name__}'"
        )
    try:
        return type(model).from_config(model.get_config())
    except TypeError as error:
        raise ValueError(
            f"Cannot clone the subclassed model '{model.name}' of type "
            f"'{type(model).__name__}': it is cloned as `from_config(get_config())`, which "
            f"failed ({error}). Implement `get_config()` (and `from_config()` if needed) so "
            "that the constructor's arguments round-trip."
        ) from error


def clone_model(
    model: Model,
    input_tensors=None,
    clone_function: Callable | None = None,
    call_function: Callable | None = None,
    recursive: bool = False,
) -> Model:
    """Returns a new model with `model`'s architecture and freshly initialized weights.

    Sequential and Functional models are rebuilt layer by layer: each layer is replaced by
    `clone_function(layer)` (by default `layer.__class__.from_config(layer.get_config())`,
    a new layer of the same configuration and name); a layer used several times is cloned
    once. `InputLayer`s are always re-created. A subclassed model is rebuilt as
    `type(model).from_config(model.get_config())`. The clone is not compiled.

    Args:
        model: the model to clone.
        input_tensors: tensors from `ktorch.Input` to build the clone on (the same structure
            as `model.input`); new `Input`s of the same shapes by default.
        clone_function: `fn(layer) -> layer` used for every layer but the inputs; return
            `layer` itself to share it with the original.
        call_function: `fn(layer, *args, **kwargs) -> outputs` used to call each cloned layer
            of a Functional model (to insert layers around it).
        recursive: clone nested Sequential/Functional models layer by layer too, instead of
            with `clone_function`.

    Returns:
        The new model.

    Example:
        ```python
        fresh = ktorch.models.clone_model(model)
        sharing = ktorch.models.clone_model(model, clone_function=lambda layer: layer)
        ```
    """
    return _clone(model, input_tensors, clone_function, call_function, recursive, {})
