"""Fuzzing the loaders: a damaged or edited file loads cleanly or raises ValueError/OSError.

A small functional model (LSTM, Dense, BatchNormalization, compiled and trained one epoch) is
saved once per session in every format: `.keras`, `.weights.h5`, a Keras 2 layout `.h5`
whole model and weights file, and `.safetensors`. Hypothesis then damages copies of these
files (bytes flipped, overwritten, cut or appended; `config.json`/`metadata.json` and HDF5
attributes edited as JSON; zip members renamed, dropped or repeated; HDF5 datasets, groups,
links and attributes replaced; the safetensors header rewritten) and feeds each copy to the
loaders that read its format. The only outcomes allowed are:

- `ValueError` or `OSError`, with the model given to `load_weights` left exactly as it was
  (weights and optimizer state);
- success. A model with the saved config must predict, and predict finite values when its
  weights are the saved ones too (a damaged byte inside a stored float is another number the
  file really holds, which no loader can tell from a trained value). A model built from an
  edited config is another model: whether it runs is its layers' concern, not the loader's
  (a negative BatchNormalization `epsilon` computes NaN; a node calling a layer with an extra
  argument, or on a nested structure instead of a tensor, is accepted when the graph is
  rebuilt and fails when the model is called).

In every case no file may appear next to the working folder, nor stay in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ktorch
from ktorch import layers

pytestmark = pytest.mark.filterwarnings("ignore")

_FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_SHORT = settings(_FUZZ, max_examples=40)


def _small_model(name: str = "small") -> ktorch.Model:
    inputs = ktorch.Input((5, 3), name="sequence")
    x = layers.LSTM(4, name="lstm")(inputs)
    x = layers.Dense(6, activation="relu", name="dense")(x)
    x = layers.BatchNormalization(name="norm")(x)
    outputs = layers.Dense(2, name="head")(x)
    model = ktorch.Model(inputs, outputs, name=name)
    model.compile(optimizer="adam", loss="mse")
    return model


@dataclasses.dataclass(repr=False)
class _Env:
    """The saved files, the data, and the model `load_weights` loads into."""

    originals: dict[str, bytes]
    work: Path
    x: np.ndarray
    saved_config: dict
    saved_weights: list[np.ndarray]
    target: ktorch.Model
    target_state: dict[str, torch.Tensor]

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"_Env(work={self.work})"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> _Env:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 3)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    ktorch.utils.set_random_seed(1)
    model = _small_model()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    folder = tmp_path_factory.mktemp("fuzz_originals")
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    model.save_weights(folder / "model.weights.h5")
    model.save_weights(folder / "legacy.h5")
    model.save_weights(folder / "model.safetensors")
    originals = {path.name: path.read_bytes() for path in folder.iterdir()}
    ktorch.utils.set_random_seed(2)
    target = _small_model()
    # One step builds the optimizer, so that its state is part of what must stay unchanged.
    target.train_on_batch(x, y)
    return _Env(
        originals=originals,
        work=tmp_path_factory.mktemp("fuzz_work"),
        x=x,
        saved_config=model.get_config(),
        saved_weights=[w.copy() for w in model.get_weights()],
        target=target,
        target_state=_state(target),
    )


# ---------------------------------------------------------------------- checking


def _state(model) -> dict[str, torch.Tensor]:
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    optimizer = getattr(model, "optimizer", None)
    for index, variable in enumerate(getattr(optimizer, "variables", None) or []):
        state[f"optimizer/{index}"] = torch.as_tensor(variable).detach().clone()
    return state


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )


def _restore(model, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for key, value in model.state_dict(keep_vars=True).items():
            value.copy_(state[key])
    prefix = "optimizer/"
    optimizer_state = {
        k[len(prefix) :]: v.numpy() for k, v in state.items() if k.startswith(prefix)
    }
    # `optimizer.variables` are copies: the state goes back through the optimizer's loader.
    model.optimizer.load_own_variables(optimizer_state)


def _listing(env: _Env) -> tuple[list[str], list[str]]:
    return sorted(os.listdir(env.work.parent)), sorted(os.listdir(env.work))


def _holds_saved_weights(model, env: _Env) -> bool:
    weights = model.get_weights()
    return len(weights) == len(env.saved_weights) and all(
        np.shape(a) == np.shape(b) and np.array_equal(a, b)
        for a, b in zip(weights, env.saved_weights, strict=True)
    )


def _check_predicts(model, env: _Env) -> None:
    if model.get_config() != env.saved_config:
        # The file describes another model: loading it is what is tested, not what it computes.
        with contextlib.suppress(ValueError, TypeError, AttributeError, RuntimeError):
            model.predict(env.x, verbose=0)
        return
    predictions = model.predict(env.x, verbose=0)
    if _holds_saved_weights(model, env):
        assert np.all(np.isfinite(predictions)), "the saved model predicts non-finite values"


def _escaped(error: BaseException, loader: str) -> None:
    pytest.fail(f"{loader} let {type(error).__name__} escape: {error}")


def _load_model(path: Path, env: _Env) -> None:
    try:
        model = ktorch.saving.load_model(path)
    except (ValueError, OSError):
        return
    except Exception as error:
        _escaped(error, "load_model")
    _check_predicts(model, env)


def _load_weights(path: Path, env: _Env) -> None:
    _restore(env.target, env.target_state)
    try:
        env.target.load_weights(path)
    except (ValueError, OSError):
        assert _same_state(_state(env.target), env.target_state), (
            "a failed load_weights changed the model"
        )
        return
    except Exception as error:
        _escaped(error, "load_weights")
    _check_predicts(env.target, env)


def _feed(env: _Env, data: bytes, filename: str, model: bool = True) -> None:
    """Writes `data` as `filename` in the working folder and runs the loaders on it."""
    for entry in os.listdir(env.work):
        os.remove(env.work / entry)
    path = env.work / filename
    path.write_bytes(data)
    before = _listing(env)
    if model:
        _load_model(path, env)
    _load_weights(path, env)
    assert _listing(env) == before, "loading created or removed files"


# ------------------------------------------------------------------- byte damage

_KINDS = ("flip", "overwrite", "truncate", "append")


@st.composite
def _damage(draw, size: int) -> tuple:
    kind = draw(st.sampled_from(_KINDS))
    if kind == "flip":
        return kind, draw(st.integers(0, size - 1)), draw(st.integers(1, 255))
    if kind == "overwrite":
        return kind, draw(st.integers(0, size - 1)), draw(st.binary(min_size=1, max_size=64))
    if kind == "truncate":
        return kind, draw(st.integers(0, size - 1))
    return kind, draw(st.binary(min_size=1, max_size=256))


def _apply(data: bytes, damage: tuple) -> bytes:
    kind = damage[0]
    if kind == "append":
        return data + damage[1]
    # An earlier cut may have made the data shorter than the drawn offset.
    offset = damage[1] % len(data)
    if kind == "flip":
        return data[:offset] + bytes([data[offset] ^ damage[2]]) + data[offset + 1 :]
    if kind == "overwrite":
        chunk = damage[2]
        return (data[:offset] + chunk + data[offset + len(chunk) :])[: len(data)]
    return data[:offset]


def _damaged(env: _Env, name: str, draw) -> bytes:
    data = env.originals[name]
    for damage in draw(st.lists(_damage(len(data)), min_size=1, max_size=3)):
        data = _apply(data, damage)
        if not data:
            break
    return data


# -------------------------------------------------------------------- JSON edits

_HUGE = st.sampled_from([2**40, 2**63, -(2**63), 10**30, 1e308, -1e308, -1, 0])
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 8),
    _HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "Dense",
            "LSTM",
            "Functional",
            "Sequential",
            "__lambda__",
            "__keras_tensor__",
            "function",
            "os.system",
            "builtins.eval",
            "float16",
            "int32",
            "relu",
            "keras.layers",
        ]
    ),
)
_JSON = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=6), children, max_size=3),
        st.fixed_dictionaries(
            {"class_name": children, "config": children},
            optional={"module": children, "registered_name": children},
        ),
    ),
    max_leaves=10,
)


def _paths(value, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _edit_json(document, draw):
    """`document` with one random edit of one value: deleted, replaced by random JSON, wrapped
    in nested garbage, repeated (in a list) or turned into its own JSON text."""
    paths = _paths(document)
    path = draw(st.sampled_from(paths))
    operation = draw(st.sampled_from(["delete", "replace", "wrap", "duplicate", "to_string"]))
    if not path:
        return draw(_JSON) if operation in ("delete", "replace") else [document]
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if operation == "delete":
        del parent[key]
    elif operation == "replace":
        parent[key] = draw(_JSON)
    elif operation == "wrap":
        depth = draw(st.integers(1, 40))
        value = parent[key]
        for _ in range(depth):
            value = draw(st.sampled_from([[value], {"config": value}, {"class_name": value}]))
        parent[key] = value
    elif operation == "duplicate" and isinstance(parent, list):
        parent.insert(key, json.loads(json.dumps(parent[key])))
    else:
        parent[key] = json.dumps(parent[key])
    return document


# ---------------------------------------------------------------------- zip edits


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of some edits
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, payload in members:
                archive.writestr(name, payload)
    return buffer.getvalue()


_MEMBER_NAMES = st.one_of(
    st.sampled_from(
        [
            "config.json",
            "metadata.json",
            "model.weights.h5",
            "model.weights.npz",
            "assets/",
            "assets/layers/lstm/vocab.txt",
            "Config.json",
            "config.json/",
            "model.weights.h5/x",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12),
)


def _edit_members(members: list[tuple[str, bytes]], draw) -> list[tuple[str, bytes]]:
    operation = draw(st.sampled_from(["rename", "delete", "duplicate", "add", "swap", "empty"]))
    index = draw(st.integers(0, len(members) - 1))
    name, payload = members[index]
    if operation == "rename":
        members[index] = (draw(_MEMBER_NAMES), payload)
    elif operation == "delete":
        del members[index]
    elif operation == "duplicate":
        other = draw(st.sampled_from([payload, b"", b"{}", members[0][1]]))
        members.insert(draw(st.integers(0, len(members))), (name, other))
    elif operation == "add":
        members.append((draw(_MEMBER_NAMES), draw(st.binary(max_size=64))))
    elif operation == "swap":
        other = draw(st.integers(0, len(members) - 1))
        members[index] = (name, members[other][1])
    else:
        members[index] = (name, b"")
    return members


# ---------------------------------------------------------------------- HDF5 edits

_ATTRIBUTE_NAMES = (
    "name",
    "dtype",
    "layer_names",
    "weight_names",
    "layer_names0",
    "model_config",
    "training_config",
    "keras_version",
    "backend",
)


def _h5_objects(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return names


def _numpy_value(draw, shape: tuple) -> np.ndarray:
    dtype = draw(
        st.sampled_from(
            ["float32", "float64", "float16", "int64", "uint8", "bool", "complex64", "S4", "V2"]
        )
    )
    if dtype == "S4":
        return np.full(shape, b"ab", dtype="S4")
    if dtype == "V2":
        return np.zeros(shape, dtype="int16").view("V2")
    return np.ones(shape, dtype=dtype)


def _attribute_value(draw):
    kind = draw(st.sampled_from(["int", "float", "text", "json", "names", "array", "big", "empty"]))
    if kind == "int":
        return draw(st.sampled_from([2**40, 2**62, -(2**63), -1, 0]))  # int64 in HDF5
    if kind == "float":
        return draw(st.floats(allow_nan=True))
    if kind == "text":
        # HDF5 strings are UTF-8 without NUL.
        return draw(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20))
    if kind == "json":
        return json.dumps(draw(_JSON))
    if kind == "names":
        names = st.sampled_from([*_ATTRIBUTE_NAMES, "lstm", "dense", "norm", "head"])
        return np.asarray([n.encode() for n in draw(st.lists(names, max_size=6))], dtype="S")
    if kind == "array":
        return np.arange(draw(st.integers(0, 50)), dtype="int64")
    if kind == "big":
        return np.zeros((draw(st.sampled_from([1000, 16000])),), dtype="float32")
    return np.zeros((0,), dtype="float32")


def _edit_h5(f: h5py.File, draw, json_attributes: tuple[str, ...] = ()) -> None:
    """One random edit of an open HDF5 file."""
    names = _h5_objects(f)
    datasets = [n for n in names if isinstance(f[n], h5py.Dataset)]
    operations = ["reshape", "dtype", "scalar", "huge", "delete", "swap_kind", "attribute"]
    operations += ["link", "hardlink", "rename"] + ["json"] * bool(json_attributes)
    operation = draw(st.sampled_from(operations))
    if operation in ("reshape", "dtype", "scalar", "huge") and datasets:
        name = draw(st.sampled_from(datasets))
        shape = f[name].shape
        del f[name]
        if operation == "reshape":
            new_shape = tuple(draw(st.lists(st.integers(0, 6), max_size=3)))
            f.create_dataset(name, data=np.ones(new_shape, dtype="float32"))
        elif operation == "dtype":
            f.create_dataset(name, data=_numpy_value(draw, shape))
        elif operation == "scalar":
            f.create_dataset(name, data=draw(st.sampled_from([1.5, b"text", 7, True])))
        else:
            huge = draw(st.sampled_from([(2**40,), (10**9, 10**6), (*shape[:-1], 2**50)]))
            chunks = tuple(1 for _ in huge)
            f.create_dataset(name, shape=huge, dtype="float32", chunks=chunks)
    elif operation == "delete" and names:
        del f[draw(st.sampled_from(names))]
    elif operation == "swap_kind" and names:
        name = draw(st.sampled_from(names))
        was_group = isinstance(f[name], h5py.Group)
        del f[name]
        if was_group:
            f.create_dataset(name, data=np.ones((2,), dtype="float32"))
        else:
            f.create_group(name)
    elif operation == "attribute":
        holder = f[draw(st.sampled_from(["/", *names]))]
        attribute = draw(st.sampled_from(sorted({*_ATTRIBUTE_NAMES, *holder.attrs})))
        if attribute in holder.attrs and draw(st.booleans()):
            del holder.attrs[attribute]
        else:
            holder.attrs[attribute] = _attribute_value(draw)
    elif operation in ("link", "hardlink") and names:
        source = draw(st.sampled_from(names))
        target = draw(st.sampled_from(names))
        del f[target]
        if operation == "hardlink" and source in f:
            f[target] = f[source]
        elif draw(st.booleans()):
            f[target] = h5py.SoftLink(draw(st.sampled_from(["/" + source, "/nowhere"])))
        else:
            f[target] = h5py.ExternalLink("/nonexistent/other.h5", "/")
    elif operation == "rename" and names:
        name = draw(st.sampled_from(names))
        parent = name.rsplit("/", 1)[0] if "/" in name else ""
        new = draw(st.sampled_from(["0", "1", "vars", "layers", "lstm", "x", "optimizer"]))
        destination = f"{parent}/{new}" if parent else new
        if destination not in f:
            f.move(name, destination)
    elif operation == "json":
        attribute = draw(st.sampled_from(json_attributes))
        if attribute in f.attrs:
            document = json.loads(f.attrs[attribute])
            f.attrs[attribute] = json.dumps(_edit_json(document, draw))


def _edited_h5(env: _Env, data: bytes, edit: Callable[[h5py.File], None]) -> bytes:
    scratch = env.work / "scratch.h5"
    scratch.write_bytes(data)
    with h5py.File(scratch, "r+") as f:
        edit(f)
    edited = scratch.read_bytes()
    scratch.unlink()
    return edited


# --------------------------------------------------------------------- .keras zip


@pytest.mark.slow
@_FUZZ
@given(st.data())
def test_keras_zip_with_damaged_bytes(env, data):
    _feed(env, _damaged(env, "model.keras", data.draw), "case.keras")


@pytest.mark.slow
@_FUZZ
@given(st.data())
def test_keras_zip_with_edited_json_members(env, data):
    members = _members(env.originals["model.keras"])
    member = data.draw(st.sampled_from(["config.json", "metadata.json"]))
    index = [name for name, _ in members].index(member)
    document = _edit_json(json.loads(members[index][1]), data.draw)
    members[index] = (member, json.dumps(document).encode())
    _feed(env, _zip(members), "case.keras")


@_SHORT
@given(st.data())
def test_keras_zip_with_renamed_dropped_or_repeated_members(env, data):
    members = _edit_members(_members(env.originals["model.keras"]), data.draw)
    _feed(env, _zip(members), "case.keras")


@pytest.mark.slow
@_FUZZ
@given(st.data())
def test_keras_zip_with_edited_weights_member(env, data):
    members = _members(env.originals["model.keras"])
    index = [name for name, _ in members].index("model.weights.h5")
    weights = _edited_h5(env, members[index][1], lambda f: _edit_h5(f, data.draw))
    members[index] = ("model.weights.h5", weights)
    _feed(env, _zip(members), "case.keras")


# -------------------------------------------------------------------- .weights.h5


@_FUZZ
@given(st.data())
def test_weights_h5_with_damaged_bytes(env, data):
    _feed(env, _damaged(env, "model.weights.h5", data.draw), "case.weights.h5", model=False)


@_FUZZ
@given(st.data())
def test_weights_h5_with_edited_structure(env, data):
    edited = _edited_h5(env, env.originals["model.weights.h5"], lambda f: _edit_h5(f, data.draw))
    _feed(env, edited, "case.weights.h5", model=False)


# -------------------------------------------------------------------- legacy .h5


@pytest.mark.slow
@_FUZZ
@given(st.data())
def test_legacy_h5_model_with_damaged_bytes(env, data):
    _feed(env, _damaged(env, "model.h5", data.draw), "case.h5")


@pytest.mark.slow
@_FUZZ
@given(st.data())
def test_legacy_h5_model_with_edited_structure(env, data):
    def edit(f: h5py.File) -> None:
        _edit_h5(f, data.draw, json_attributes=("model_config", "training_config"))

    _feed(env, _edited_h5(env, env.originals["model.h5"], edit), "case.h5")


@_SHORT
@given(st.data())
def test_legacy_h5_weights_with_edited_structure(env, data):
    edited = _edited_h5(env, env.originals["legacy.h5"], lambda f: _edit_h5(f, data.draw))
    _feed(env, edited, "case.h5", model=False)


# -------------------------------------------------------------------- safetensors


def _header(data: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


@_FUZZ
@given(st.data())
def test_safetensors_with_damaged_bytes(env, data):
    _feed(env, _damaged(env, "model.safetensors", data.draw), "case.safetensors", model=False)


@_FUZZ
@given(st.data())
def test_safetensors_with_edited_header(env, data):
    header, body = _header(env.originals["model.safetensors"])
    metadata = header["__metadata__"]
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(["weight_order", "weight_layers"]))
        metadata[key] = json.dumps(_edit_json(json.loads(metadata[key]), data.draw))
    else:
        header = _edit_json(header, data.draw)
    text = json.dumps(header).encode()
    size = len(text) + data.draw(st.sampled_from([0, 0, 0, -1, 1, 2**40]))
    raw = max(size, 0).to_bytes(8, "little") + text + body
    _feed(env, raw, "case.safetensors", model=False)


def test_the_saved_files_load(env):
    """The undamaged files load the saved config and weights, which predict finite values."""
    for name in env.originals:
        _feed(env, env.originals[name], name, model=name in ("model.keras", "model.h5"))
        assert env.target.get_config() == env.saved_config
        assert _holds_saved_weights(env.target, env)
        assert os.listdir(env.work) == [name]
