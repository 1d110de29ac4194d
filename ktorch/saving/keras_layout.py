"""Where Keras 3 keeps each object's state in a weights file, for ktorch objects.

Keras 3 writes a model's state by walking the model's attributes in sorted order (public
names first, then private ones), visiting each layer or optimizer once: an object reached
through an attribute lives at that attribute's name (`layers/lstm/cell`), one reached through
a list or dict at the snake-case name of its class, made unique within that container
(`layers/dense`, `layers/dense_1`). Sequential and functional models yield their `layers`
first. Each visited layer writes its own variables (trainable ones, then non-trainable ones,
in creation order) as `<path>/vars/0`, `<path>/vars/1`, ...; the optimizer writes its
variables under `optimizer/vars`.

This module reproduces that walk for ktorch objects, so that files move between Keras and
ktorch: sub-layers are found through `named_children()`, and where a ktorch layer keeps a
sub-layer under another attribute name than Keras, `_KERAS_NAMES` gives Keras's name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ktorch.layers.attention.multi_head_attention import MultiHeadAttention
from ktorch.layers.layer import Layer
from ktorch.models.functional import Functional
from ktorch.models.model import Model
from ktorch.models.sequential import Sequential
from ktorch.optimizers.optimizer import Optimizer
from ktorch.optimizers.torch_optimizer import TorchOptimizer
from ktorch.utils.naming import to_snake_case

# ktorch attribute name -> Keras attribute name, for layers whose sub-layers Keras names
# differently (Keras reaches them through public properties, visited before private names).
_KERAS_NAMES: dict[type, dict[str, str]] = {
    MultiHeadAttention: {
        "_query_dense": "query_dense",
        "_key_dense": "key_dense",
        "_value_dense": "value_dense",
        "_output_dense": "output_dense",
    },
}


@dataclasses.dataclass
class Saveable:
    """An object whose state has a group in the weights file.

    Attributes:
        path: the group path ("" for the model itself, "layers/dense", "optimizer", ...).
        obj: the layer, torch module or optimizer.
    """

    path: str
    obj: Any

    @property
    def name(self) -> str:
        """The `name` attribute Keras writes on the group (the object's own name)."""
        name = getattr(self.obj, "name", None)
        return name if isinstance(name, str) else ""

    @property
    def is_optimizer(self) -> bool:
        return isinstance(self.obj, Optimizer)

    def variables(self) -> list[tuple[str, torch.Tensor]]:
        """`(key, tensor)` pairs of the object's own state, in file order (layers and modules).

        A layer's keys are `"0"`, `"1"`, ...; a plain torch module's are its `state_dict()`
        keys, as Keras's `TorchModuleWrapper` writes them.
        """
        if isinstance(self.obj, Layer):
            return [(str(i), w) for i, w in enumerate(own_variables(self.obj))]
        if isinstance(self.obj, torch.nn.Module):
            return list(self.obj.state_dict(keep_vars=True).items())
        raise TypeError(f"{type(self.obj).__name__} has no variables of its own in this layout.")


def join(path: str, name: str) -> str:
    """`path/name` (`name` at the root, `path` for an empty name)."""
    if not path or not name:
        return path or name
    return f"{path}/{name}"


def own_variables(layer: Layer) -> list[torch.Tensor]:
    """The variables a layer writes itself: its weights, less those of its sub-modules."""
    inner = {id(p) for _, child in layer.named_children() for p in child.parameters()}
    return [w for w in layer.weights if id(w) not in inner]


def keras_layers(model: Model) -> list[Layer]:
    """`model.layers` in Keras's order (functional models keep their layers in that order)."""
    return list(model.layers)


def keras_weights(layer: Layer) -> list[torch.Tensor]:
    """`layer.weights` in Keras's order (own variables first, then each sub-layer's)."""
    found: list[torch.Tensor] = []
    seen: set[int] = set()

    def visit(current: Layer) -> None:
        subs = _sublayers(current)
        inner = {id(w) for sub in subs for w in sub.weights}
        for w in current.weights:
            if id(w) not in inner and id(w) not in seen:
                seen.add(id(w))
                found.append(w)
        for sub in subs:
            visit(sub)

    visit(layer)
    return found


def keras_trainable_weights(model: Layer) -> list[torch.Tensor]:
    """`model.trainable_weights` in Keras's order: the order of Keras's optimizer slots."""
    trainable = {id(w) for w in model.trainable_weights}
    return [w for w in keras_weights(model) if id(w) in trainable]


def _sublayers(layer: Layer) -> list[Layer]:
    if isinstance(layer, Functional):
        return keras_layers(layer)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _name_key(name: str) -> str:
    # Keras visits private attributes after public ones.
    return f"~{name}" if name.startswith("_") else name


def _keras_names(cls: type) -> dict[str, str]:
    for klass in cls.__mro__:
        if klass in _KERAS_NAMES:
            return _KERAS_NAMES[klass]
    return {}


def _children(obj: Any, include_optimizer: bool) -> list[tuple[str, Any]]:
    """The attributes Keras visits on `obj` that may hold state, in Keras's visiting order."""
    if not isinstance(obj, Layer):
        return []
    graph_model = isinstance(obj, (Functional, Sequential))
    first: list[tuple[str, Any]] = []
    items: list[tuple[str, Any]] = []
    if graph_model:
        first.append(("layers", keras_layers(obj)))
    if isinstance(obj, Model):
        items.append(("layers", keras_layers(obj)))
        optimizer = getattr(obj, "optimizer", None)
        # A wrapped torch optimizer's state has no Keras layout: it is not written.
        if (
            include_optimizer
            and isinstance(optimizer, Optimizer)
            and not isinstance(optimizer, TorchOptimizer)
        ):
            items.append(("optimizer", optimizer))
    renames = _keras_names(type(obj))
    for name, child in obj.named_children():
        if graph_model and name.isdigit():
            continue  # the model's own registration of its layers, walked as `layers`
        items.append((renames.get(name, name), child))
    items.extend(_user_properties(obj))
    return first + sorted(items, key=lambda item: _name_key(item[0]))


def _user_properties(obj: Any) -> list[tuple[str, Any]]:
    """Properties of user-defined classes that return layers (Keras visits them by name)."""
    found = []
    for klass in type(obj).__mro__:
        if klass.__module__.startswith(("ktorch.", "torch.", "builtins")):
            continue
        for name, attribute in vars(klass).items():
            if not isinstance(attribute, property) or name.startswith("__"):
                continue
            try:
                value = getattr(obj, name)
            except Exception:  # as Keras: an attribute that fails to compute holds no state
                continue
            if _is_saveable(value) or _is_container(value):
                found.append((name, value))
    return found


def _is_container(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, torch.nn.ModuleList, torch.nn.ModuleDict))


def _is_saveable(value: Any) -> bool:
    return isinstance(value, (torch.nn.Module, Optimizer)) and not _is_container(value)


def saveables(model: Layer, include_optimizer: bool = True) -> list[Saveable]:
    """Every object of `model` that has a group in a Keras 3 weights file, in visiting order.

    Args:
        model: the model (or layer) at the root of the file.
        include_optimizer: also visit the optimizer of every model in the tree.

    Returns:
        The `Saveable`s, the model itself first (path "").
    """
    found: list[Saveable] = []
    visited: set[int] = set()

    def visit(obj: Any, path: str) -> None:
        if id(obj) in visited:
            return
        visited.add(id(obj))
        found.append(Saveable(path, obj))
        for name, child in _children(obj, include_optimizer):
            if _is_saveable(child):
                visit(child, join(path, name))
            elif _is_container(child):
                visit_container(child, join(path, name), set())

    def visit_container(container: Any, path: str, seen_containers: set[int]) -> None:
        if id(container) in seen_containers:
            return
        seen_containers.add(id(container))
        items = (
            container.values() if isinstance(container, (dict, torch.nn.ModuleDict)) else container
        )
        used: dict[str, int] = {}
        for item in items:
            if _is_saveable(item):
                visit(item, join(path, _unique(to_snake_case(type(item).__name__), used)))
            elif _is_container(item):
                visit_container(item, join(path, _unique("container", used)), seen_containers)

    visit(model, "")
    return found


def _unique(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def optimizer_order(optimizer: Optimizer, model: Layer) -> list[int] | None:
    """Where each of Keras's optimizer variables sits in `optimizer.variables`.

    ktorch's optimizer lays its slots out in the order of the variables it was built on;
    Keras in the order of the model's trainable weights. The two differ when the optimizer
    was built on another order (e.g. a functional model whose layer order differs from
    Keras's).

    Returns:
        `order` such that Keras's variable `i` is `optimizer.variables[order[i]]`, or None
        when the two orders agree (or the optimizer is not built).
    """
    params = getattr(optimizer, "_trainable_variables", None)
    if not getattr(optimizer, "built", False) or not params:
        return None
    rank = {id(w): i for i, w in enumerate(keras_trainable_weights(model))}
    keras_params = sorted(range(len(params)), key=lambda i: rank.get(id(params[i]), len(rank) + i))
    if keras_params == list(range(len(params))):
        return None
    # `[iterations, learning_rate (unless a schedule)]`, then the slots, group by group.
    head = 2 if isinstance(optimizer.get_config().get("learning_rate"), float) else 1
    groups = optimizer._slot_groups()
    order = list(range(head))
    position = head
    for group in groups:
        width = len(group)
        order.extend(position + i * width + k for i in keras_params for k in range(width))
        position += width * len(params)
    total = len(optimizer.variables)
    order.extend(range(position, total))
    return order
