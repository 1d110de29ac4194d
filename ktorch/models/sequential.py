"""`Sequential`: a plain stack of layers, each with one input and one output."""

from __future__ import annotations

import torch

from ktorch.layers.core.input_layer import InputLayer
from ktorch.layers.input_spec import InputSpec, assert_input_compatibility
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.models.model import Model
from ktorch.saving import serialization_lib


class Sequential(Model):
    """A linear stack of layers.

    The model is built as soon as its input shape is known: from an `Input` as first entry,
    from `input_shape=` on the first layer, from `build(input_shape)`, or on the first call.

    Args:
        layers: optional list of layers (an `ktorch.Input(...)` may come first).
        trainable: whether the model's weights are trained.
        name: model name.

    Example:
        ```python
        model = ktorch.Sequential([
            ktorch.Input((784,)),
            ktorch.layers.Dense(64, activation="relu"),
            ktorch.layers.Dense(10, activation="softmax"),
        ])
        ```
    """

    _keras_module = "keras"  # where Keras 3 files say the class lives

    def __init__(self, layers=None, trainable: bool = True, name: str | None = None, **kwargs):
        super().__init__(trainable=trainable, name=name, **kwargs)
        self.__dict__["_input_layer"] = None
        self.__dict__["_stack"] = []
        self.__dict__["_graph_nodes"] = []
        self.__dict__["_graph_input"] = None
        self.__dict__["_graph_output"] = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._rebuild()

    # --------------------------------------------------------------- structure

    def add(self, layer, rebuild: bool = True) -> None:
        """Adds a layer on top of the stack (an `Input(...)` only as the first entry)."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if not isinstance(layer, Layer):
            raise ValueError(
                "Only instances of `ktorch.layers.Layer` can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(
                    f"Sequential model '{self.name}' has already been configured to use an "
                    "input; an `Input` can only be its first entry."
                )
            self.__dict__["_input_layer"] = layer
            if rebuild:
                self._rebuild()
            return
        if layer.name in {other.name for other in self._stack}:
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"'{layer.name}' is already the name of a layer in this model."
            )
        if not self._stack and self._input_layer is None:
            batch_shape = layer._batch_input_shape or _known_input_shape(layer)
            if batch_shape:
                self.__dict__["_input_layer"] = InputLayer(batch_shape=batch_shape)
        self._stack.append(layer)
        self.add_module(str(len(self._stack) - 1), layer)
        if rebuild:
            self._rebuild()

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer."""
        if not self._stack:
            raise ValueError(f"There are no layers in the model '{self.name}' to pop.")
        layer = self._stack.pop()
        del self._modules[str(len(self._stack))]
        if rebuild:
            self._rebuild()
        return layer

    def _rebuild(self) -> None:
        """Re-traces the symbolic graph (layer.input/output, model.inputs) from the input."""
        for node in self._graph_nodes:
            if node in node.layer._inbound_nodes:
                node.layer._inbound_nodes.remove(node)
        self._graph_nodes.clear()
        self.__dict__["_graph_input"] = None
        self.__dict__["_graph_output"] = None
        if self._input_layer is None:
            self.built = bool(self._stack) and all(layer.built for layer in self._stack)
            return
        x = self._input_layer.output
        self.__dict__["_graph_input"] = x
        for layer in self._stack:
            before = len(layer._inbound_nodes)
            x = layer(x)
            self._graph_nodes.extend(layer._inbound_nodes[before:])
        self.__dict__["_graph_output"] = x
        self.__dict__["_input_spec_shape"] = self._input_layer.batch_shape
        self.built = True

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _require_graph(self, what: str):
        if self._graph_input is None:
            raise AttributeError(
                f"Sequential model '{self.name}' has no defined {what} yet: give it an `Input` "
                "or call it on data first."
            )

    @property
    def inputs(self) -> list[KerasTensor]:
        self._require_graph("inputs")
        return [self._graph_input]

    @property
    def outputs(self) -> list[KerasTensor]:
        self._require_graph("outputs")
        return [self._graph_output]

    @property
    def input(self):
        self._require_graph("input")
        return self._graph_input

    @property
    def output(self):
        self._require_graph("output")
        return self._graph_output

    @property
    def input_names(self) -> list[str]:
        return [self._input_layer.name] if self._input_layer is not None else []

    @property
    def output_names(self) -> list[str]:
        return [self._stack[-1].name] if self._stack else []

    def build(self, input_shape=None) -> None:
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(
                    f"Sequential model '{self.name}' cannot be built: it has no input shape. "
                    "Pass `input_shape` to `build()` or start the model with `ktorch.Input`."
                )
            self._rebuild()
            return
        if self._input_layer is None:
            self.__dict__["_input_layer"] = InputLayer(batch_shape=tuple(input_shape))
        self._rebuild()

    # --------------------------------------------------------------------- call

    def __call__(self, *args, **kwargs):
        first = args[0] if args else None
        if (
            not self.built
            and self._input_layer is None
            and hasattr(first, "shape")
            and not isinstance(first, KerasTensor)
        ):
            # Deferred build: the batch axis stays unknown, as with an explicit Input.
            self.build((None,) + tuple(first.shape[1:]))
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        if not self._stack:
            raise ValueError(f"Sequential model '{self.name}' has no layers to call.")
        if self._graph_input is not None and torch.is_tensor(inputs):
            spec = self._input_spec_shape
            if inputs.ndim != len(spec) or any(
                s is not None and s != v for s, v in zip(spec[1:], inputs.shape[1:], strict=False)
            ):
                assert_input_compatibility(InputSpec(shape=spec), tuple(inputs.shape), self.name)
        x = inputs
        for layer in self._stack:
            x = layer(x)
        return x

    def compute_output_spec(self, inputs, training=None, mask=None):
        x = inputs
        for layer in self._stack:
            x = layer.compute_output_spec(x)
        return x

    def _symbolic_call(self, args, kwargs):
        if not self.built and self._input_layer is None and args:
            self.build(args[0].shape)
        return super()._symbolic_call(args, kwargs)

    # ------------------------------------------------------------ serialization

    def get_config(self) -> dict:
        layers = []
        if self._input_layer is not None:
            layers.append(serialization_lib.serialize_keras_object(self._input_layer))
        for layer in self._stack:
            entry = serialization_lib.serialize_keras_object(layer)
            build_config = layer.get_build_config()
            if build_config is not None:
                entry["build_config"] = build_config
            layers.append(entry)
        config = Layer.get_config(self)
        config["layers"] = layers
        if self._input_layer is not None:
            config["build_input_shape"] = list(self._input_layer.batch_shape)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from ktorch.layers import deserialize as deserialize_layer

        config = dict(config)
        layer_configs = config.pop("layers")
        build_input_shape = config.pop("build_input_shape", None)
        config.pop("dtype", None)
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in layer_configs:
            model.add(deserialize_layer(entry, custom_objects=custom_objects), rebuild=False)
        if model._input_layer is None and build_input_shape is not None:
            model.__dict__["_input_layer"] = InputLayer(batch_shape=tuple(build_input_shape))
        model._rebuild()
        return model


def _known_input_shape(layer):
    """The input shape of a built model used as first layer (as Keras 3 reads it)."""
    if isinstance(layer, Model) and layer.built:
        try:
            inputs = layer.inputs
        except (AttributeError, ValueError):
            return None
        if len(inputs) == 1:
            return inputs[0].shape
    return None
