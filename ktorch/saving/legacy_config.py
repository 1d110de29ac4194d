"""Keras 2 configs, as `.h5` files store them, converted to the Keras 3 configs ktorch reads.

A Keras 2 model config differs from Keras 3's in a few systematic ways, all handled here:

- layer calls (`inbound_nodes`) are nested lists `[[["dense", 0, 0, {}]]]` instead of
  `{"args": [...], "kwargs": {...}}`, and a nested model's calls are numbered from 1 (its own
  graph counted as call 0);
- `Model` is the class name of functional models; a `Sequential` config may be a bare list;
- layers carry Keras 2-only arguments (`time_major`, `implementation`, `groups` on
  separable convolutions, the build shapes of `MultiHeadAttention`, ...), `axis` as a
  one-element list, `batch_input_shape` on `InputLayer`, `alpha` on `LeakyReLU`;
- `hard_sigmoid` is Keras 2's `clip(0.2 * x + 0.5, 0, 1)`, not Keras 3's `relu6(x + 3) / 6`;
- a `Lambda` stores its function as Python bytecode (refused unless `safe_mode=False`);
- training configs name optimizers `Custom>Adam` with Keras 2 arguments (`lr`, `decay`,
  `is_legacy_optimizer`, ...) and wrap metrics in `MeanMetricWrapper`.

Configs written by Keras 3's legacy writer (and by ktorch) are Keras 3 configs already; they go
through the same functions, which leave them unchanged except for the call numbering of
nested functional models in `input_layers` / `output_layers`.
"""

from __future__ import annotations

import builtins
import codecs
import inspect
import marshal
import types
import warnings
from typing import Any

import torch

from ktorch.saving.object_registration import register_keras_serializable

_MODEL_CLASSES = ("Functional", "Model", "Sequential")
# Arguments ktorch has no counterpart for, dropped without a word at these (default) values.
_HARMLESS = {
    "time_major": False,
    "groups": 1,
    "softmax_robust_masking": False,
    "ragged": False,
    "renorm": False,
    "fused": None,
    "virtual_batch_size": None,
    "adjustment": None,
    "rms_scaling": False,
}
# Keras 2 arguments that only repeat what the graph already says, or select an implementation.
_IGNORED = {
    "implementation",
    "query_shape",
    "key_shape",
    "value_shape",
    "input_length",
    "kernel_initializer",
    "kernel_regularizer",
    "kernel_constraint",
    "is_legacy_optimizer",
    "jit_compile",
}
# Keras 2 arguments that change a layer's meaning in a way ktorch does not implement.
_UNSUPPORTED = {"time_major": True, "ragged": True, "renorm": True}
_LAMBDA_LEGACY_KEYS = ("module", "function_type", "output_shape_type", "output_shape_module")
_METRIC_ALIASES = ("accuracy", "acc", "crossentropy", "ce")


@register_keras_serializable(package="keras2", name="hard_sigmoid")
def keras2_hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 2's hard sigmoid: `clip(0.2 * x + 0.5, 0, 1)` (Keras 3's has slope 1/6).

    Args:
        x: input tensor.

    Returns:
        The activation, same shape and dtype as `x`.
    """
    return torch.clamp(x * 0.2 + 0.5, 0.0, 1.0)


def is_keras2(keras_version: str | None, config: Any = None) -> bool:
    """Whether a file was written by Keras 1 or 2 (from its `keras_version` attribute).

    Without a version, a config whose layer calls are Keras 2 nested lists counts as Keras 2.
    """
    if keras_version:
        return keras_version.split(".", 1)[0] in ("1", "2")
    return config is not None and _has_list_nodes(config)


class ConfigConverter:
    """Converts one file's configs; collects the functions it had to create (Lambda bytecode).

    Args:
        keras2: whether the file was written by Keras 1/2 (Keras 2 semantics for activations).
        safe_mode: refuse Python bytecode (`Lambda` functions) found in the config.

    Attributes:
        objects: name → function for the Lambda functions loaded from bytecode; expose them
            to deserialization (e.g. in a `CustomObjectScope`) while building the model.
    """

    def __init__(self, keras2: bool, safe_mode: bool = True):
        self.keras2 = keras2
        self.safe_mode = safe_mode
        self.objects: dict[str, Any] = {}

    # ------------------------------------------------------------------- models

    def model(self, config: Any) -> dict:
        """Converts a whole-model config `{"class_name", "config"}` to Keras 3's form."""
        if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
            raise ValueError(
                "Invalid model config: expected a dict with 'class_name' and 'config'. "
                f"Received: {_preview(config)}"
            )
        return self.layer(config)

    def layer(self, entry: dict) -> dict:
        """Converts one serialized layer `{"class_name", "config", ...}` (recursively)."""
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            raise ValueError(
                "Invalid layer config: expected a dict with a 'class_name' string. "
                f"Received: {_preview(entry)}"
            )
        entry = dict(entry)
        class_name = entry["class_name"]
        if class_name == "Model":
            class_name = entry["class_name"] = "Functional"
        inner = entry.get("config")
        # Keras 2 may write a Sequential's config as the bare list of its layers.
        if not (
            inner is None
            or isinstance(inner, dict)
            or (class_name == "Sequential" and isinstance(inner, list))
        ):
            raise ValueError(
                f"Invalid config for a layer of class '{class_name}': expected a dict. "
                f"Received: {_preview(inner)}"
            )
        if class_name == "ThresholdedReLU":
            # Removed in Keras 3; ReLU with a threshold computes the same function.
            config = dict(entry.get("config") or {})
            config["threshold"] = config.pop("theta", 1.0)
            class_name = entry["class_name"] = "ReLU"
            entry["config"] = config
        if class_name == "Sequential":
            entry["config"] = self._sequential(entry["config"])
        elif class_name == "Functional" or _is_functional_config(entry.get("config")):
            entry["config"] = self._functional(entry["config"])
        else:
            entry["config"] = self._layer_config(class_name, dict(entry.get("config") or {}))
        return entry

    def _sequential(self, config: Any) -> dict:
        if isinstance(config, list):
            config = {"name": None, "layers": config}
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(
                "Invalid Sequential config: expected a dict with a 'layers' list. "
                f"Received: {_preview(config)}"
            )
        config = dict(config)
        layers = [self.layer(entry) for entry in config["layers"]]
        # The input shape comes from the InputLayer; Keras 2 repeats it on the first layer.
        has_input = bool(layers) and layers[0].get("class_name") == "InputLayer"
        config["layers"] = [
            _without_input_shape(entry) if has_input or index else entry
            for index, entry in enumerate(layers)
        ]
        return config

    def _functional(self, config: Any) -> dict:
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(
                "Invalid functional model config: expected a dict with a 'layers' list. "
                f"Received: {_preview(config)}"
            )
        for key in ("input_layers", "output_layers"):
            if key not in config:
                raise ValueError(f"Invalid functional model config: '{key}' is missing.")
        entries = config["layers"]
        names = [_entry_name(entry) for entry in entries]
        by_name = dict(zip(names, entries, strict=True))
        list_nodes = _has_list_nodes(config)
        if list_nodes:
            # Keras 2 numbers every call of a nested model from 1, in nodes and in outputs.
            shifted = _shifted_models(by_name, config)
            io_shifted = shifted
        else:
            # Keras 3 numbers the calls of a nested functional model from 1 in the model's
            # inputs/outputs only.
            shifted = set()
            io_shifted = {n for n, e in by_name.items() if e.get("class_name") == "Functional"}
        layers = []
        for name, entry in zip(names, entries, strict=True):
            # A layer of a graph takes its input shape from the graph.
            converted = _without_input_shape(self.layer(entry))
            converted["name"] = name
            nodes = entry.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise ValueError(
                    f"Invalid inbound_nodes for layer '{name}': expected a list. "
                    f"Received: {_preview(nodes)}"
                )
            converted["inbound_nodes"] = [
                _list_node(node, by_name, shifted, name) if isinstance(node, list) else node
                for node in nodes
            ]
            layers.append(converted)
        result = dict(config)
        result["layers"] = layers
        for key in ("input_layers", "output_layers"):
            result[key] = _map_refs(config[key], io_shifted, key)
        return result

    # ------------------------------------------------------------------- layers

    def _layer_config(self, class_name: str, config: dict) -> dict:
        name = config.get("name", class_name)
        if class_name == "InputLayer" and "batch_input_shape" in config:
            config["batch_shape"] = config.pop("batch_input_shape")
        if class_name == "LeakyReLU" and "alpha" in config and "negative_slope" not in config:
            config["negative_slope"] = config.pop("alpha")
        axis = config.get("axis")
        if isinstance(axis, list) and len(axis) == 1:
            config["axis"] = int(axis[0])
        for key in ("layer", "backward_layer"):
            if isinstance(config.get(key), dict):
                config[key] = _without_input_shape(self.layer(config[key]))
        if isinstance(config.get("cell"), dict):
            config["cell"] = self.layer(config["cell"])
        elif isinstance(config.get("cell"), list):
            config["cell"] = [self.layer(cell) for cell in config["cell"]]
        if isinstance(config.get("cells"), list):
            config["cells"] = [self.layer(cell) for cell in config["cells"]]
        if class_name == "Lambda":
            self._lambda(name, config)
        for key, value in list(config.items()):
            if key.endswith("_initializer"):
                config[key] = _initializer(value)
            elif self.keras2 and key.endswith("activation") and value == "hard_sigmoid":
                config[key] = "keras2>hard_sigmoid"
        _check_supported(class_name, name, config)
        cls = _ktorch_layer_class(class_name)
        if cls is not None:
            config = _drop_unknown(cls, config, f"layer '{name}' ({class_name})")
        return config

    def _lambda(self, name: str, config: dict) -> None:
        function_type = config.get("function_type")
        output_shape_type = config.get("output_shape_type")
        for key in _LAMBDA_LEGACY_KEYS:
            config.pop(key, None)
        config["function"] = self._lambda_function(
            name, "function", config.get("function"), function_type
        )
        if config.get("output_shape") is not None and (
            output_shape_type == "lambda" or _is_bytecode(config["output_shape"])
        ):
            config["output_shape"] = self._lambda_function(
                name, "output_shape", config["output_shape"], "lambda"
            )
        if _is_bytecode(config.get("mask")):
            config["mask"] = self._lambda_function(name, "mask", config["mask"], "lambda")

    def _lambda_function(self, layer: str, argument: str, value: Any, kind: str | None) -> Any:
        if not (kind == "lambda" or _is_bytecode(value)):
            return value
        if self.safe_mode:
            raise ValueError(
                f"The `{argument}` of Lambda layer '{layer}' is stored in the file as Python "
                "bytecode. Loading it could execute arbitrary code, so it is refused in safe "
                "mode. If you trust the file, load it with `safe_mode=False`."
            )
        code, defaults, closure = _bytecode_parts(value)
        function = _function_from_bytecode(layer, argument, code, defaults, closure)
        key = f"__lambda__{layer}__{argument}"
        self.objects[key] = function
        return key

    # ---------------------------------------------------------------- training

    def compile_args(self, training_config: dict, output_names: list[str]) -> dict:
        """The `compile()` arguments of a stored training config.

        Args:
            training_config: the decoded `training_config` attribute.
            output_names: the loaded model's output names (for per-output metrics).

        Returns:
            Keyword arguments for `model.compile()` (the optimizer built from its config).
        """
        if not isinstance(training_config, dict) or "optimizer_config" not in training_config:
            raise ValueError(
                "Invalid training config: expected a dict with 'optimizer_config'. "
                f"Received: {_preview(training_config)}"
            )
        from ktorch import optimizers

        args = {
            "optimizer": optimizers.deserialize(
                optimizer_config(training_config["optimizer_config"])
            ),
            "loss": _losses(training_config.get("loss")),
            "metrics": _metrics(training_config.get("metrics"), output_names),
            "weighted_metrics": _metrics(training_config.get("weighted_metrics"), output_names),
            "loss_weights": training_config.get("loss_weights"),
        }
        for key in ("run_eagerly", "steps_per_execution", "jit_compile"):
            if key in training_config:
                args[key] = training_config[key]
        return args


# ------------------------------------------------------------------ optimizers


def optimizer_config(config: Any) -> dict:
    """A stored optimizer config `{"class_name", "config"}` in the form ktorch's reads.

    Keras 2's `Custom>Adam` becomes `Adam`; `lr` becomes `learning_rate`; a non-zero legacy
    `decay` becomes the equivalent `InverseTimeDecay` schedule; arguments the ktorch optimizer
    does not take are dropped (with a warning unless they are Keras 2 bookkeeping).
    """
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(
            "Invalid optimizer config: expected a dict with a 'class_name' string. "
            f"Received: {_preview(config)}"
        )
    from ktorch import optimizers

    class_name = config["class_name"]
    short = class_name.split(">")[-1]
    if short.lower() in optimizers.ALL_OBJECTS_DICT:
        # Keras 2 registers its own optimizers as `Custom>Adam`.
        class_name = short
    inner = dict(config.get("config") or {})
    if "lr" in inner and "learning_rate" not in inner:
        inner["learning_rate"] = inner.pop("lr")
    decay = inner.pop("decay", 0.0) or 0.0
    if inner.get("epsilon", 0.0) is None:
        inner["epsilon"] = 1e-7
    if decay:
        inner["learning_rate"] = {
            "class_name": "InverseTimeDecay",
            "config": {
                "initial_learning_rate": inner.get("learning_rate", 0.001),
                "decay_steps": 1,
                "decay_rate": decay,
            },
        }
    cls = optimizers.ALL_OBJECTS_DICT.get(class_name.lower())
    if cls is not None:
        inner = _drop_unknown(cls, inner, f"optimizer '{class_name}'")
    return {"class_name": class_name, "config": inner}


# ------------------------------------------------------------------ losses and metrics


def _losses(config: Any) -> Any:
    if config is None or isinstance(config, str):
        return config
    if isinstance(config, list):
        return [_losses(item) for item in config]
    if isinstance(config, dict) and "class_name" not in config:
        return {key: _losses(value) for key, value in config.items()}
    return _loss_object(config)


def _loss_object(config: dict) -> Any:
    from ktorch import losses

    inner = dict(config.get("config") or {})
    if config["class_name"] in ("LossFunctionWrapper", "MeanMetricWrapper") and "fn" in inner:
        return inner["fn"]
    if inner.get("reduction") == "auto":
        inner["reduction"] = "sum_over_batch_size"
    return losses.deserialize({**config, "config": inner})


def _metrics(config: Any, output_names: list[str]) -> Any:
    if config is None:
        return None
    if isinstance(config, dict) and "class_name" not in config:
        return {key: _metric_list(value) for key, value in config.items()}
    if not isinstance(config, list):
        return [_metric(config)]
    if config and all(isinstance(item, list) for item in config):
        # Keras 2 stores one list per output.
        if len(output_names) == 1:
            return [_metric(item) for group in config for item in group]
        if len(config) == len(output_names):
            return {
                name: _metric_list(group) for name, group in zip(output_names, config, strict=True)
            }
        raise ValueError(
            f"Invalid metrics config: {len(config)} per-output lists for the model's "
            f"{len(output_names)} outputs {output_names}."
        )
    return _metric_list(config)


def _metric_list(config: Any) -> Any:
    if isinstance(config, list):
        return [_metric(item) for item in config]
    return _metric(config)


def _metric(config: Any) -> Any:
    if config is None or isinstance(config, str):
        return config
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Invalid metric config: {_preview(config)}")
    inner = config.get("config") or {}
    if config["class_name"] == "MeanMetricWrapper":
        name = inner.get("name")
        if name in _METRIC_ALIASES:
            return name
        if isinstance(inner.get("fn"), str):
            return inner["fn"]
    from ktorch import metrics

    return metrics.deserialize(config)


# ----------------------------------------------------------------- graph helpers


def _entry_name(entry: Any) -> str:
    if not isinstance(entry, dict):
        raise ValueError(f"Invalid layer entry in a functional config: {_preview(entry)}")
    name = entry.get("name") or (entry.get("config") or {}).get("name")
    if not isinstance(name, str):
        raise ValueError(f"A layer entry of a functional config has no name: {_preview(entry)}")
    return name


def _is_functional_config(config: Any) -> bool:
    return isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config)


def _has_list_nodes(config: Any) -> bool:
    inner = config.get("config", config) if isinstance(config, dict) else None
    if not isinstance(inner, dict):
        return False
    return any(
        isinstance(node, list)
        for entry in inner.get("layers", [])
        if isinstance(entry, dict)
        for node in entry.get("inbound_nodes", []) or []
    )


def _is_ref(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], int)
        and (len(value) == 3 or isinstance(value[3], dict))
    )


def _shifted_models(by_name: dict[str, dict], config: dict) -> set[str]:
    """Nested models whose calls a Keras 2 config numbers from 1 (no reference to call 0)."""
    models = {n for n, e in by_name.items() if e.get("class_name") in _MODEL_CLASSES}
    indices: dict[str, set[int]] = {name: set() for name in models}

    def collect(value: Any) -> None:
        if _is_ref(value):
            if value[0] in indices:
                indices[value[0]].add(value[1])
            if len(value) == 4:
                collect(value[3])
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    for entry in by_name.values():
        collect(entry.get("inbound_nodes", []))
    collect(config["input_layers"])
    collect(config["output_layers"])
    return {name for name, seen in indices.items() if seen and 0 not in seen}


def _tensor(name: str, node_index: int, tensor_index: int, shifted: set[str]) -> dict:
    if name in shifted and node_index > 0:
        node_index -= 1
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": None, "dtype": None, "keras_history": [name, node_index, tensor_index]},
    }


def _list_node(node: list, by_name: dict, shifted: set[str], layer: str) -> dict:
    """A Keras 2 call `[[name, node, tensor, kwargs], ...]` as Keras 3's `{args, kwargs}`."""
    tensors = []
    kwargs: dict = {}
    for position, item in enumerate(node):
        if not _is_ref(item):
            raise ValueError(
                f"Invalid inbound node of layer '{layer}': expected [layer_name, node_index, "
                f"tensor_index, kwargs] entries. Received: {_preview(node)}"
            )
        if position == 0 and len(item) == 4:
            kwargs = _kwargs_refs(item[3], by_name, shifted)
        if item[0] == "_CONSTANT_VALUE":
            tensors.append(item[2])
            continue
        if item[0] not in by_name:
            raise ValueError(
                f"Invalid functional model config: layer '{layer}' is called on the output of "
                f"layer '{item[0]}', which is not in the model."
            )
        tensors.append(_tensor(item[0], item[1], item[2], shifted))
    args = [tensors[0]] if len(tensors) == 1 else [tensors]
    return {"args": args, "kwargs": kwargs}


def _kwargs_refs(value: Any, by_name: dict, shifted: set[str]) -> Any:
    if (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and value[0] in by_name
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    ):
        return _tensor(value[0], value[1], value[2], shifted)
    if isinstance(value, list):
        return [_kwargs_refs(item, by_name, shifted) for item in value]
    if isinstance(value, dict):
        return {key: _kwargs_refs(item, by_name, shifted) for key, item in value.items()}
    return value


def _map_refs(value: Any, shifted: set[str], key: str) -> Any:
    if (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        name, node_index, tensor_index = value
        if name in shifted and node_index > 0:
            node_index -= 1
        return [name, node_index, tensor_index]
    if isinstance(value, list):
        return [_map_refs(item, shifted, key) for item in value]
    if isinstance(value, dict):
        return {k: _map_refs(item, shifted, key) for k, item in value.items()}
    raise ValueError(f"Invalid '{key}' entry in a functional model config: {_preview(value)}")


# ---------------------------------------------------------------- layer helpers


def _without_input_shape(entry: dict) -> dict:
    """`entry` less the `batch_input_shape` Keras 2 leaves on layers that are not inputs."""
    config = entry.get("config")
    if entry.get("class_name") == "InputLayer" or not isinstance(config, dict):
        return entry
    if "batch_input_shape" not in config:
        return entry
    config = {k: v for k, v in config.items() if k != "batch_input_shape"}
    return {**entry, "config": config}


def _ktorch_layer_class(class_name: str) -> type | None:
    """The ktorch layer class of a Keras class name, when ktorch provides it."""
    import ktorch.layers

    cls = getattr(ktorch.layers, class_name, None)
    if isinstance(cls, type) and cls.__module__.startswith("ktorch."):
        return cls
    return None


def _accepted_arguments(cls: type) -> set[str] | None:
    """The keyword arguments `cls(...)` accepts, following `**kwargs` up the class chain."""
    from ktorch.layers import layer as layer_module

    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        accepted.update(
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        if klass is layer_module.Layer:
            return accepted | set(layer_module._ALLOWED_KWARGS)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return accepted
    return accepted


def _drop_unknown(cls: type, config: dict, what: str) -> dict:
    accepted = _accepted_arguments(cls)
    if accepted is None:
        return config
    for key in [k for k in config if k not in accepted]:
        value = config.pop(key)
        harmless = key in _HARMLESS and value == _HARMLESS[key]
        if not harmless and key not in _IGNORED:
            warnings.warn(
                f"The argument {key}={value!r} of {what} has no ktorch counterpart and was "
                "ignored.",
                stacklevel=3,
            )
    return config


def _check_supported(class_name: str, name: str, config: dict) -> None:
    for key, value in _UNSUPPORTED.items():
        if key in config and config[key] == value:
            raise ValueError(
                f"Layer '{name}' ({class_name}) was saved with {key}={value!r}, which ktorch "
                "does not support."
            )


def _initializer(value: Any) -> Any:
    if not isinstance(value, dict) or value.get("class_name") != "VarianceScaling":
        return value
    inner = dict(value.get("config") or {})
    if inner.get("distribution") == "normal":
        # Keras 2.2's "normal" is a truncated normal.
        inner["distribution"] = "truncated_normal"
    return {**value, "config": inner}


def _is_bytecode(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("class_name") == "__lambda__"
    return (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and isinstance(value[0], str)
        and not isinstance(value[1], int)
    )


def _bytecode_parts(value: Any) -> tuple[str, Any, Any]:
    if isinstance(value, dict):
        inner = value.get("config") or {}
        return inner.get("code"), inner.get("defaults"), inner.get("closure")
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return value[0], value[1], value[2]
    return value, None, None


def _function_from_bytecode(layer: str, argument: str, code: Any, defaults, closure):
    """Rebuilds a function from Keras's base64 + marshal encoding (`safe_mode=False` only)."""
    if not isinstance(code, str):
        raise ValueError(
            f"Invalid bytecode for the `{argument}` of Lambda layer '{layer}': expected a "
            f"base64 string. Received: {_preview(code)}"
        )
    try:
        raw = codecs.decode(code.encode("ascii"), "base64")
        code_object = marshal.loads(raw)
    except (ValueError, EOFError, TypeError, UnicodeError) as error:
        raise ValueError(
            f"Could not load the bytecode of the `{argument}` of Lambda layer '{layer}': it "
            "was probably written by another Python version. Re-create the layer in code and "
            f"load the weights with `load_weights`. ({error})"
        ) from error
    if not isinstance(code_object, types.CodeType):
        raise ValueError(f"The `{argument}` of Lambda layer '{layer}' does not hold a code object.")
    cells = None
    if closure:
        cells = tuple(types.CellType(value) for value in closure)
    if isinstance(defaults, list):
        defaults = tuple(defaults)
    return types.FunctionType(
        code_object, {"__builtins__": builtins}, code_object.co_name, defaults, cells
    )


def _preview(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
