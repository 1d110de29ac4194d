"""`Lambda`: wraps an arbitrary function as a layer."""

from __future__ import annotations

import inspect
import types

from ktorch import activations
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.saving import serialization_lib
from ktorch.saving.object_registration import _GLOBAL_CUSTOM_NAMES
from ktorch.utils import tree


def _is_shape(value) -> bool:
    return isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value)


class Lambda(Layer):
    """Wraps a function of tensors as a layer.

    The function runs on torch tensors, so any torch operation can be used. A Lambda layer
    serializes its function by name: use a module-level function registered with
    `ktorch.saving.register_keras_serializable()` (or passed through `custom_objects` when
    loading); Python lambdas and closures cannot be serialized.

    Args:
        function: the function to wrap; called as `function(inputs, **arguments)`, plus
            `mask=` and `training=` when its signature has those parameters.
        output_shape: output shape without the batch axis (tuple), or a function of the
            full input shape; inferred by running the function when omitted.
        mask: output mask, or a function `(inputs, mask) -> mask`; None for no mask.
        arguments: dict of extra keyword arguments passed to `function`.

    Example:
        ```python
        layer = Lambda(lambda x: x ** 2)
        layer(torch.tensor([1.0, 2.0]))  # [1., 4.]
        ```
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(
                f"Argument `function` of the Lambda layer must be callable. "
                f"Received: function={function!r}"
            )
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self.supports_masking = mask is not None
        if isinstance(output_shape, list) and _is_shape(output_shape):
            output_shape = tuple(output_shape)
        self._output_shape = output_shape
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = {}
        self._fn_expects_training_arg = "training" in params
        self._fn_expects_mask_arg = "mask" in params
        self.built = True

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_expects_mask_arg:
            kwargs["mask"] = mask
        if self._fn_expects_training_arg:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            inputs = tree.map_structure(
                lambda s: KerasTensor(s, self.compute_dtype), _shapes_as_tuples(input_shape)
            )
            spec = self._probe_output_spec((inputs,), {})
            return tree.map_structure(lambda t: t.shape, spec)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        batch_size = tree.flatten(_shapes_as_tuples(input_shape))[0]
        if _is_shape(self._output_shape):
            return (batch_size, *self._output_shape)
        return tree.map_structure(lambda s: (batch_size, *s), _shapes_as_tuples(self._output_shape))

    def compute_output_spec(self, *args, **kwargs):
        if self._output_shape is None:
            return self._probe_output_spec(args, kwargs)
        shapes = self.compute_output_shape(tree.map_structure(lambda t: t.shape, args[0]))
        return _specs(shapes, self.compute_dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config["function"] = _serialize_function(self.function, "function")
        if self._output_shape is not None:
            if callable(self._output_shape):
                config["output_shape"] = _serialize_function(self._output_shape, "output_shape")
            else:
                config["output_shape"] = serialization_lib.serialize_keras_object(
                    self._output_shape
                )
        if self.mask is not None:
            if callable(self.mask):
                config["mask"] = _serialize_function(self.mask, "mask")
            else:
                config["mask"] = serialization_lib.serialize_keras_object(self.mask)
        config["arguments"] = serialization_lib.serialize_keras_object(self.arguments)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        config = dict(config)

        def load(value):
            return serialization_lib.deserialize_keras_object(
                value,
                module_objects=activations.ALL_OBJECTS_DICT,
                custom_objects=custom_objects,
                printable_module_name="Lambda function",
            )

        config["function"] = load(config["function"])
        if isinstance(config.get("output_shape"), (dict, str)):
            config["output_shape"] = load(config["output_shape"])
        if isinstance(config.get("mask"), (dict, str)):
            config["mask"] = load(config["mask"])
        if "arguments" in config:
            config["arguments"] = dict(config["arguments"] or {})
        return cls(**config)


def _shapes_as_tuples(shape):
    if _is_shape(shape):
        return tuple(shape)
    if isinstance(shape, dict):
        return {k: _shapes_as_tuples(v) for k, v in shape.items()}
    return [_shapes_as_tuples(s) for s in shape]


def _specs(shapes, dtype):
    if _is_shape(shapes):
        return KerasTensor(shapes, dtype)
    if isinstance(shapes, dict):
        return {k: _specs(v, dtype) for k, v in shapes.items()}
    return type(shapes)(_specs(s, dtype) for s in shapes)


def _serialize_function(fn, argument: str):
    """Describes a function by name; lambdas and closures cannot be described that way."""
    if fn in _GLOBAL_CUSTOM_NAMES:
        return serialization_lib.serialize_keras_object(fn)
    if isinstance(fn, types.FunctionType) and (
        fn.__name__ == "<lambda>" or fn.__closure__ or "<locals>" in fn.__qualname__
    ):
        raise ValueError(
            f"Cannot serialize the `{argument}` of a Lambda layer: {fn.__qualname__} is a Python "
            "lambda or a nested function, which cannot be saved by name. Define it at module "
            "level and register it with `@ktorch.saving.register_keras_serializable()`."
        )
    if (
        getattr(fn, "__module__", "").startswith("ktorch.activations")
        and getattr(activations, fn.__name__, None) is fn
    ):
        # A built-in activation: Keras writes these by name, under the "builtins" module.
        return {
            "module": "builtins",
            "class_name": "function",
            "config": fn.__name__,
            "registered_name": "function",
        }
    if isinstance(fn, (types.FunctionType, types.BuiltinFunctionType)):
        return {
            "module": fn.__module__,
            "class_name": "function",
            "config": fn.__name__,
            "registered_name": fn.__name__,
        }
    if hasattr(fn, "get_config"):
        return serialization_lib.serialize_keras_object(fn)
    raise ValueError(
        f"Cannot serialize the `{argument}` of a Lambda layer: {fn!r} of type "
        f"{type(fn).__name__} is neither a named function nor an object with `get_config()`."
    )
