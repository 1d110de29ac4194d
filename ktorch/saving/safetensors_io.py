"""Model weights as a `.safetensors` file (no pickle), for the PyTorch ecosystem.

Each weight is stored under a Keras-style path: the names of the layers that lead to it from
the model, then the weight's name (`dense_1/kernel`, `lstm/lstm_cell/kernel`,
`bidirectional/forward_gru/gru_cell/bias`), the same as Keras 3's `Variable.path` for the
same model. Nested layers add their parents' names, which keeps the paths of two
`MultiHeadAttention` layers (both holding a `query` sub-layer) apart; a path that still
repeats (two weights of one layer given the same name) gets `_1`, `_2`, ... in weight order.

The file's metadata records the format, the model's class and name, the keys in weight order
and the model-level layer each key belongs to. Non-trainable weights (BatchNormalization's
moving statistics) are weights like any other and are stored; the carried state of a stateful
RNN is not, as in Keras: it is reset with `reset_states()`, not loaded.
"""

from __future__ import annotations

import json
import os
import warnings

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ktorch.layers.layer import Layer
from ktorch.saving.file_utils import atomic_write

FORMAT = "ktorch.safetensors"
FORMAT_VERSION = "1"


class _Entry:
    """A weight of the model with its file key and the model-level layer that holds it."""

    __slots__ = ("key", "layer", "variable")

    def __init__(self, key: str, layer: str, variable: torch.Tensor):
        self.key = key
        self.layer = layer
        self.variable = variable


def _sublayers(module: torch.nn.Module):
    """The layers directly under `module`, reached through plain torch containers."""
    for child in module.children():
        if isinstance(child, Layer):
            yield child
        else:
            yield from _sublayers(child)


def _weight_entries(model: Layer) -> list[_Entry]:
    """The model's weights in `model.weights` order, each with its unique key."""
    entries: list[_Entry] = []
    seen: set[int] = set()
    used: set[str] = set()

    def visit(layer: Layer, prefix: str, top: str) -> None:
        sublayers = list(_sublayers(layer))
        nested = {id(w) for sub in sublayers for w in sub.weights}
        attribute_names = {id(p): name for name, p in layer.named_parameters()}
        for weight in layer.weights:
            if id(weight) in nested or id(weight) in seen:
                continue
            seen.add(id(weight))
            name = getattr(weight, "name", None) or attribute_names.get(id(weight), "variable")
            key, index = prefix + name, 1
            while key in used:
                key = f"{prefix}{name}_{index}"
                index += 1
            used.add(key)
            entries.append(_Entry(key, top, weight))
        for sub in sublayers:
            visit(sub, f"{prefix}{sub.name}/", top or sub.name)

    visit(model, "", "")
    for entry in entries:
        if not entry.layer:
            entry.layer = model.name
    return entries


def save_weights(model: Layer, filepath: str | os.PathLike) -> None:
    """Writes `model`'s weights to a `.safetensors` file, atomically.

    Args:
        model: the model (or layer) whose weights to save; it must be built.
        filepath: the destination file.

    Example:
        ```python
        model.save_weights("model.safetensors")
        ```
    """
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' has no weights yet: build it (call it on data or give it an "
            "`Input`) before `save_weights()`."
        )
    entries = _weight_entries(model)
    tensors = {e.key: e.variable.detach().cpu().contiguous() for e in entries}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "model_name": model.name,
        "weight_order": json.dumps([e.key for e in entries]),
        "weight_layers": json.dumps([e.layer for e in entries]),
    }
    with atomic_write(filepath) as tmp:
        save_file(tensors, tmp, metadata=metadata)


class _File:
    """The tensors of a safetensors file with their order and layer names."""

    def __init__(self, filepath: str):
        self.filepath = filepath
        try:
            with safe_open(filepath, framework="pt", device="cpu") as f:
                metadata = f.metadata() or {}
                self.tensors = {key: f.get_tensor(key) for key in f.keys()}
        except (SafetensorError, OSError, RuntimeError, ValueError) as error:
            raise ValueError(
                f"Could not read the safetensors file at filepath={filepath}: the file is "
                f"truncated, corrupt or not a safetensors file ({error})."
            ) from error
        # A file from another tool has no recorded order: its weights are found by key only.
        self.ordered = "weight_order" in metadata
        self.order, self.layers = self._layout(metadata)

    def _layout(self, metadata: dict) -> tuple[list[str], list[str]]:
        keys = sorted(self.tensors)
        if not self.ordered:
            return keys, [key.split("/", 1)[0] for key in keys]
        try:
            order = json.loads(metadata["weight_order"])
            layers = json.loads(metadata.get("weight_layers", "null"))
        except (json.JSONDecodeError, RecursionError) as error:
            raise ValueError(
                f"Invalid metadata in the safetensors file at filepath={self.filepath}: {error}."
            ) from error
        if (
            not isinstance(order, list)
            or not all(isinstance(key, str) for key in order)
            or sorted(order) != keys
            or not isinstance(layers, list)
            or len(layers) != len(order)
            or not all(isinstance(name, str) for name in layers)
        ):
            raise ValueError(
                f"Invalid metadata in the safetensors file at filepath={self.filepath}: the "
                "recorded weight order and layer names do not match the stored tensors."
            )
        return order, layers


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "integer"


def _problem(entry: _Entry, key: str, value: torch.Tensor) -> str | None:
    """Why `value` (stored under `key`) cannot be loaded into `entry`'s weight, or None."""
    expected = tuple(entry.variable.shape)
    if tuple(value.shape) != expected:
        return (
            f"weight '{entry.key}' of layer '{entry.layer}' has shape {expected} in the model "
            f"but the file's '{key}' has shape {tuple(value.shape)}"
        )
    return None


def _check_dtype(entry: _Entry, key: str, value: torch.Tensor, filepath: str) -> None:
    if _kind(value.dtype) != _kind(entry.variable.dtype):
        raise ValueError(
            f"Cannot load weight '{entry.key}' of layer '{entry.layer}' from filepath="
            f"{filepath}: expected a {_kind(entry.variable.dtype)} tensor "
            f"({str(entry.variable.dtype).replace('torch.', '')}). Received: '{key}' of dtype "
            f"{str(value.dtype).replace('torch.', '')}"
        )


def _group(entries: list[_Entry]) -> dict[str, list[_Entry]]:
    groups: dict[str, list[_Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.layer, []).append(entry)
    return groups


def _resolve(problems: dict[str, list[str]], skip_mismatch: bool, filepath: str) -> set[str]:
    """Raises for the layers with problems, or warns and returns them when skipping."""
    bad = {layer: issues for layer, issues in problems.items() if issues}
    if bad and not skip_mismatch:
        details = "; ".join(issue for issues in bad.values() for issue in issues)
        raise ValueError(
            f"Cannot load the weights at filepath={filepath} into the model: {details}. "
            "Pass `skip_mismatch=True` to skip the layers that do not match."
        )
    for layer, issues in bad.items():
        warnings.warn(
            f"Skipping the weights of layer '{layer}' when loading {filepath}: "
            + "; ".join(issues),
            stacklevel=4,
        )
    return set(bad)


def _pairs_by_key(entries, file: _File, skip_mismatch: bool):
    problems: dict[str, list[str]] = {}
    pairs = []
    model_keys = {e.key for e in entries}
    for entry in entries:
        issues = problems.setdefault(entry.layer, [])
        if entry.key not in file.tensors:
            issues.append(f"weight '{entry.key}' of layer '{entry.layer}' is missing from the file")
            continue
        value = file.tensors[entry.key]
        _check_dtype(entry, entry.key, value, file.filepath)
        issue = _problem(entry, entry.key, value)
        if issue:
            issues.append(issue)
        else:
            pairs.append((entry, value))
    skipped = _resolve(problems, skip_mismatch, file.filepath)
    unexpected = [key for key in file.order if key not in model_keys]
    if unexpected and not skip_mismatch:
        raise ValueError(
            f"Cannot load the weights at filepath={file.filepath} into the model: the file has "
            f"weights the model does not have: {unexpected}. Pass `skip_mismatch=True` to "
            "ignore them."
        )
    if unexpected:
        warnings.warn(
            f"Ignoring weights of {file.filepath} that the model does not have: {unexpected}",
            stacklevel=3,
        )
    return [(e, v) for e, v in pairs if e.layer not in skipped]


def _pairs_in_order(entries, file: _File, keys: list[str]):
    """Pairs `entries` with the file's tensors `keys` by position, checking dtype kinds."""
    pairs = []
    for entry, key in zip(entries, keys, strict=True):
        value = file.tensors[key]
        _check_dtype(entry, key, value, file.filepath)
        pairs.append((entry, key, value))
    return pairs


def _pairs_by_position(entries, file: _File, skip_mismatch: bool):
    problems: dict[str, list[str]] = {}
    pairs = []
    for entry, key, value in _pairs_in_order(entries, file, file.order):
        issue = _problem(entry, key, value)
        problems.setdefault(entry.layer, [])
        if issue:
            problems[entry.layer].append(issue)
        else:
            pairs.append((entry, value))
    skipped = _resolve(problems, skip_mismatch, file.filepath)
    return [(e, v) for e, v in pairs if e.layer not in skipped]


def _pairs_by_name(entries, file: _File, skip_mismatch: bool):
    file_groups: dict[str, list[str]] = {}
    for key, layer in zip(file.order, file.layers, strict=True):
        file_groups.setdefault(layer, []).append(key)
    problems: dict[str, list[str]] = {}
    pairs = []
    for layer, group in _group(entries).items():
        keys = file_groups.get(layer)
        if keys is None:
            continue
        issues = problems.setdefault(layer, [])
        if len(keys) != len(group):
            issues.append(
                f"layer '{layer}' has {len(group)} weights in the model but {len(keys)} in the file"
            )
            continue
        if {e.key for e in group} == set(keys):
            keys = [e.key for e in group]
        elif not file.ordered:
            issues.append(f"the weights of layer '{layer}' do not match the file's keys {keys}")
            continue
        for entry, key, value in _pairs_in_order(group, file, keys):
            issue = _problem(entry, key, value)
            if issue:
                issues.append(issue)
            else:
                pairs.append((entry, value))
    skipped = _resolve(problems, skip_mismatch, file.filepath)
    return [(e, v) for e, v in pairs if e.layer not in skipped]


def load_weights(
    model: Layer,
    filepath: str | os.PathLike,
    skip_mismatch: bool = False,
    by_name: bool = False,
) -> None:
    """Loads weights written by `save_weights` into `model`.

    By default every weight is found by its key. When the keys differ but the file holds as
    many weights as the model (the same architecture built again in one process, where
    automatic names such as `dense_1` differ), the weights are matched in order, as Keras
    matches a legacy HDF5 file. With `by_name=True` only the model's layers whose names appear
    in the file are loaded, the others keep their weights.

    The whole file is read and checked before any weight changes: a file that cannot be read,
    a dtype of the wrong kind (integer for float, ...) or a mismatch raises `ValueError` and
    leaves the model as it was.

    Args:
        model: the model (or layer) to load into; it must be built.
        filepath: a `.safetensors` file.
        skip_mismatch: skip, with a warning, the layers whose weights are missing or differ
            in count or shape, instead of raising.
        by_name: load only the layers whose names match, matching each layer's weights.

    Example:
        ```python
        model.load_weights("model.safetensors", by_name=True, skip_mismatch=True)
        ```
    """
    filepath = os.fspath(filepath)
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' has no weights yet: build it (call it on data or give it an "
            "`Input`) before `load_weights()`."
        )
    file = _File(filepath)
    entries = _weight_entries(model)
    if by_name:
        pairs = _pairs_by_name(entries, file, skip_mismatch)
    elif (
        file.ordered
        and {e.key for e in entries} != set(file.tensors)
        and len(entries) == len(file.order)
    ):
        pairs = _pairs_by_position(entries, file, skip_mismatch)
    else:
        pairs = _pairs_by_key(entries, file, skip_mismatch)
    with torch.no_grad():
        for entry, value in pairs:
            variable = entry.variable
            variable.copy_(value.to(device=variable.device, dtype=variable.dtype))
