"""The Keras 3 file formats: the `.keras` zip archive and the `.weights.h5` weights file.

A `.keras` file is a zip archive holding, by member name:

- `metadata.json`: `keras_version` and `date_saved`;
- `config.json`: the serialized model (`module`, `class_name`, `config`, `registered_name`)
  with its `build_config` and, for a compiled model, its `compile_config`;
- `model.weights.h5`: the weights (and optimizer state) in the Keras 3 layout (see
  `keras_layout`): `<path>/vars/<i>`, e.g. `layers/dense/vars/0`, `optimizer/vars/3`;
- `assets/<path>/...`: files written by objects that define `save_assets(dirpath)`.

A `.weights.h5` file is the `model.weights.h5` member alone.

Loading never unpickles and never extracts a member to a path taken from the archive; a file
that is damaged, incomplete or does not fit the model raises a `ValueError` naming the problem
before any weight of the model is changed. Writing goes through `atomic_write`: an interrupted
save leaves any previous file intact.
"""

from __future__ import annotations

import base64
import builtins
import collections
import contextlib
import datetime
import itertools
import json
import marshal
import os
import re
import shutil
import tempfile
import types
import warnings
import zipfile
import zlib
from typing import Any

import h5py
import numpy as np
import torch

from ktorch.saving import keras_layout
from ktorch.saving.file_utils import atomic_write
from ktorch.saving.object_registration import CustomObjectScope
from ktorch.saving.serialization_lib import CONFIG_ERRORS, check_config_depth

CONFIG_FILENAME = "config.json"
METADATA_FILENAME = "metadata.json"
WEIGHTS_FILENAME = "model.weights.h5"
ASSETS_DIRNAME = "assets"
# The Keras release whose file layout this module writes (and was checked against).
KERAS_VERSION = "3.15.1"

# A zip member that declares more than this many bytes and expands more than
# `_MAX_EXPANSION`-fold from its stored size is refused as a decompression bomb.
_BOMB_FLOOR_BYTES = 1 << 32
_MAX_EXPANSION = 100
# Deeper group nesting than this in a weights file is refused (a hostile file could otherwise
# exhaust the recursion of the reader).
_MAX_H5_DEPTH = 256
_COPY_CHUNK = 1 << 20


# ------------------------------------------------------------------------------ saving


def save_model(model, filepath, include_optimizer: bool = True) -> None:
    """Saves `model` whole to a `.keras` zip archive, in the Keras 3 layout.

    Args:
        model: the model.
        filepath: the destination, ending in `.keras`; written atomically.
        include_optimizer: store the compile config and the optimizer state, so that the
            loaded model is compiled and continues training where this one stopped.

    Example:
        ```python
        saving_lib.save_model(model, "model.keras")
        restored = saving_lib.load_model("model.keras")
        ```
    """
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(
            f"Invalid filepath extension. Expected a path ending in `.keras`. Received: "
            f"filepath={filepath}"
        )
    if not model.built:
        warnings.warn(
            f"You are saving model '{model.name}', which has not been built yet: it has no "
            "weights. Build it first by calling it on some data.",
            stacklevel=2,
        )
    config = _model_config(model, include_optimizer)
    config_json = json.dumps(config, default=_json_default)
    metadata_json = json.dumps(
        {
            "keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        }
    )
    with_optimizer = include_optimizer and "compile_config" in config
    with atomic_write(filepath) as tmp, open(tmp, "wb") as raw:
        with zipfile.ZipFile(raw, "w") as archive:
            _write_member(archive, METADATA_FILENAME, metadata_json.encode())
            _write_member(archive, CONFIG_FILENAME, config_json.encode())
            with tempfile.TemporaryFile() as weights:
                with h5py.File(weights, "w") as h5:
                    _write_weights(h5, model, with_optimizer)
                weights.seek(0)
                _write_member(archive, WEIGHTS_FILENAME, weights)
            _write_assets(archive, model, with_optimizer)


def save_weights_only(model, filepath) -> None:
    """Saves `model`'s weights (and optimizer state, if built) to a `.weights.h5` file.

    Args:
        model: a built model.
        filepath: the destination, ending in `.weights.h5`; written atomically.
    """
    filepath = os.fspath(filepath)
    if not filepath.endswith(".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={filepath}")
    if not model.built:
        raise ValueError(
            f"You are saving the weights of model '{model.name}', which has not been built yet. "
            "Build it first by calling it on some data or with `build(input_shape)`."
        )
    with atomic_write(filepath) as tmp, h5py.File(tmp, "w") as h5:
        _write_weights(h5, model, include_optimizer=True)


def _write_member(archive: zipfile.ZipFile, name: str, data) -> None:
    """Writes one member (bytes, or a binary file object copied in chunks) to the archive."""
    with archive.open(name, "w", force_zip64=True) as member:
        if isinstance(data, bytes):
            member.write(data)
        else:
            shutil.copyfileobj(data, member, _COPY_CHUNK)


def _json_default(value):
    if isinstance(value, (np.generic, torch.Tensor)) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    raise TypeError(
        f"Cannot save the model config: a value of type {type(value).__name__} ({value!r}) is "
        "not JSON-serializable. Make `get_config()` return plain values."
    )


def _model_config(model, include_optimizer: bool) -> dict:
    from ktorch.saving.serialization_lib import serialize_keras_object

    config = serialize_keras_object(model)
    build_config = model.get_build_config()
    if build_config is not None:
        config["build_config"] = build_config
    if include_optimizer:
        compile_config = _compile_config(model)
        if compile_config is not None:
            config["compile_config"] = compile_config
    return config


def _compile_config(model) -> dict | None:
    """The arguments `model` was compiled with, serialized as Keras writes them."""
    from ktorch.optimizers import TorchOptimizer

    if not getattr(model, "compiled", False):
        return None
    if isinstance(model.optimizer, TorchOptimizer):
        warnings.warn(
            f"Model '{model.name}' is compiled with a torch optimizer, which the Keras format "
            "cannot describe: the file holds no compile config or optimizer state, and the "
            "loaded model is not compiled.",
            stacklevel=3,
        )
        return None
    try:
        return model.get_compile_config()
    except TypeError as error:
        warnings.warn(
            f"The compile arguments of model '{model.name}' cannot be serialized ({error}): "
            "the file holds no compile config or optimizer state, and the loaded model is not "
            "compiled.",
            stacklevel=3,
        )
        return None


def _write_weights(h5: h5py.File, model, include_optimizer: bool) -> None:
    """Writes every object's own variables at its Keras path, `<path>/vars/<key>`."""
    for saveable in keras_layout.saveables(model, include_optimizer=include_optimizer):
        group = h5.require_group(keras_layout.join(saveable.path, "vars"))
        if saveable.name:
            group.attrs["name"] = saveable.name
        if saveable.is_optimizer:
            values = _optimizer_values_for_file(saveable.obj, model)
        else:
            values = [(key, tensor.detach()) for key, tensor in saveable.variables()]
        for key, value in values:
            _write_dataset(group, key, value)


def _write_dataset(group: h5py.Group, key: str, value: torch.Tensor) -> None:
    value = value.detach().cpu()
    if value.dtype == torch.bfloat16:
        # As Keras stores it: the raw 2-byte values, tagged with their dtype.
        data = value.view(torch.int16).numpy().view("V2")
        group.create_dataset(key, data=data).attrs["dtype"] = "bfloat16"
        return
    group.create_dataset(key, data=value.numpy())


def _optimizer_values_for_file(optimizer, model) -> list[tuple[str, torch.Tensor]]:
    values = optimizer.variables
    order = keras_layout.optimizer_order(optimizer, model)
    if order is not None:
        values = [values[i] for i in order]
    return [(str(i), value) for i, value in enumerate(values)]


def _write_assets(archive: zipfile.ZipFile, model, include_optimizer: bool) -> None:
    """Adds the files of objects with `save_assets(dirpath)` under `assets/<path>/`."""
    owners = [
        s
        for s in keras_layout.saveables(model, include_optimizer=include_optimizer)
        if callable(getattr(s.obj, "save_assets", None))
    ]
    if not owners:
        return
    with tempfile.TemporaryDirectory() as root:
        for saveable in owners:
            directory = os.path.join(root, *saveable.path.split("/")) if saveable.path else root
            os.makedirs(directory, exist_ok=True)
            saveable.obj.save_assets(directory)
        for folder, _, files in sorted(os.walk(root)):
            for filename in sorted(files):
                full = os.path.join(folder, filename)
                relative = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    _write_member(archive, f"{ASSETS_DIRNAME}/{relative}", f)


# ----------------------------------------------------------------------------- loading


def load_model(filepath, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """Loads a model from a `.keras` zip archive (written by ktorch or by Keras 3).

    Args:
        filepath: the `.keras` file.
        custom_objects: a dict mapping names to the custom classes and functions of the model.
        compile: compile the model with the saved compile config, and restore the optimizer
            state, when the file has them.
        safe_mode: refuse to load code (Python lambdas stored as bytecode) from the file.

    Returns:
        The model, compiled when it was saved compiled (and `compile` is True).

    Example:
        ```python
        model = saving_lib.load_model("model.keras")
        model.fit(x, y)  # continues where the saved model stopped
        ```
    """
    from ktorch.layers import deserialize as deserialize_layer

    filepath = os.fspath(filepath)
    with _open_archive(filepath) as archive:
        names = _member_names(archive, filepath)
        if CONFIG_FILENAME not in names:
            raise ValueError(
                f"Invalid .keras file {filepath}: it has no `{CONFIG_FILENAME}` member (the "
                f"model's architecture). Members found: {sorted(names)[:10]}"
            )
        config = _parse_json(_read_member(archive, CONFIG_FILENAME), CONFIG_FILENAME, filepath)
        if not isinstance(config, dict) or "class_name" not in config:
            raise ValueError(
                f"Invalid .keras file {filepath}: `{CONFIG_FILENAME}` does not describe a model "
                "(expected a JSON object with a 'class_name')."
            )
        check_config_depth(config, f"Invalid .keras file {filepath}: `{CONFIG_FILENAME}`")
        compile_config = config.pop("compile_config", None)
        scope = dict(custom_objects or {})
        try:
            config = _resolve_lambdas(config, scope, safe_mode)
        except (RecursionError, TypeError) as error:
            raise ValueError(
                f"Invalid .keras file {filepath}: `{CONFIG_FILENAME}` is nested too deeply or "
                f"holds an invalid lambda ({type(error).__name__}: {error})."
            ) from error
        with CustomObjectScope(scope):
            try:
                model = deserialize_layer(config, custom_objects=scope)
            except CONFIG_ERRORS as error:
                raise ValueError(
                    f"Invalid .keras file {filepath}: `{CONFIG_FILENAME}` does not describe a "
                    f"valid model ({type(error).__name__}: {error})."
                ) from error
            if compile and compile_config:
                compile_from_config(model, compile_config, scope)
        if WEIGHTS_FILENAME not in names:
            if any(n.startswith("model.weights.") for n in names):
                raise ValueError(
                    f"Cannot load {filepath}: its weights are not stored as `{WEIGHTS_FILENAME}` "
                    "(only the HDF5 weights layout is supported)."
                )
            raise ValueError(
                f"Invalid .keras file {filepath}: it has no `{WEIGHTS_FILENAME}` member."
            )
        with _weights_member(archive, filepath) as h5:
            _load_weights_into(
                model,
                h5,
                f"{filepath}:{WEIGHTS_FILENAME}",
                include_optimizer=bool(compile and compile_config),
                strict=True,
            )
        _load_assets(model, archive, names)
    return model


def load_weights_only(model, filepath, skip_mismatch: bool = False, by_name: bool = False):
    """Loads weights in the Keras 3 layout into `model`.

    Args:
        model: a built model.
        filepath: a `.weights.h5` file, a `.keras` archive (its weights are read), or an
            `.h5` file in the Keras 3 weights layout.
        skip_mismatch: skip, with a warning, the layers whose weights do not match in number
            or shape (and weight groups of the file that match no layer) instead of raising.
        by_name: match the model's layers to the file's by layer name rather than by
            position in the model; layers the file does not have keep their weights.

    Nothing is changed in the model when loading fails.
    """
    filepath = os.fspath(filepath)
    if not model.built:
        raise ValueError(
            f"You are loading weights into model '{model.name}', which has not been built yet. "
            "Build it first by calling it on some data or with `build(input_shape)`."
        )
    if filepath.endswith(".keras"):
        with _open_archive(filepath) as archive:
            names = _member_names(archive, filepath)
            if WEIGHTS_FILENAME not in names:
                raise ValueError(
                    f"Invalid .keras file {filepath}: it has no `{WEIGHTS_FILENAME}` member."
                )
            with _weights_member(archive, filepath) as h5:
                _load_weights_into(
                    model,
                    h5,
                    f"{filepath}:{WEIGHTS_FILENAME}",
                    include_optimizer=True,
                    strict=not skip_mismatch,
                    by_name=by_name,
                )
        return
    with _open_h5(filepath) as h5:
        _load_weights_into(
            model, h5, filepath, include_optimizer=True, strict=not skip_mismatch, by_name=by_name
        )


# --------------------------------------------------------------------- archive reading


@contextlib.contextmanager
def _open_archive(filepath: str):
    try:
        archive = zipfile.ZipFile(filepath, "r")
    except zipfile.BadZipFile as error:
        raise ValueError(
            f"Invalid .keras file {filepath}: it is not a zip archive, or it is damaged or "
            f"truncated ({error})."
        ) from error
    try:
        yield archive
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ValueError(
            f"Invalid .keras file {filepath}: a member is damaged or truncated ({error})."
        ) from error
    finally:
        archive.close()


def _member_names(archive: zipfile.ZipFile, filepath: str) -> set[str]:
    """The archive's member names, each checked to be a safe relative path."""
    names = [info.filename for info in archive.infolist()]
    for name in names:
        if not _is_safe_member_name(name):
            raise ValueError(
                f"Invalid .keras file {filepath}: member name {name!r} is not a safe relative "
                "path (absolute, with '..', a drive or a backslash); refusing to load it."
            )
    duplicates = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(
            f"Invalid .keras file {filepath}: members {duplicates} appear more than once."
        )
    for info in archive.infolist():
        if info.file_size > _BOMB_FLOOR_BYTES and info.file_size > _MAX_EXPANSION * max(
            info.compress_size, 1
        ):
            raise ValueError(
                f"Invalid .keras file {filepath}: member '{info.filename}' declares "
                f"{info.file_size} bytes but stores only {info.compress_size}; refusing a "
                "potential decompression bomb."
            )
    return set(names)


_DRIVE = re.compile(r"^[A-Za-z]:")


def _is_safe_member_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        return False
    parts = name.rstrip("/").split("/")
    return all(part not in ("", ".", "..") for part in parts)


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    with archive.open(name, "r") as member:
        return member.read()


def _parse_json(data: bytes, member: str, filepath: str):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(
            f"Invalid .keras file {filepath}: `{member}` is not valid JSON ({error})."
        ) from error


@contextlib.contextmanager
def _weights_member(archive: zipfile.ZipFile, filepath: str):
    """The archive's weights member as an open HDF5 file, copied to an anonymous temp file."""
    with tempfile.TemporaryFile() as copy:
        with archive.open(WEIGHTS_FILENAME, "r") as member:
            shutil.copyfileobj(member, copy, _COPY_CHUNK)
        copy.seek(0)
        try:
            h5 = h5py.File(copy, "r")
        except OSError as error:
            raise ValueError(
                f"Invalid .keras file {filepath}: `{WEIGHTS_FILENAME}` is not a valid HDF5 file "
                f"({error})."
            ) from error
        with _damage_as_value_error(f"{filepath}:{WEIGHTS_FILENAME}"), h5:
            yield h5


@contextlib.contextmanager
def _open_h5(filepath: str):
    if not os.path.isfile(filepath):
        raise OSError(f"No file found at filepath={filepath}")
    try:
        h5 = h5py.File(filepath, "r")
    except OSError as error:
        raise ValueError(
            f"Invalid weights file {filepath}: it is not a valid HDF5 file, or it is damaged or "
            f"truncated ({error})."
        ) from error
    with _damage_as_value_error(filepath), h5:
        yield h5


@contextlib.contextmanager
def _damage_as_value_error(source: str):
    # h5py reports damage inside an HDF5 file (a broken link table, an address past the end)
    # as KeyError or RuntimeError when an object is opened or listed.
    try:
        yield
    except (KeyError, RuntimeError) as error:
        raise ValueError(
            f"Invalid weights file {source}: it is damaged or truncated ({error})."
        ) from error


def _load_assets(model, archive: zipfile.ZipFile, names: set[str]) -> None:
    """Gives objects with `load_assets(dirpath)` their `assets/<path>/` files.

    The files are written to a fresh temporary folder under names checked by `_member_names`
    (relative, no `..`), never to a path the archive chooses.
    """
    owners = [
        s
        for s in keras_layout.saveables(model, include_optimizer=True)
        if callable(getattr(s.obj, "load_assets", None))
    ]
    prefix = f"{ASSETS_DIRNAME}/"
    members = sorted(n for n in names if n.startswith(prefix) and not n.endswith("/"))
    if not owners or not members:
        return
    with tempfile.TemporaryDirectory() as root:
        for name in members:
            target = os.path.join(root, *name[len(prefix) :].split("/"))
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with archive.open(name, "r") as member, open(target, "xb") as out:
                    shutil.copyfileobj(member, out, _COPY_CHUNK)
            except (FileExistsError, NotADirectoryError) as error:
                raise ValueError(
                    f"Invalid .keras file: asset member '{name}' collides with another asset."
                ) from error
        for saveable in owners:
            directory = os.path.join(root, *saveable.path.split("/")) if saveable.path else root
            if os.path.isdir(directory):
                saveable.obj.load_assets(directory)


# ---------------------------------------------------------------------- model config


def _resolve_lambdas(config: Any, scope: dict, safe_mode: bool) -> Any:
    """Replaces Keras's serialized Python lambdas (bytecode) by names of `scope`.

    In safe mode a lambda is refused. Otherwise its bytecode is turned back into a function
    (with only the builtins as globals), registered in `scope` under a generated name, and the
    config refers to it by that name.
    """
    if isinstance(config, list):
        return [_resolve_lambdas(item, scope, safe_mode) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "__lambda__":
        if safe_mode:
            raise ValueError(
                "Requested the deserialization of a Python lambda stored as bytecode in the "
                "file. Loading it could run arbitrary code, so it is refused by default. If you "
                "trust the source of the file, pass `safe_mode=False` to the loading function."
            )
        name = next(f"__lambda_{i}__" for i in itertools.count() if f"__lambda_{i}__" not in scope)
        scope[name] = _function_from_bytecode(config.get("config"))
        return name
    return {key: _resolve_lambdas(value, scope, safe_mode) for key, value in config.items()}


def _function_from_bytecode(config: Any):
    """A function from Keras's `{"code", "defaults", "closure"}` or `{"value": [...]}` config."""
    if isinstance(config, dict) and isinstance(config.get("value"), (list, tuple)):
        parts = list(config["value"]) + [None, None]
        code, defaults, closure = parts[0], parts[1], parts[2]
    elif isinstance(config, dict):
        code, defaults, closure = config.get("code"), config.get("defaults"), config.get("closure")
    else:
        code = defaults = closure = None
    if not isinstance(code, str):
        raise ValueError(f"Invalid serialized lambda: expected its bytecode. Received: {config!r}")
    try:
        compiled = marshal.loads(base64.b64decode(code.encode("ascii")))
    except (ValueError, EOFError, TypeError) as error:
        raise ValueError(
            f"Invalid serialized lambda: its bytecode cannot be read by this Python ({error})."
        ) from error
    if not isinstance(compiled, types.CodeType):
        raise ValueError("Invalid serialized lambda: the bytecode does not hold a function.")
    cells = tuple(types.CellType(value) for value in closure) if closure else None
    return types.FunctionType(
        compiled,
        {"__builtins__": builtins},
        name=compiled.co_name,
        argdefs=tuple(defaults) if defaults else None,
        closure=cells,
    )


def _deserialize_leaves(structure: Any, deserialize):
    """Deserializes the serialized objects (dicts with a `class_name`) of a nested spec."""
    if isinstance(structure, dict):
        if "class_name" in structure:
            return deserialize(structure)
        return {key: _deserialize_leaves(value, deserialize) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_deserialize_leaves(item, deserialize) for item in structure]
    return structure


def compile_from_config(model, config: dict, custom_objects: dict | None = None) -> None:
    """Compiles `model` as its compile config says, with the optimizer built as Keras does."""
    from ktorch import losses, metrics, optimizers
    from ktorch.optimizers import Optimizer

    if not isinstance(config, dict):
        raise ValueError(
            f"Invalid compile config of model '{model.name}': expected a dict. Received: {config!r}"
        )
    try:
        optimizer = config.get("optimizer", "rmsprop")
        if isinstance(optimizer, dict):
            optimizer = optimizers.deserialize(optimizer, custom_objects=custom_objects)
        kwargs = {
            "optimizer": optimizer,
            "loss": _deserialize_leaves(
                config.get("loss"), lambda c: losses.deserialize(c, custom_objects)
            ),
            "metrics": _deserialize_leaves(
                config.get("metrics"), lambda c: metrics.deserialize(c, custom_objects)
            ),
            "weighted_metrics": _deserialize_leaves(
                config.get("weighted_metrics"), lambda c: metrics.deserialize(c, custom_objects)
            ),
            "loss_weights": config.get("loss_weights"),
        }
        for key in ("run_eagerly", "steps_per_execution", "jit_compile"):
            if config.get(key) is not None:
                kwargs[key] = config[key]
        model.compile(**kwargs)
        if isinstance(model.optimizer, Optimizer) and model.built:
            trainable = keras_layout.keras_trainable_weights(model)
            if trainable:
                # Created now, in Keras's order, so that the saved optimizer state can be loaded;
                # an optimizer argument of the wrong type fails here.
                model.optimizer.build(trainable)
    # AttributeError: a name that is not a string (an optimizer `class_name` of 5).
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(
            f"Could not compile model '{model.name}' from the compile config in the file: "
            f"{error}. Pass the missing objects in `custom_objects`, or load with "
            "`compile=False`."
        ) from error


# ---------------------------------------------------------------------- weights reading


class _FileIndex:
    """The variables of a Keras 3 weights file, by object path, read without following links.

    Attributes:
        variables: path -> {key: dataset} for every `vars` group (the root's path is "").
        names: path -> the `name` attribute of the path's `vars` group.
        stray: datasets outside any `vars` group.
    """

    def __init__(self, h5: h5py.File, source: str):
        self.source = source
        self.variables: dict[str, dict[str, h5py.Dataset]] = {}
        self.names: dict[str, str] = {}
        self.stray: list[str] = []
        self._walk(h5, "", 0, in_vars=False)

    def _walk(self, group: h5py.Group, path: str, depth: int, in_vars: bool) -> None:
        if depth > _MAX_H5_DEPTH:
            raise ValueError(
                f"Invalid weights file {self.source}: groups nest deeper than {_MAX_H5_DEPTH} "
                f"levels at '{path}'."
            )
        for name in group:
            link = group.get(name, getlink=True)
            child_path = keras_layout.join(path, name)
            if not isinstance(link, h5py.HardLink):
                raise ValueError(
                    f"Invalid weights file {self.source}: '{child_path}' is a "
                    f"{type(link).__name__}; links to other objects or files are not allowed."
                )
            item = group[name]
            if isinstance(item, h5py.Group):
                if name == "vars":
                    self._add_vars(item, path)
                self._walk(item, child_path, depth + 1, in_vars=name == "vars")
            elif not in_vars:
                self.stray.append(child_path)

    def _add_vars(self, group: h5py.Group, owner: str) -> None:
        # Links were refused by `_walk`, which also visits this group.
        self.variables[owner] = {
            key: group[key]
            for key in group
            if isinstance(group.get(key, getlink=True), h5py.HardLink)
            and isinstance(group[key], h5py.Dataset)
        }
        name = group.attrs.get("name")
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if isinstance(name, str):
            self.names[owner] = name

    def find_by_name(self, name: str) -> str | None:
        """The path of the shallowest object group whose `name` attribute is `name`."""
        paths = [p for p, n in self.names.items() if n == name and p]
        if not paths:
            return None
        depth = min(p.count("/") for p in paths)
        shallowest = sorted(p for p in paths if p.count("/") == depth)
        if len(shallowest) > 1:
            raise ValueError(
                f"Cannot load weights by name from {self.source}: layer name '{name}' is "
                f"ambiguous in the file (groups {shallowest})."
            )
        return shallowest[0]


class _Plan:
    """Validated values to assign: nothing is assigned until the whole file was checked."""

    def __init__(self):
        self.assignments: list[tuple[torch.Tensor, np.ndarray]] = []
        self.optimizer = None
        self.optimizer_store: dict[str, np.ndarray] | None = None

    def apply(self) -> None:
        if self.optimizer is not None:
            # First: the one step that runs foreign code. If it fails, no weight has changed.
            self.optimizer.load_own_variables(self.optimizer_store)
        with torch.no_grad():
            for tensor, value in self.assignments:
                tensor.copy_(_to_tensor(value, tensor))


def _to_tensor(value: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    if value.dtype.kind == "V":
        source = torch.as_tensor(value.view(np.int16)).view(torch.bfloat16)
    else:
        source = torch.as_tensor(value)
    return source.to(device=like.device, dtype=like.dtype)


def _load_weights_into(
    model,
    h5: h5py.File,
    source: str,
    include_optimizer: bool,
    strict: bool,
    by_name: bool = False,
) -> None:
    index = _FileIndex(h5, source)
    if not model.built and any(index.variables.values()):
        raise ValueError(
            f"Cannot load the weights of {source}: model '{model.name}' is not built, so it has "
            "no variables to load them into (its config has no build config). Build the model, "
            "then load the weights with `load_weights`."
        )
    plan = _Plan()
    problems: list[str] = []
    consumed: set[str] = set()
    if by_name:
        targets = _targets_by_name(model, index)
    else:
        targets = [(s.path, s) for s in keras_layout.saveables(model, include_optimizer=False)]
    for file_path, saveable in targets:
        consumed.add(file_path)
        problem = _stage_object(plan, saveable, file_path, index)
        if problem:
            problems.append(problem)
    if not by_name:
        for path, datasets in sorted(index.variables.items()):
            if datasets and path not in consumed and not _is_optimizer_path(path):
                problems.append(
                    f"The file has {len(datasets)} variables at '{keras_layout.join(path, 'vars')}'"
                    f" (of object '{index.names.get(path, '?')}'), which match no layer of model "
                    f"'{model.name}'."
                )
        for path in index.stray:
            problems.append(f"The file has a dataset outside any 'vars' group: '{path}'.")
    if problems:
        message = (
            f"Cannot load the weights of {source} into model '{model.name}': "
            + " ".join(problems[:20])
            + (f" ... and {len(problems) - 20} more." if len(problems) > 20 else "")
        )
        if strict:
            raise ValueError(message)
        warnings.warn(message + " These were skipped.", stacklevel=3)
    if include_optimizer and not by_name:
        _stage_optimizer(plan, model, index, strict)
    plan.apply()


def _is_optimizer_path(path: str) -> bool:
    return path == "optimizer" or path.endswith("/optimizer")


def _targets_by_name(model, index: _FileIndex) -> list[tuple[str, keras_layout.Saveable]]:
    """Each layer of the model the file has a group for (by layer name), with its sub-objects."""
    from ktorch.models.model import Model

    targets = []

    def match(layer) -> None:
        path = index.find_by_name(layer.name)
        if path is not None:
            for saveable in keras_layout.saveables(layer, include_optimizer=False):
                targets.append((keras_layout.join(path, saveable.path), saveable))
            return
        if isinstance(layer, Model):
            for sub in keras_layout.keras_layers(layer):
                match(sub)

    for layer in keras_layout.keras_layers(model):
        match(layer)
    return targets


def _stage_object(plan: _Plan, saveable, file_path: str, index: _FileIndex) -> str | None:
    """Checks one object's variables against the file and stages them; returns the problem."""
    expected = saveable.variables()
    found = index.variables.get(file_path, {})
    label = _label(saveable, file_path)
    group = keras_layout.join(file_path, "vars")
    if not expected and not found:
        return None
    if set(found) != {key for key, _ in expected}:
        shapes = [tuple(t.shape) for _, t in expected]
        received = {k: tuple(d.shape) for k, d in sorted(found.items())}
        if not found:
            return (
                f"{label} expects {len(expected)} variables with shapes {shapes}, but the file "
                f"has no variables at '{group}'."
            )
        return (
            f"{label} expects {len(expected)} variables with shapes {shapes}, but the file has "
            f"{len(found)} at '{group}': {received}."
        )
    staged = []
    for key, tensor in expected:
        dataset = found[key]
        problem = _check_dataset(dataset, tensor, f"{label}, variable {key}", f"{group}/{key}")
        if problem:
            return problem
        staged.append((tensor, _read(dataset, f"{group}/{key}", index.source)))
    plan.assignments.extend(staged)
    return None


def _label(saveable, file_path: str) -> str:
    kind = "Optimizer" if saveable.is_optimizer else "Layer"
    name = saveable.name or type(saveable.obj).__name__
    return f"{kind} '{name}' (at '{file_path or '/'}')"


def _check_dataset(dataset: h5py.Dataset, like: torch.Tensor, what: str, where: str) -> str | None:
    """The problem with loading `dataset` into a tensor like `like`, or None."""
    if dataset.external:
        return f"{what}: the dataset '{where}' is stored in an external file, which is refused."
    if dataset.is_virtual:
        return f"{what}: the dataset '{where}' is a virtual dataset, which is refused."
    expected = tuple(like.shape)
    received = tuple(dataset.shape) if dataset.shape is not None else None
    if received != expected:
        return f"{what} has shape {expected}, but the file has shape {received} at '{where}'."
    kind = _dataset_kind(dataset)
    target = "f" if like.is_floating_point() else ("b" if like.dtype == torch.bool else "i")
    allowed = {"f": "fiub", "i": "iub", "b": "b"}[target]
    if kind is None or kind not in allowed:
        return (
            f"{what} has dtype {str(like.dtype).replace('torch.', '')}, but the file has dtype "
            f"{_dtype_name(dataset)} at '{where}', which cannot be loaded into it."
        )
    return None


def _dataset_kind(dataset: h5py.Dataset) -> str | None:
    dtype = dataset.dtype
    if (
        dtype.kind == "V"
        and dtype.itemsize == 2
        and dataset.attrs.get("dtype")
        in (
            "bfloat16",
            b"bfloat16",
        )
    ):
        return "f"
    if dtype.kind in "fiub" and dtype.fields is None and not dtype.subdtype:
        return "u" if dtype.kind == "u" else dtype.kind
    return None


def _dtype_name(dataset: h5py.Dataset) -> str:
    return (
        "bfloat16"
        if _dataset_kind(dataset) == "f" and dataset.dtype.kind == "V"
        else str(dataset.dtype)
    )


def _read(dataset: h5py.Dataset, where: str, source: str) -> np.ndarray:
    try:
        return np.asarray(dataset[()])
    except OSError as error:
        raise ValueError(
            f"Invalid weights file {source}: the dataset '{where}' cannot be read ({error})."
        ) from error


def _stage_optimizer(plan: _Plan, model, index: _FileIndex, strict: bool) -> None:
    """Stages the optimizer state of the file, or warns (as Keras does) when it does not fit."""
    from ktorch.optimizers import TorchOptimizer

    optimizer = getattr(model, "optimizer", None)
    found = index.variables.get("optimizer", {})
    if optimizer is None or isinstance(optimizer, TorchOptimizer) or not found:
        return
    current = optimizer.variables
    if not optimizer.built or len(found) != len(current):
        if len(found) != len(current) and not _is_fresh_optimizer_state(optimizer, found):
            warnings.warn(
                f"Skipping variable loading for optimizer '{optimizer.name}', because it has "
                f"{len(current)} variables whereas the saved optimizer has {len(found)} "
                "variables."
                + (" The optimizer has not been built yet." if not optimizer.built else ""),
                stacklevel=4,
            )
        return
    keys = {str(i) for i in range(len(current))}
    if set(found) != keys:
        problem = f"The optimizer variables in the file are not numbered 0..{len(current) - 1}."
    else:
        order = keras_layout.optimizer_order(optimizer, model) or list(range(len(current)))
        store: dict[str, np.ndarray] = {}
        problem = None
        for keras_index, position in enumerate(order):
            where = f"optimizer/vars/{keras_index}"
            dataset = found[str(keras_index)]
            problem = _check_dataset(
                dataset,
                current[position],
                f"Optimizer '{optimizer.name}', variable {keras_index}",
                where,
            )
            if problem:
                break
            store[str(position)] = _read(dataset, where, index.source)
    if problem:
        if strict:
            raise ValueError(f"Cannot load the optimizer state of {index.source}: {problem}")
        warnings.warn(f"Skipping the optimizer state of {index.source}: {problem}", stacklevel=4)
        return
    _keep_configured_learning_rate(optimizer, store)
    plan.optimizer = optimizer
    plan.optimizer_store = store


def _is_fresh_optimizer_state(optimizer, found: dict[str, h5py.Dataset]) -> bool:
    """Whether the file holds the state of an optimizer that never stepped (no slots yet).

    Such a state (`iterations` = 0 and the learning rate) is what a freshly compiled optimizer
    already has: nothing is lost by not loading it.
    """
    head = 2 if isinstance(optimizer.get_config().get("learning_rate"), float) else 1
    iterations = found.get("0")
    return (
        len(found) == head
        and iterations is not None
        and iterations.shape == ()
        and iterations.dtype.kind in "iu"
        and int(iterations[()]) == 0
    )


def _keep_configured_learning_rate(optimizer, store: dict[str, np.ndarray]) -> None:
    """Keeps the optimizer's float learning rate when the file holds it rounded to float32.

    The file stores the learning rate as a float32 variable, as Keras does; when that value is
    the optimizer's own (from the compile config) rounded, the exact value is kept.
    """
    configured = optimizer.get_config().get("learning_rate")
    if not isinstance(configured, float) or "1" not in store or store["1"].shape != ():
        return
    saved = store["1"]
    if saved.dtype.kind == "f" and np.float32(saved) == np.float32(configured):
        store["1"] = np.asarray(configured, dtype=np.float64)
