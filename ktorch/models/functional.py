"""`Functional`: a model defined by a graph of layer calls from `Input`s to outputs."""

from __future__ import annotations

import torch

from ktorch.layers.core.input_layer import InputLayer
from ktorch.layers.input_spec import assert_input_compatibility
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.models.model import Model
from ktorch.saving import serialization_lib
from ktorch.utils import tree


class Functional(Model):
    """A model built with the functional API: `Model(inputs, outputs)`.

    Args:
        inputs: a KerasTensor from `Input()`, or a list/dict of them.
        outputs: KerasTensor(s) computed from `inputs` by calling layers: single, list or dict.
        name: model name.

    Example:
        ```python
        inputs = ktorch.Input((784,))
        x = ktorch.layers.Dense(64, activation="relu")(inputs)
        outputs = ktorch.layers.Dense(10)(x)
        model = ktorch.Model(inputs, outputs)
        ```
    """

    _keras_module = "keras.src.models.functional"  # where Keras 3 files say the class lives

    def __init__(self, inputs, outputs, name=None, **kwargs):
        trainable = kwargs.pop("trainable", True)
        super().__init__(name=name, trainable=trainable, **kwargs)
        if isinstance(inputs, dict):
            for key, tensor in inputs.items():
                if isinstance(tensor, KerasTensor) and tensor.name != key:
                    tensor.name = key
        d = self.__dict__  # plain attributes: keep these lists out of module registration
        d["_inputs_struct"] = inputs
        d["_outputs_struct"] = outputs
        flat_inputs = tree.flatten(inputs)
        flat_outputs = tree.flatten(outputs)
        for tensor in flat_inputs + flat_outputs:
            if not isinstance(tensor, KerasTensor):
                raise ValueError(
                    "All `inputs` and `outputs` of a functional model must be symbolic tensors "
                    f"(from `ktorch.Input` or layer calls). Received: {tensor!r}"
                )
        for tensor in flat_inputs:
            layer = tensor._keras_history[0]
            if not isinstance(layer, InputLayer):
                raise ValueError(
                    "Model inputs must come from `ktorch.Input`. Received an input produced by "
                    f"layer '{layer.name}'."
                )
        d["_flat_inputs"] = flat_inputs
        d["_flat_outputs"] = flat_outputs
        d["_nodes"] = _nodes_between(flat_inputs, flat_outputs)
        # Keras's order, so that `layers`, `weights` and `get_weights()` line up with Keras's.
        layers = _keras_layer_order(flat_inputs, flat_outputs)
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"The name(s) {duplicates} are used {len(names) - len(set(names))} extra time(s) "
                "in the model. All layer names should be unique."
            )
        d["_graph_layers"] = layers
        for index, layer in enumerate(layers):
            self.add_module(str(index), layer)
        self._input_specs = [tensor.shape for tensor in flat_inputs]
        self._input_names = [tensor.name for tensor in flat_inputs]
        self.built = True

    # ----------------------------------------------------------------- structure

    @property
    def layers(self) -> list[Layer]:
        return list(self._graph_layers)

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._flat_inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._flat_outputs)

    @property
    def input(self):
        return self._inputs_struct

    @property
    def output(self):
        return self._outputs_struct

    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> list[str]:
        if isinstance(self._outputs_struct, dict):
            return list(self._outputs_struct)
        return [t._keras_history[0].name for t in self._flat_outputs]

    # ---------------------------------------------------------------------- call

    def _standardize_inputs(self, inputs) -> list:
        if isinstance(inputs, dict):
            missing = [name for name in self._input_names if name not in inputs]
            if missing:
                raise ValueError(
                    f'Model "{self.name}" expects inputs named {self._input_names}. Missing: '
                    f"{missing}. Received keys: {sorted(inputs)}"
                )
            flat = [inputs[name] for name in self._input_names]
        elif isinstance(inputs, (list, tuple)):
            flat = tree.flatten(inputs)
        else:
            flat = [inputs]
        if len(flat) != len(self._flat_inputs):
            raise ValueError(
                f'Model "{self.name}" expects {len(self._flat_inputs)} input(s), but it received '
                f"{len(flat)} input tensors."
            )
        return flat

    def call(self, inputs, training=None, mask=None):
        flat = self._standardize_inputs(inputs)
        values: dict[int, object] = {}
        for tensor, value, spec in zip(self._flat_inputs, flat, self._input_specs, strict=False):
            if not torch.is_tensor(value):
                value = torch.as_tensor(value)
            if value.is_floating_point() and tensor.dtype.startswith("float"):
                target = getattr(torch, tensor.dtype)
                if value.dtype is not target:
                    value = value.to(target)
            if value.ndim != len(spec) or any(
                s is not None and s != v for s, v in zip(spec[1:], value.shape[1:], strict=False)
            ):
                assert_input_compatibility(_spec_for(spec), tuple(value.shape), self.name)
            values[id(tensor)] = value
        kwargs = {} if training is None else {"training": training}
        for node in self._nodes:
            layer = node.layer
            if node.single_input:
                outputs = layer(values[id(node.call_args[0])], **kwargs)
            else:
                args = tree.map_structure(
                    lambda x: values[id(x)] if isinstance(x, KerasTensor) else x, node.call_args
                )
                call_kwargs = tree.map_structure(
                    lambda x: values[id(x)] if isinstance(x, KerasTensor) else x, node.call_kwargs
                )
                if training is not None and layer._call_has_training:
                    # As in Keras 3, the model call's mode overrides the one recorded at
                    # graph construction (Keras writes `training: false` into its files).
                    call_kwargs["training"] = training
                outputs = layer(*args, **call_kwargs)
            if len(node.output_tensors) == 1 and not isinstance(outputs, (list, tuple, dict)):
                values[id(node.output_tensors[0])] = outputs
            else:
                for tensor, value in zip(node.output_tensors, tree.flatten(outputs), strict=False):
                    values[id(tensor)] = value
        return tree.map_structure(lambda t: values[id(t)], self._outputs_struct)

    def compute_output_spec(self, *args, **kwargs):
        return tree.map_structure(lambda t: KerasTensor(t.shape, t.dtype), self._outputs_struct)

    # ------------------------------------------------------------- serialization

    def get_config(self) -> dict:
        node_keys = {}
        for layer in self._graph_layers:
            for index, node in enumerate(layer._inbound_nodes):
                if node in self._nodes or isinstance(layer, InputLayer):
                    node_keys[id(node)] = index
        layer_configs = []
        for layer in self._graph_layers:
            entry = serialization_lib.serialize_keras_object(layer)
            entry["name"] = layer.name
            inbound = []
            for node in layer._inbound_nodes:
                if id(node) not in node_keys or node.is_input:
                    continue
                inbound.append(
                    {
                        "args": _serialize_graph_args(node.call_args),
                        "kwargs": _serialize_graph_args(node.call_kwargs),
                    }
                )
            entry["inbound_nodes"] = inbound
            build_config = layer.get_build_config() if not isinstance(layer, InputLayer) else None
            if build_config is not None:
                entry["build_config"] = build_config
            layer_configs.append(entry)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layer_configs,
            "input_layers": _history_struct(self._inputs_struct),
            "output_layers": _history_struct(self._outputs_struct),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        from ktorch.layers import deserialize as deserialize_layer

        created: dict[str, Layer] = {}
        pending = []
        for entry in config["layers"]:
            layer = deserialize_layer(entry, custom_objects=custom_objects)
            created[entry.get("name", layer.name)] = layer
            pending.append((layer, list(entry.get("inbound_nodes", []))))
        # Replay calls in an order where every argument already exists.
        progress = True
        while progress and any(nodes for _, nodes in pending):
            progress = False
            for layer, nodes in pending:
                while nodes:
                    node = nodes[0]
                    try:
                        args = _deserialize_graph_args(node.get("args", []), created)
                        kwargs = _deserialize_graph_args(node.get("kwargs", {}), created)
                    except _NotReady:
                        break
                    layer(*args, **kwargs)
                    nodes.pop(0)
                    progress = True
        if any(nodes for _, nodes in pending):
            raise ValueError(
                "Could not rebuild the functional graph: some inbound nodes refer "
                "to layers that are missing from the config."
            )
        inputs = _resolve_history(config["input_layers"], created)
        outputs = _resolve_history(config["output_layers"], created)
        return cls(
            inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True)
        )


def _keras_layer_order(inputs: list, outputs: list) -> list[Layer]:
    """The graph's layers in Keras's order (Keras's `map_graph`).

    Layers come by decreasing depth (distance to the outputs), ties broken by the order in
    which a depth-first walk from the outputs first meets them; the inputs' layers first.
    """
    input_ids = {id(t) for t in inputs}
    finished: set[int] = set()
    nodes = []
    first_seen: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    # Iterative depth-first walk (deep models would exceed Python's recursion limit).
    stack = [(tensor, False) for tensor in reversed(outputs)]
    while stack:
        tensor, expanded = stack.pop()
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if expanded:
            if id(node) not in finished:
                finished.add(id(node))
                nodes.append(node)
            continue
        if id(node) in finished:
            continue
        if not node.is_input and id(tensor) in input_ids:
            finished.add(id(node))
            continue
        first_seen.setdefault(id(layer), len(first_seen))
        layers[id(layer)] = layer
        stack.append((tensor, True))
        if not node.is_input:
            stack.extend((t, False) for t in reversed(node.input_tensors))
    in_graph = {id(node) for node in nodes}
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for tensor in inputs:
        layer = tensor._keras_history[0]
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            first_seen[id(layer)] = -1
            layers[id(layer)] = layer
    order = sorted(layer_depth, key=lambda key: (-layer_depth[key], first_seen[key]))
    return [layers[key] for key in order]


def _spec_for(shape):
    from ktorch.layers.input_spec import InputSpec

    return InputSpec(shape=shape)


def _nodes_between(inputs, outputs) -> list:
    """Nodes needed to compute `outputs` from `inputs`, in topological order."""
    input_ids = {id(t) for t in inputs}
    order, visited, active = [], set(), set()

    def visit(tensor):
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in visited:
            return
        if id(node) in active:
            raise ValueError("The functional graph has a cycle.")
        if id(tensor) in input_ids:
            return
        if node.is_input:
            raise ValueError(
                f"Graph disconnected: cannot obtain value for tensor {tensor} at layer "
                f"'{layer.name}'. It is not reachable from the model's inputs."
            )
        active.add(id(node))
        for parent in node.input_tensors:
            visit(parent)
        active.discard(id(node))
        visited.add(id(node))
        order.append(node)

    for tensor in outputs:
        visit(tensor)
    return order


def _serialize_graph_args(structure):
    def convert(x):
        if isinstance(x, KerasTensor):
            layer, node_index, tensor_index = x._keras_history
            return {
                "class_name": "__keras_tensor__",
                "config": {
                    "shape": list(x.shape),
                    "dtype": x.dtype,
                    "keras_history": [layer.name, node_index, tensor_index],
                },
            }
        return serialization_lib.serialize_keras_object(x)

    return tree.map_structure(convert, structure)


class _NotReady(Exception):
    pass


def _deserialize_graph_args(structure, created):
    if isinstance(structure, dict) and structure.get("class_name") == "__keras_tensor__":
        name, node_index, tensor_index = structure["config"]["keras_history"]
        layer = created.get(name)
        if layer is None or node_index >= len(layer._inbound_nodes):
            raise _NotReady
        return layer._inbound_nodes[node_index].output_tensors[tensor_index]
    if isinstance(structure, dict):
        return {k: _deserialize_graph_args(v, created) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_deserialize_graph_args(v, created) for v in structure)
    return structure


def _history_struct(structure):
    def convert(t):
        layer, node_index, tensor_index = t._keras_history
        return [layer.name, node_index, tensor_index]

    if isinstance(structure, KerasTensor):
        return convert(structure)
    if isinstance(structure, dict):
        return {k: convert(v) for k, v in structure.items()}
    return [convert(t) for t in tree.flatten(structure)]


def _resolve_history(structure, created):
    def get(entry):
        name, node_index, tensor_index = entry
        if name not in created:
            raise ValueError(f"Unknown layer '{name}' referenced as a model input or output.")
        return created[name]._inbound_nodes[node_index].output_tensors[tensor_index]

    if isinstance(structure, dict):
        return {k: get(v) for k, v in structure.items()}
    if structure and isinstance(structure[0], str):
        return get(structure)
    resolved = [get(entry) for entry in structure]
    return resolved[0] if len(resolved) == 1 else resolved
