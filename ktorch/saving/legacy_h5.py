"""The legacy HDF5 format: Keras 2 `.h5` whole-model and weights files.

Layout (as Keras 2 and Keras 3's legacy writer use it):

- root attributes `keras_version`, `backend`, `model_config` (JSON `{"class_name", "config"}`)
  and, for a compiled model, `training_config` (JSON: loss, metrics, loss weights,
  `optimizer_config`);
- group `model_weights` (a weights-only file has this content at its root): attribute
  `layer_names` (the model's layers, in Keras's order), one group per layer with attribute
  `weight_names` (the layer's trainable weights, then its non-trainable ones) and one dataset
  per weight name; group `top_level_model_weights` for weights the model holds itself;
- group `optimizer_weights`: attribute `weight_names` and one dataset each.

Weights load by position (the n-th layer with weights of the file into the n-th of the model,
as Keras does), by name with `by_name=True`, and by name when `load_model` rebuilt the model
from the file's own config. Every value is read and checked before any weight is assigned, so
a bad file leaves the target model unchanged. Files are read with h5py only: no pickle, and no
links to other files are followed.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ktorch.saving.file_utils import atomic_write
from ktorch.saving.legacy_config import ConfigConverter, is_keras2
from ktorch.saving.object_registration import CustomObjectScope, get_registered_name
from ktorch.saving.serialization_lib import CONFIG_ERRORS, check_config_depth

try:
    import h5py
except ImportError:  # pragma: no cover - h5py is a dependency; the message says what to do.
    h5py = None

# HDF5 keeps attributes in the object header, which holds at most 64 KiB: longer name lists
# are split into `name0`, `name1`, ... as Keras does.
_HEADER_LIMIT = 64512
_TOP_LEVEL = "top_level_model_weights"
_KERAS2_NAME = re.compile(r":\d+$")
# Keras 2 slot names (new optimizers, then legacy `OptimizerV2` ones) → ktorch/Keras 3 names.
_KERAS2_SLOTS = {
    "adam": {"m": "momentum", "v": "velocity", "vhat": "velocity_hat"},
    "adamw": {"m": "momentum", "v": "velocity", "vhat": "velocity_hat"},
    "nadam": {"m": "momentum", "v": "velocity"},
    "adamax": {"m": "momentum", "u": "norm", "v": "norm"},
    "sgd": {"m": "momentum", "momentum": "momentum"},
    "rmsprop": {
        "velocity": "velocity",
        "rms": "velocity",
        "momentum": "momentum",
        "average_gradient": "average_gradient",
        "mg": "average_gradient",
    },
    "adagrad": {"accumulator": "accumulator"},
    "adadelta": {
        "accumulated_grad": "accumulated_grad",
        "accum_grad": "accumulated_grad",
        "accumulated_delta_var": "accumulated_delta_var",
        "accum_var": "accumulated_delta_var",
    },
    "lion": {"m": "momentum"},
}
_ITERATION_NAMES = ("iter", "iteration", "iterations")
_NADAM_PRODUCT_NAMES = ("u_product", "momentum_cache")
_NADAM_EXACT_STEPS = 2000


def _require_h5py() -> None:
    if h5py is None:
        raise ImportError("The legacy `.h5` format requires h5py: `pip install h5py`.")


# ------------------------------------------------------------------------ public API


def save_model_to_hdf5(model, filepath: str | os.PathLike, include_optimizer: bool = True) -> None:
    """Saves `model` whole to `filepath` in the Keras 2 HDF5 layout.

    Args:
        model: a functional, Sequential or serializable subclassed model.
        filepath: destination (`.h5` / `.hdf5`); written atomically.
        include_optimizer: also store the training config and the optimizer state (when the
            model is compiled with a ktorch optimizer).

    Raises:
        NotImplementedError: `model` is a subclassed model (the format needs a config).

    Example:
        ```python
        save_model_to_hdf5(model, "model.h5")
        restored = load_model_from_hdf5("model.h5")
        ```
    """
    _require_h5py()
    from ktorch.models import Functional, Sequential

    if not isinstance(model, (Functional, Sequential)):
        raise NotImplementedError(
            "Saving a whole model to the `.h5` format requires a functional or Sequential "
            f"model; '{model.name}' is a subclassed {type(model).__name__}. Save it with "
            "`model.save('model.keras')`, or save its weights with `model.save_weights()`."
        )
    model_config = {"class_name": get_registered_name(type(model)), "config": model.get_config()}
    _keras_model_config(model, model_config["config"])
    training_config = _training_config(model) if include_optimizer else None
    with atomic_write(filepath) as tmp, h5py.File(tmp, "w") as f:
        _write_header(f)
        f.attrs["model_config"] = _to_json(model_config)
        if training_config is not None:
            f.attrs["training_config"] = _to_json(training_config)
        _write_model_weights(f.create_group("model_weights"), model)
        if training_config is not None:
            _write_optimizer_weights(f, model)


def save_weights_to_hdf5(model, filepath: str | os.PathLike) -> None:
    """Saves the weights of `model` to `filepath` in the Keras 2 HDF5 weights layout.

    Args:
        model: the model.
        filepath: destination (`.h5` / `.hdf5`); written atomically.
    """
    _require_h5py()
    with atomic_write(filepath) as tmp, h5py.File(tmp, "w") as f:
        _write_model_weights(f, model)


def load_model_from_hdf5(
    filepath: str | os.PathLike,
    custom_objects: dict | None = None,
    compile: bool = True,
    safe_mode: bool = True,
):
    """Loads a model saved whole in the HDF5 layout (by Keras 2, Keras 3 or ktorch).

    Args:
        filepath: the `.h5` file.
        custom_objects: name → class or function, for custom objects in the file.
        compile: compile the model with the stored training config (when there is one) and
            restore the optimizer state.
        safe_mode: refuse Python bytecode (`Lambda` functions) stored in the file.

    Returns:
        The model, compiled if the file has a training config and `compile` is True.

    Raises:
        OSError: the file cannot be read as HDF5.
        ValueError: the file is not a whole-model file, or its content is invalid.
    """
    _require_h5py()
    with _open(filepath) as f:
        model_config = _json_attr(f, "model_config", filepath)
        if model_config is None:
            raise ValueError(
                f"No model config found in the file at {os.fspath(filepath)}: it is not a "
                "whole-model `.h5` file (a weights file loads with `model.load_weights`)."
            )
        converter = ConfigConverter(
            is_keras2(_str_attr(f, "keras_version"), model_config), safe_mode=safe_mode
        )
        from ktorch import layers

        try:
            config = converter.model(model_config)
            scope = {**(custom_objects or {}), **converter.objects}
            with CustomObjectScope(scope):
                model = layers.deserialize(config)
        except CONFIG_ERRORS as error:
            raise ValueError(
                f"Invalid `.h5` file at {os.fspath(filepath)}: attribute 'model_config' does not "
                f"describe a valid model ({type(error).__name__}: {error})."
            ) from error
        weights_group = _group(f, "model_weights", filepath)
        assignments = _stage_by_name(weights_group, model, strict=True, skip_mismatch=False)
        _assign(assignments)
        if compile:
            training_config = _json_attr(f, "training_config", filepath)
            if training_config is None:
                return model
            try:
                with CustomObjectScope(scope):
                    model.compile(**converter.compile_args(training_config, _output_names(model)))
                if _has_child(f, "optimizer_weights"):
                    _restore_optimizer(f, model, filepath)
            except (TypeError, AttributeError, IndexError) as error:
                raise ValueError(
                    f"Invalid `.h5` file at {os.fspath(filepath)}: attribute 'training_config' "
                    f"cannot compile the model ({type(error).__name__}: {error}). Load it with "
                    "`compile=False` to skip the training config."
                ) from error
    return model


def load_weights_from_hdf5(
    model, filepath: str | os.PathLike, skip_mismatch: bool = False, by_name: bool = False
) -> None:
    """Loads weights from a Keras 2 layout `.h5` file (weights-only or whole-model) into `model`.

    Args:
        model: the target model; left unchanged if anything in the file does not fit.
        filepath: the `.h5` file.
        skip_mismatch: skip (with a warning) the layers whose weight count or shapes differ,
            instead of raising.
        by_name: load into the layers whose names match the file's layer names (others keep
            their weights) instead of matching layers by position.

    Raises:
        OSError: the file cannot be read as HDF5.
        ValueError: the file does not fit the model (the message names the layer and shapes).
    """
    _require_h5py()
    with _open(filepath) as f:
        group = f
        if not _has_attr_list(f, "layer_names") and _has_child(f, "model_weights"):
            group = _group(f, "model_weights", filepath)
        if not _has_attr_list(group, "layer_names"):
            raise ValueError(
                f"The file at {os.fspath(filepath)} has no `layer_names` attribute: it is not a "
                "Keras 2 layout weights file."
            )
        if by_name:
            assignments = _stage_by_name(group, model, strict=False, skip_mismatch=skip_mismatch)
        else:
            assignments = _stage_by_position(group, model, skip_mismatch=skip_mismatch)
    _assign(assignments)


def is_legacy_weights_file(filepath: str | os.PathLike) -> bool:
    """Whether `filepath` is an HDF5 file in the Keras 2 weights layout.

    True when a `layer_names` attribute sits at the root or on a `model_weights` group (Keras 2
    and Keras 3's legacy writer); False for Keras 3's `.weights.h5` layout, for files that are
    not HDF5, and for files that cannot be read.
    """
    if h5py is None:
        return False
    try:
        with h5py.File(os.fspath(filepath), "r") as f:
            if _has_attr_list(f, "layer_names"):
                return True
            group = _child(f, "model_weights", "model_weights", "group")
            return isinstance(group, h5py.Group) and _has_attr_list(group, "layer_names")
    except (OSError, ValueError, KeyError, RuntimeError):
        return False


# ---------------------------------------------------------------------- writing


def _write_header(group) -> None:
    from ktorch import __version__

    group.attrs["keras_version"] = f"ktorch-{__version__}"
    group.attrs["backend"] = "torch"


def _write_model_weights(group, model) -> None:
    from ktorch.saving.keras_layout import keras_layers

    layers = keras_layers(model)
    _write_attr_list(group, "layer_names", [layer.name for layer in layers])
    _write_header(group)
    for layer in sorted(layers, key=lambda layer: layer.name):
        _write_subset(group.create_group(layer.name), layer, _legacy_weights(layer))
    _write_subset(group.create_group(_TOP_LEVEL), model, _top_level_weights(model))


def _write_subset(group, layer, weights: list[torch.Tensor]) -> None:
    names = _weight_names(layer, weights)
    _write_attr_list(group, "weight_names", names)
    for name, weight in zip(names, weights, strict=True):
        value = weight.detach().cpu().numpy()
        group.create_dataset(name, data=value)


def _weight_names(layer, weights: list[torch.Tensor]) -> list[str]:
    """Unique dataset names: the weights' Keras paths, the module path where those repeat."""
    qualified = {id(p): name for name, p in layer.named_parameters(remove_duplicate=False)}
    names: list[str] = []
    for weight in weights:
        name = getattr(weight, "path", None) or qualified.get(id(weight), "weight")
        if name in names:
            name = f"{layer.name}/{qualified.get(id(weight), str(len(names))).replace('.', '/')}"
        while name in names:
            name = f"{name}_{len(names)}"
        names.append(name)
    return names


def _write_optimizer_weights(f, model) -> None:
    """Writes the optimizer's `variables` in Keras 3's order, named as Keras 3 names them."""
    from ktorch.optimizers import Optimizer, TorchOptimizer
    from ktorch.saving.keras_layout import keras_trainable_weights, optimizer_order

    optimizer = model.optimizer
    if not isinstance(optimizer, Optimizer) or isinstance(optimizer, TorchOptimizer):
        return
    if not optimizer.built:
        return
    values = optimizer.variables
    order = optimizer_order(optimizer, model) or list(range(len(values)))
    values = [values[i] for i in order]
    # The optimizer's variables in Keras's order (the order of its slots in `values`).
    rank = {id(w): i for i, w in enumerate(keras_trainable_weights(model))}
    params = optimizer._trainable_variables
    params = [
        params[i]
        for i in sorted(range(len(params)), key=lambda i: rank.get(id(params[i]), len(rank) + i))
    ]
    names = [f"{optimizer.name}/iteration"]
    if isinstance(optimizer._learning_rate, float):
        names.append(f"{optimizer.name}/learning_rate")
    for group in optimizer._slot_groups():
        for param in params:
            path = str(getattr(param, "path", "variable")).replace("/", "_")
            names.extend(f"{optimizer.name}/{path}_{slot}" for slot in group)
    names.extend(f"{optimizer.name}/variable_{i}" for i in range(len(names), len(values)))
    unique: list[str] = []
    for name in names:
        while name in unique:
            name = f"{name}_{len(unique)}"
        unique.append(name)
    group = f.create_group("optimizer_weights")
    _write_attr_list(group, "weight_names", unique)
    for name, value in zip(unique, values, strict=True):
        group.create_dataset(name, data=value.detach().cpu().numpy())


def _write_attr_list(group, name: str, values: list[str]) -> None:
    data = np.asarray([v.encode("utf8") for v in values])
    too_long = [v for v in values if len(v.encode("utf8")) > _HEADER_LIMIT]
    if too_long:
        raise ValueError(
            f"Cannot save the names {too_long[:3]} to an HDF5 attribute: each name must be at "
            f"most {_HEADER_LIMIT} bytes."
        )
    chunks = 1
    while data.nbytes / chunks > _HEADER_LIMIT:
        chunks += 1
    if chunks == 1:
        group.attrs[name] = data
        return
    for index, chunk in enumerate(np.array_split(data, chunks)):
        group.attrs[f"{name}{index}"] = chunk


def _keras_model_config(model, config: dict) -> None:
    """Adjusts ktorch's `get_config()` of a model to what Keras's loaders read, in place.

    - Keras (2 and 3) counts a nested functional model's own graph as its call 0 in
      `input_layers`/`output_layers`, where ktorch counts the calls themselves;
    - a layer of a functional model, or of a Sequential model that starts with its
      `InputLayer`, takes its input shape from the graph: its `batch_input_shape` goes.

    Applied recursively to nested models.
    """
    from ktorch.models import Functional, Model

    nested = {
        layer.name: layer for layer in getattr(model, "layers", []) if isinstance(layer, Model)
    }
    functional = {name for name, layer in nested.items() if isinstance(layer, Functional)}
    if isinstance(model, Functional):
        for key in ("input_layers", "output_layers"):
            if key in config:
                config[key] = _shift_refs(config[key], functional)
    entries = config.get("layers", [])
    has_input = isinstance(model, Functional) or (
        bool(entries) and entries[0].get("class_name") == "InputLayer"
    )
    for entry in entries:
        inner = entry.get("config")
        if not isinstance(inner, dict):
            continue
        if has_input and entry.get("class_name") != "InputLayer":
            inner.pop("batch_input_shape", None)
        name = entry.get("name") or inner.get("name")
        if name in nested:
            _keras_model_config(nested[name], inner)


def _shift_refs(value, names: set[str]):
    if (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        return [value[0], value[1] + 1, value[2]] if value[0] in names else list(value)
    if isinstance(value, list):
        return [_shift_refs(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _shift_refs(item, names) for key, item in value.items()}
    return value


def _training_config(model) -> dict | None:
    """The compile arguments as Keras stores them, or None when not compiled (or not storable)."""
    from ktorch import losses, metrics
    from ktorch.optimizers import TorchOptimizer

    if not getattr(model, "compiled", False):
        return None
    if isinstance(model.optimizer, TorchOptimizer):
        warnings.warn(
            f"The optimizer of model '{model.name}' is a torch optimizer, which the `.h5` "
            "format cannot describe: the model is saved without its training config and "
            "optimizer state.",
            stacklevel=3,
        )
        return None
    try:
        config = dict(model.get_compile_config())
        optimizer = config.pop("optimizer")
        config["loss"] = _full_names(config.get("loss"), losses.get)
        for key in ("metrics", "weighted_metrics"):
            config[key] = _full_names(config.get(key), metrics.get)
        config["optimizer_config"] = {
            "class_name": optimizer.get("registered_name") or optimizer["class_name"],
            "config": optimizer["config"],
        }
        _to_json(config)
    except (TypeError, ValueError, NotImplementedError) as error:
        warnings.warn(
            f"The compile arguments of model '{model.name}' cannot be stored in the `.h5` "
            f"format ({error}): the model is saved without its training config and optimizer "
            "state.",
            stacklevel=3,
        )
        return None
    return config


def _full_names(value, get):
    if isinstance(value, str):
        return _full_name(value, get)
    if isinstance(value, list):
        return [_full_names(item, get) for item in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {key: _full_names(item, get) for key, item in value.items()}
    return value


def _full_name(name: str, get) -> str:
    """A loss/metric function's full name for an alias ("mse" → "mean_squared_error").

    Keras 3's `.h5` loader resolves full function names but not all aliases; the names that
    Keras resolves from the model's outputs ("accuracy", "crossentropy", ...) stay as they are.
    """
    if name in ("accuracy", "acc", "crossentropy", "ce"):
        return name
    try:
        obj = get(name)
    except ValueError:
        return name
    if inspect.isfunction(obj):
        return obj.__name__
    return name


def _to_json(value) -> str:
    def default(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, torch.Tensor):
            return obj.detach().cpu().tolist()
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default)


# ---------------------------------------------------------------------- reading


@contextlib.contextmanager
def _open(filepath) -> Iterator[Any]:
    path = os.fspath(filepath)
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise OSError(
            f"Unable to read the file at {path} as HDF5: it is missing, truncated or not an "
            f"`.h5` file. ({error})"
        ) from error
    try:
        yield f
    except (KeyError, OSError, RuntimeError) as error:
        # h5py reports a damaged file as any of these, depending on where the damage is.
        raise ValueError(f"Invalid or corrupt `.h5` file at {path}: {error}") from error
    finally:
        f.close()


def _child(parent, part: str, path: str, what: str):
    """The hard-linked child `part` of `parent`, or None when absent; links are refused.

    The link is looked at before the object, so an external link is never followed.
    """
    if part in ("", ".", ".."):
        raise ValueError(f"Invalid path in the `.h5` file: {path!r}")
    link = parent.get(part, default=None, getclass=True, getlink=True)
    if link is None:
        return None
    if link is not h5py.HardLink:
        raise ValueError(f"Not allowed: `.h5` file with a {link.__name__} at {what} '{path}'.")
    return parent[part]


def _has_child(parent, name: str) -> bool:
    """Whether `parent` has a member `name` (without following any link)."""
    return parent.get(name, default=None, getclass=True, getlink=True) is not None


def _group(parent, name: str, filepath=None):
    """The sub-group `name` (a '/'-path) of `parent`."""
    current = parent
    for part in name.split("/"):
        current = _child(current, part, name, "group")
        if current is None:
            where = f" at {os.fspath(filepath)}" if filepath is not None else ""
            raise ValueError(f"Invalid `.h5` file{where}: the group '{name}' is missing.")
        if not isinstance(current, h5py.Group):
            raise ValueError(f"Invalid `.h5` file: '{name}' is not a group.")
    return current


def _dataset(group, name: str):
    """The dataset `name` (a '/'-path under `group`), checked but not read; no external storage.

    Values are read (`_read`) only once their shape was checked against the model, so a file
    declaring an absurd shape never has it allocated.
    """
    current = group
    for part in name.split("/"):
        if not isinstance(current, h5py.Group):
            current = None
            break
        current = _child(current, part, name, "weight")
    if current is None:
        raise ValueError(
            f"Invalid `.h5` file: the weight '{name}' listed in `weight_names` of group "
            f"'{group.name}' is missing."
        )
    if not isinstance(current, h5py.Dataset):
        raise ValueError(f"Invalid `.h5` file: '{current.name}' is not a dataset.")
    if current.external:
        raise ValueError(f"Not allowed: `.h5` file with an external dataset at '{current.name}'.")
    if current.is_virtual:
        # A virtual dataset maps other files' data, which would be read into the weights.
        raise ValueError(f"Not allowed: `.h5` file with a virtual dataset at '{current.name}'.")
    if current.dtype.kind not in "fiub" or current.shape is None:
        raise ValueError(
            f"Invalid `.h5` file: the weight '{current.name}' has dtype {current.dtype} and "
            f"shape {current.shape}, not numeric data."
        )
    return current


def _read(dataset) -> np.ndarray:
    return np.asarray(dataset[()])


def _has_attr_list(group, name: str) -> bool:
    return name in group.attrs or f"{name}0" in group.attrs


def _attr_list(group, name: str) -> list[str]:
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{name}{len(chunks)}"])
    values = []
    for chunk in chunks:
        for item in np.atleast_1d(np.asarray(chunk)).tolist():
            if isinstance(item, bytes):
                item = item.decode("utf8")
            if not isinstance(item, str):
                raise ValueError(
                    f"Invalid `.h5` file: attribute '{name}' of '{group.name}' holds "
                    f"{type(item).__name__} values, not names."
                )
            values.append(item)
    return values


def _str_attr(group, name: str) -> str | None:
    value = group.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf8")
    return value if isinstance(value, str) else None


def _json_attr(group, name: str, filepath) -> Any:
    value = group.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf8")
    if not isinstance(value, str):
        raise ValueError(
            f"Invalid `.h5` file at {os.fspath(filepath)}: attribute '{name}' is not a string."
        )
    try:
        config = json.loads(value, object_hook=_decode_tuples)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Invalid `.h5` file at {os.fspath(filepath)}: attribute '{name}' is not valid "
            f"JSON ({error})."
        ) from error
    check_config_depth(config, f"Invalid `.h5` file at {os.fspath(filepath)}: attribute '{name}'")
    return config


def _decode_tuples(obj: dict) -> Any:
    # Keras 2's JSON encoder writes tuples as {"class_name": "__tuple__", "items": [...]}.
    if obj.get("class_name") == "__tuple__" and "items" in obj:
        return list(obj["items"])
    return obj


def _read_subset(group) -> tuple[list[str], list]:
    names = _attr_list(group, "weight_names")
    return names, [_dataset(group, name) for name in names]


def _legacy_weights(layer) -> list[torch.Tensor]:
    """A layer's weights as the `.h5` format orders them: trainable ones, then the others."""
    from ktorch.saving.keras_layout import keras_weights

    ordered = keras_weights(layer)
    trainable = {id(w) for w in layer.trainable_weights}
    return [w for w in ordered if id(w) in trainable] + [
        w for w in ordered if id(w) not in trainable
    ]


def _top_level_weights(model) -> list[torch.Tensor]:
    from ktorch.saving.keras_layout import own_variables

    own = own_variables(model)
    trainable = {id(w) for w in model.trainable_weights}
    return [w for w in own if id(w) in trainable] + [w for w in own if id(w) not in trainable]


def _model_layers(model) -> list:
    from ktorch.saving.keras_layout import keras_layers

    return keras_layers(model)


# ---------------------------------------------------------------------- staging


def _check_layer(
    label: str,
    variables: list[torch.Tensor],
    names: list[str],
    values: list,
    skip_mismatch: bool,
) -> list[tuple[torch.Tensor, np.ndarray]] | None:
    """Pairs a layer's variables with the saved values (datasets, read once their shapes are
    checked); None when skipped for a mismatch."""
    if len(values) != len(variables):
        message = (
            f"Weight count mismatch for {label}: the layer expects {len(variables)} weight(s), "
            f"the file has {len(values)} saved weight(s)."
        )
        if skip_mismatch:
            warnings.warn(f"Skipping the weights of {label}. {message}", stacklevel=4)
            return None
        raise ValueError(message)
    for variable, name, value in zip(variables, names, values, strict=True):
        expected = tuple(variable.shape)
        if tuple(value.shape) != expected:
            path = getattr(variable, "path", name)
            message = (
                f"Shape mismatch in {label} for weight {path}: the weight expects shape "
                f"{expected}, the saved weight '{name}' has shape {tuple(value.shape)}."
            )
            if skip_mismatch:
                warnings.warn(f"Skipping the weights of {label}. {message}", stacklevel=4)
                return None
            raise ValueError(message)
    return [(variable, _read(value)) for variable, value in zip(variables, values, strict=True)]


def _saved_layers(group) -> list[tuple[str, list[str], list]]:
    saved = []
    for name in _attr_list(group, "layer_names"):
        names, values = _read_subset(_group(group, name))
        saved.append((name, names, values))
    return saved


def _stage_top_level(group, model, skip_mismatch: bool) -> list:
    if not _has_child(group, _TOP_LEVEL):
        return []
    names, values = _read_subset(_group(group, _TOP_LEVEL))
    variables = _top_level_weights(model)
    if not values and not variables:
        return []
    pairs = _check_layer("the model's top-level weights", variables, names, values, skip_mismatch)
    return pairs or []


def _stage_by_position(group, model, skip_mismatch: bool) -> list:
    saved = [entry for entry in _saved_layers(group) if entry[2]]
    layers = [layer for layer in _model_layers(model) if _legacy_weights(layer)]
    if len(saved) != len(layers):
        raise ValueError(
            f"Layer count mismatch when loading weights into model '{model.name}': the model "
            f"has {len(layers)} layer(s) with weights, the file has {len(saved)} "
            f"({[entry[0] for entry in saved]})."
        )
    assignments = []
    for index, (layer, (saved_name, names, values)) in enumerate(zip(layers, saved, strict=True)):
        label = f"layer #{index} (named '{layer.name}' in the model, '{saved_name}' in the file)"
        pairs = _check_layer(label, _legacy_weights(layer), names, values, skip_mismatch)
        assignments.extend(pairs or [])
    assignments.extend(_stage_top_level(group, model, skip_mismatch))
    return assignments


def _stage_by_name(group, model, strict: bool, skip_mismatch: bool) -> list:
    """Pairs weights by layer name; `strict` requires the file and the model to match exactly."""
    saved = _saved_layers(group)
    layers: dict[str, list] = {}
    for layer in _model_layers(model):
        layers.setdefault(layer.name, []).append(layer)
    assignments = []
    for saved_name, names, values in saved:
        targets = layers.get(saved_name, [])
        if strict and not targets and values:
            raise ValueError(
                f"The file has weights for layer '{saved_name}', which the model "
                f"'{model.name}' built from the file's config does not have."
            )
        for layer in targets:
            label = f"layer '{layer.name}'"
            pairs = _check_layer(label, _legacy_weights(layer), names, values, skip_mismatch)
            assignments.extend(pairs or [])
    if strict:
        saved_names = {entry[0] for entry in saved}
        missing = [
            name
            for name, found in layers.items()
            if name not in saved_names and any(_legacy_weights(layer) for layer in found)
        ]
        if missing:
            raise ValueError(
                f"The file has no weights for the layer(s) {missing} of model '{model.name}'."
            )
    assignments.extend(_stage_top_level(group, model, skip_mismatch))
    return assignments


def _assign(assignments: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    """Copies every staged value into its weight (all checks are done by now)."""
    with torch.no_grad():
        for variable, value in assignments:
            variable.copy_(torch.as_tensor(value).to(device=variable.device, dtype=variable.dtype))


# ---------------------------------------------------------------------- optimizer


def _output_names(model) -> list[str]:
    try:
        return list(model.output_names)
    except (AttributeError, ValueError):
        return []


def _restore_optimizer(f, model, filepath) -> None:
    """Restores the optimizer state from `optimizer_weights`, or warns and keeps it fresh."""
    from ktorch.optimizers import Optimizer, TorchOptimizer

    optimizer = model.optimizer
    if not isinstance(optimizer, Optimizer) or isinstance(optimizer, TorchOptimizer):
        return
    names, values = _read_subset(_group(f, "optimizer_weights", filepath))
    trainable = list(model.trainable_weights)
    try:
        if not trainable:
            raise ValueError("the model has no trainable weights")
        optimizer.build(trainable)
        if names and all(_KERAS2_NAME.search(name) for name in names):
            store = _keras2_optimizer_store(optimizer, model, names, values)
        else:
            store = _keras3_optimizer_store(optimizer, model, values)
        optimizer.load_own_variables(store)
    except (ValueError, KeyError, IndexError, RuntimeError, OverflowError) as error:
        warnings.warn(
            f"Could not restore the state of optimizer '{optimizer.name}' "
            f"({type(optimizer).__name__}) from {os.fspath(filepath)}: {error}. The model "
            "starts with a freshly initialized optimizer.",
            stacklevel=3,
        )


def _keras3_optimizer_store(optimizer, model, values: list) -> dict:
    """Keras 3's layout (also ktorch's): the optimizer's `variables`, in Keras's order."""
    from ktorch.saving.keras_layout import optimizer_order

    expected = optimizer.variables
    if len(values) != len(expected):
        raise ValueError(
            f"the file has {len(values)} optimizer variables, the optimizer has {len(expected)}"
        )
    order = optimizer_order(optimizer, model) or list(range(len(expected)))
    ours = [None] * len(values)
    for keras_index, own_index in enumerate(order):
        ours[own_index] = values[keras_index]
    for index, (value, variable) in enumerate(zip(ours, expected, strict=True)):
        if tuple(np.shape(value)) != tuple(variable.shape):
            raise ValueError(
                f"optimizer variable #{index} has shape {tuple(np.shape(value))} in the file, "
                f"{tuple(variable.shape)} in the optimizer"
            )
    return {str(i): _read(value) for i, value in enumerate(ours)}


def _keras2_optimizer_store(optimizer, model, names: list[str], values: list) -> dict:
    """Keras 2's layout: slots named `Opt/m/<var>:0` (new) or `Opt/<var>/m:0` (legacy)."""
    from ktorch.saving.keras_layout import keras_trainable_weights

    kind = type(optimizer).__name__.lower()
    slot_names = _KERAS2_SLOTS.get(kind)
    if slot_names is None:
        raise ValueError(f"restoring a Keras 2 {type(optimizer).__name__} state is not supported")
    parts = [_KERAS2_NAME.sub("", name).split("/") for name in names]
    slot_parts = [p for p in parts if p[-1] not in _ITERATION_NAMES + _NADAM_PRODUCT_NAMES]
    new_style = all(len(p) > 2 and p[1] in slot_names for p in slot_parts)
    iterations = None
    variables: list[str] = []
    slots: dict[tuple[str, str], h5py.Dataset] = {}
    for part, value in zip(parts, values, strict=True):
        if part[-1] in _ITERATION_NAMES:
            if value.size != 1:
                raise ValueError(f"the iteration count has shape {value.shape}")
            iterations = int(_read(value).reshape(()))
            continue
        if part[-1] in _NADAM_PRODUCT_NAMES:
            continue
        if new_style:
            slot, variable = part[1], "/".join(part[2:])
        elif len(part) > 2 and part[-1] in slot_names:
            slot, variable = part[-1], "/".join(part[1:-1])
        else:
            raise ValueError(f"unrecognized optimizer variable '{'/'.join(part)}'")
        if variable not in variables:
            variables.append(variable)
        slots[(slot_names[slot], variable)] = value
    if iterations is None:
        raise ValueError("the file has no iteration count")
    params = keras_trainable_weights(model)
    if variables and len(variables) != len(params):
        raise ValueError(
            f"the file has optimizer slots for {len(variables)} variables, the model has "
            f"{len(params)} trainable weights"
        )
    keras_index = {id(p): i for i, p in enumerate(params)}
    store = [np.asarray(iterations, dtype=np.int64)]
    if isinstance(optimizer._learning_rate, float):
        store.append(np.asarray(optimizer._learning_rate, dtype=np.float32))
    for group in optimizer._slot_groups():
        for param in optimizer._trainable_variables:
            variable = variables[keras_index[id(param)]] if variables else None
            for slot in group:
                value = slots.get((slot, variable))
                if value is None:
                    raise ValueError(f"the file has no '{slot}' slot for variable {variable}")
                if tuple(np.shape(value)) != tuple(param.shape):
                    raise ValueError(
                        f"the '{slot}' slot of variable {variable} has shape "
                        f"{tuple(np.shape(value))}, the weight {tuple(param.shape)}"
                    )
                store.append(_read(value))
    if kind == "nadam":
        store.append(_nadam_product(optimizer.beta_1, iterations))
    return {str(i): value for i, value in enumerate(store)}


def _nadam_product(beta_1: float, iterations: int) -> np.ndarray:
    """Nadam's product of momentum schedules after `iterations` steps, which Keras 2 does not
    save; computed with ktorch's (Keras 3's) schedule `beta_1 * (1 - 0.5 * 0.96 ** t)`, which
    is the one training continues with (Keras 2's was `0.96 ** (0.004 * t)`)."""
    product = 1.0
    steps = min(iterations, _NADAM_EXACT_STEPS)
    for step in range(1, steps + 1):
        product *= beta_1 * (1.0 - 0.5 * math.pow(0.96, step))
    if iterations > steps:
        # Past this, `0.96 ** step` no longer changes the factor in float64: it is `beta_1`
        # (and a file's iteration count, however large, costs no more than this many steps).
        product *= math.pow(beta_1, iterations - steps)
    return np.asarray(product, dtype=np.float32)
