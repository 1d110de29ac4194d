"""Hostile files for every loader: escaping paths, links, bombs, code, and killed saves.

What `test_saving_lib`, `test_legacy_h5`, `test_safetensors_io` and `test_architecture`
already cover (`../` members, soft links in a `vars` group, Python tags in YAML, a failed save)
is not repeated here. Each test checks the error (a `ValueError` naming the problem), that no
code from the file ran (a marker file that the payload would create), and that nothing
appeared on disk.
"""

from __future__ import annotations

import base64
import contextlib
import json
import marshal
import os
import signal
import stat
import subprocess
import sys
import warnings
import zipfile

import h5py
import numpy as np
import pytest
import yaml

import ktorch
from ktorch import layers
from ktorch.models import model_from_json, model_from_yaml
from ktorch.saving.serialization_lib import MAX_CONFIG_DEPTH, check_config_depth

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras2")


def _model(name: str = "hostile") -> ktorch.Model:
    return ktorch.Sequential(
        [
            ktorch.Input((3,)),
            layers.Dense(4, name="first"),
            layers.BatchNormalization(name="norm"),
            layers.Dense(2, name="last"),
        ],
        name=name,
    )


def _weights(model) -> list[np.ndarray]:
    return [w.copy() for w in model.get_weights()]


def _assert_weights(model, expected) -> None:
    actual = model.get_weights()
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def _listing(folder) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
    )


@contextlib.contextmanager
def _deadline(seconds: int):
    """Fails the test (instead of hanging it) when the body runs longer than `seconds`."""

    def expire(*_):
        raise TimeoutError(f"the loader ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _members(path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def _write_zip(path, members) -> None:
    """Writes `(name or ZipInfo, data)` pairs; duplicate names are kept (they are the point)."""
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info, data in members:
            archive.writestr(info, data)


def _symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so that the mode bits below mean what they say
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _saved(tmp_path, suffix: str = ".keras") -> tuple[ktorch.Model, str]:
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))
    path = str(tmp_path / f"saved{suffix}")
    if suffix.endswith(".keras") or suffix == ".h5":
        model.save(path)
    else:
        model.save_weights(path)
    return model, path


# ----------------------------------------------------------------- .keras: members


_ESCAPING = ["..\\evil.txt", "C:/evil.txt", "a/../../x", "assets/./../x"]


@pytest.mark.parametrize(
    ("loader", "member"),
    [
        *(("load_model", member) for member in _ESCAPING),
        # `load_model` with `../` and absolute names is covered by test_saving_lib.
        *(("load_weights", m) for m in [*_ESCAPING, "../evil.txt", "/tmp/ktorch-hostile.txt"]),
    ],
)
def test_keras_members_outside_the_archive_are_refused(loader, member, tmp_path):
    _, good = _saved(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    hostile = work / "hostile.keras"
    _write_zip(hostile, [*_members(good), (member, b"pwned")])
    before = _listing(tmp_path)
    target = _model()
    kept = _weights(target)
    with pytest.raises(ValueError, match="not a safe relative path"):
        if loader == "load_model":
            ktorch.saving.load_model(hostile)
        else:
            target.load_weights(hostile)
    _assert_weights(target, kept)
    assert _listing(tmp_path) == before
    assert not os.path.exists("/tmp/ktorch-hostile.txt")


def test_keras_symlink_member_is_not_followed(tmp_path):
    """A symlink entry is its target's name as data, never the file it names."""
    model, good = _saved(tmp_path)
    _, elsewhere = _saved(tmp_path, ".weights.h5")
    members = [(i, d) for i, d in _members(good) if i.filename != "model.weights.h5"]
    hostile = tmp_path / "link.keras"
    _write_zip(hostile, [*members, _symlink_entry("model.weights.h5", elsewhere)])
    with pytest.raises(ValueError, match="model.weights.h5.*not a valid HDF5"):
        ktorch.saving.load_model(hostile)
    target = _model()
    with pytest.raises(ValueError, match="not a valid HDF5"):
        target.load_weights(hostile)


class _Vocabulary(layers.Layer):
    """A layer with an asset file, to see what a symlink entry in `assets/` becomes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.text = "original vocabulary"

    def call(self, x):
        return x

    def save_assets(self, dirpath):
        with open(os.path.join(dirpath, "vocab.txt"), "w") as f:
            f.write(self.text)

    def load_assets(self, dirpath):
        path = os.path.join(dirpath, "vocab.txt")
        self.was_link = os.path.islink(path)
        with open(path) as f:
            self.text = f.read()


def test_keras_symlink_asset_is_copied_as_its_target_name(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private data")
    model = ktorch.Sequential([ktorch.Input((2,)), _Vocabulary(name="vocab")])
    model.save(tmp_path / "vocab.keras")
    members = _members(tmp_path / "vocab.keras")
    [asset] = [i.filename for i, _ in members if i.filename.startswith("assets/")]
    members = [(i, d) for i, d in members if i.filename != asset]
    _write_zip(tmp_path / "link.keras", [*members, _symlink_entry(asset, str(secret))])
    loaded = ktorch.saving.load_model(
        tmp_path / "link.keras", custom_objects={"_Vocabulary": _Vocabulary}
    )
    vocab = loaded.layers[0]
    assert not vocab.was_link
    assert vocab.text == str(secret)


def test_keras_archive_with_thousands_of_members(tmp_path):
    model, good = _saved(tmp_path)
    members = _members(good)
    _write_zip(
        tmp_path / "many.keras", [*members, *((f"junk/{i}.bin", b"x" * 16) for i in range(5000))]
    )
    before = _listing(tmp_path)
    with _deadline(120):
        loaded = ktorch.saving.load_model(tmp_path / "many.keras")
    _assert_weights(loaded, model.get_weights())
    config = next(d for i, d in members if i.filename == "config.json")
    _write_zip(tmp_path / "repeated.keras", [*members, *(("config.json", config),) * 5000])
    with _deadline(120), pytest.raises(ValueError, match=r"\['config.json'\] appear more than"):
        ktorch.saving.load_model(tmp_path / "repeated.keras")
    assert _listing(tmp_path) == sorted([*before, "repeated.keras"])


def test_keras_thousands_of_assets_leave_nothing_behind(tmp_path, monkeypatch):
    import tempfile

    model = ktorch.Sequential([ktorch.Input((2,)), _Vocabulary(name="vocab")])
    model.save(tmp_path / "vocab.keras")
    members = _members(tmp_path / "vocab.keras")
    assets = [(f"assets/layers/vocabulary/extra/{i}.txt", b"w") for i in range(3000)]
    _write_zip(tmp_path / "assets.keras", [*members, *assets])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with _deadline(120):
        loaded = ktorch.saving.load_model(
            tmp_path / "assets.keras", custom_objects={"_Vocabulary": _Vocabulary}
        )
    assert loaded.layers[0].text == "original vocabulary"
    assert os.listdir(scratch) == []


# ------------------------------------------------------------ HDF5: links and payloads


def _edit(path, edit) -> None:
    # The latest format keeps attributes past 64 KiB in dense storage.
    with h5py.File(path, "r+", libver="latest") as f:
        edit(f)


def _rewritten_in_latest_format(source, target) -> None:
    """Rebuilds `source` as `target` with every object header in the latest format, so that
    any object can hold attributes larger than 64 KiB."""

    def rebuild(old, new) -> None:
        for key, value in old.attrs.items():
            new.attrs[key] = value
        if isinstance(old, h5py.Dataset):
            return
        for name, item in old.items():
            if isinstance(item, h5py.Group):
                rebuild(item, new.create_group(name))
            else:
                rebuild(item, new.create_dataset(name, data=item[()]))

    with h5py.File(source, "r") as old, h5py.File(target, "w", libver="latest") as new:
        rebuild(old, new)


def test_weights_h5_links_out_of_the_file_are_refused(tmp_path):
    """An external link at the top (soft links in `vars` are covered by test_saving_lib) and a
    hard-link cycle, which must not send the reader around forever."""
    _, path = _saved(tmp_path, ".weights.h5")
    other = _model("other")
    other.save_weights(tmp_path / "other.weights.h5")
    cases = {
        "external.weights.h5": lambda f: (
            f.__delitem__("layers"),
            f.__setitem__("layers", h5py.ExternalLink(str(tmp_path / "other.weights.h5"), "/")),
        ),
        "cycle.weights.h5": lambda f: f.__setitem__("layers/dense/loop", f["layers"]),
    }
    for name, edit in cases.items():
        hostile = tmp_path / name
        hostile.write_bytes(open(path, "rb").read())
        _edit(hostile, edit)
        target = _model()
        kept = _weights(target)
        with _deadline(60), pytest.raises(ValueError, match="Link|nest deeper"):
            target.load_weights(hostile)
        _assert_weights(target, kept)


def _external_storage(f, path: str, source) -> None:
    """Replaces dataset `path` by one whose bytes live in the file `source`."""
    shape, dtype = f[path].shape, f[path].dtype
    del f[path]
    f.create_dataset(
        path, shape=shape, dtype=dtype, external=[(str(source), 0, h5py.h5f.UNLIMITED)]
    )


def _virtual(f, path: str, source) -> None:
    """Replaces dataset `path` by a virtual dataset mapping dataset `k` of the file `source`."""
    shape, dtype = f[path].shape, f[path].dtype
    del f[path]
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[...] = h5py.VirtualSource(str(source), "k", shape=shape)
    f.create_virtual_dataset(path, layout)


@pytest.mark.parametrize("kind", ["external", "virtual"])
@pytest.mark.parametrize("layout", ["keras3", "legacy"])
def test_datasets_stored_in_other_files_are_refused(kind, layout, tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["k"] = np.full((3, 4), 42.0, "float32")
    raw = tmp_path / "secret.bin"
    raw.write_bytes(np.full((3, 4), 42.0, "float32").tobytes())
    suffix = ".weights.h5" if layout == "keras3" else ".h5"
    model = _model()
    path = tmp_path / f"w{suffix}"
    model.save_weights(path)
    kernel = "layers/dense/vars/0" if layout == "keras3" else "first/first/kernel"
    with h5py.File(path, "r+") as f:
        if kind == "external":
            _external_storage(f, kernel, raw)
        else:
            _virtual(f, kernel, secret)
    target = _model()
    kept = _weights(target)
    with pytest.raises(ValueError, match=f"{kind}"):
        target.load_weights(path)
    _assert_weights(target, kept)


def test_legacy_h5_links_are_refused_by_both_loaders(tmp_path):
    _, path = _saved(tmp_path, ".h5")
    other = tmp_path / "other.h5"
    _model("other").save(other)
    cases = {
        "soft_layer.h5": lambda f: (
            f["model_weights"].__delitem__("first"),
            f["model_weights"].__setitem__("first", h5py.SoftLink("/model_weights/last")),
        ),
        "external_weights.h5": lambda f: (
            f.__delitem__("model_weights"),
            f.__setitem__("model_weights", h5py.ExternalLink(str(other), "/model_weights")),
        ),
        "external_optimizer.h5": lambda f: (
            f.__delitem__("optimizer_weights"),
            f.__setitem__("optimizer_weights", h5py.ExternalLink(str(other), "/")),
        ),
    }
    for name, edit in cases.items():
        hostile = tmp_path / name
        hostile.write_bytes(open(path, "rb").read())
        _edit(hostile, edit)
        with pytest.raises(ValueError, match="Link"):
            ktorch.saving.load_model(hostile)
        if name != "external_optimizer.h5":
            target = _model()
            kept = _weights(target)
            with pytest.raises(ValueError, match="Link"):
                target.load_weights(hostile)
            _assert_weights(target, kept)


def test_huge_attribute_payloads(tmp_path):
    """Attributes in HDF5's dense storage, far past the 64 KiB object header: 200,000 layer or
    weight names nobody has, a 16 MiB layer name, a model config padded to 16 MiB."""
    model, path = _saved(tmp_path, ".weights.h5")
    _edit(path, lambda f: f["layers/dense/vars"].attrs.__setitem__("name", "n" * (1 << 24)))
    target = _model()
    target.load_weights(path)
    _assert_weights(target, model.get_weights())

    model, saved = _saved(tmp_path, ".h5")
    legacy = tmp_path / "latest.h5"
    _rewritten_in_latest_format(saved, legacy)
    names = np.asarray([f"layer_{i}".encode() for i in range(200_000)])
    for attribute, holder in (
        ("layer_names", "model_weights"),
        ("weight_names", "model_weights/first"),
    ):
        hostile = tmp_path / f"{attribute}.h5"
        hostile.write_bytes(legacy.read_bytes())
        _edit(hostile, lambda f, a=attribute, h=holder: f[h].attrs.__setitem__(a, names))
        target = _model()
        kept = _weights(target)
        with _deadline(60), pytest.raises(ValueError, match="missing|mismatch"):
            target.load_weights(hostile)
        _assert_weights(target, kept)
        with _deadline(60), pytest.raises(ValueError, match="missing|does not have"):
            ktorch.saving.load_model(hostile)

    def pad(f):
        config = json.loads(f.attrs["model_config"])
        config["padding"] = "x" * (1 << 24)
        f.attrs["model_config"] = json.dumps(config)

    _edit(legacy, pad)
    with _deadline(60):
        loaded = ktorch.saving.load_model(legacy)
    _assert_weights(loaded, model.get_weights())


# --------------------------------------------------------------------- code in configs


def _bytecode(marker) -> str:
    """Base64 marshal of a one-argument function that creates `marker`, as Keras stores it."""
    function = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # noqa: S307
    return base64.b64encode(marshal.dumps(function.__code__)).decode("ascii")


@ktorch.saving.register_keras_serializable(package="hostile_test")
def _identity(x):
    return x


def _lambda_model():
    inputs = ktorch.Input((3,), name="x")
    outputs = layers.Lambda(_identity, name="payload")(layers.Dense(3, name="dense")(inputs))
    return ktorch.Model(inputs, outputs, name="with_lambda")


def _with_bytecode(config: dict, function) -> dict:
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Lambda":
            layer["config"]["function"] = function
    return config


def test_lambda_bytecode_in_legacy_h5_is_refused_unless_safe_mode_is_off(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "lambda.h5"
    _lambda_model().save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        # Keras 2's layout: (code, defaults, closure) with the function type beside it.
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                layer["config"]["function"] = [_bytecode(marker), None, None]
                layer["config"]["function_type"] = "lambda"
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="safe mode"):
        ktorch.saving.load_model(path)
    with h5py.File(path, "r") as f:
        text = f.attrs["model_config"]
    with pytest.raises(ValueError, match="Lambda function"):
        model_from_json(text)
    assert not marker.exists()
    # The payload is live: only safe_mode stood between the file and running it.
    model = ktorch.saving.load_model(path, safe_mode=False)
    model.predict(np.ones((1, 3), "float32"), verbose=0)
    assert marker.exists()


def _keras3_lambda(marker) -> dict:
    return {
        "module": "builtins",
        "class_name": "__lambda__",
        "config": {"code": _bytecode(marker), "defaults": None, "closure": None},
        "registered_name": None,
    }


def test_lambda_bytecode_in_json_yaml_and_keras_is_refused(tmp_path):
    marker = tmp_path / "ran"
    config = _with_bytecode(json.loads(_lambda_model().to_json()), _keras3_lambda(marker))
    with pytest.raises(ValueError, match="__lambda__"):
        model_from_json(json.dumps(config))
    with pytest.raises(ValueError, match="__lambda__"):
        model_from_yaml(yaml.safe_dump(config))
    _lambda_model().save(tmp_path / "lambda.keras")
    members = _members(tmp_path / "lambda.keras")
    _write_zip(
        tmp_path / "hostile.keras",
        [
            (i, json.dumps(config).encode() if i.filename == "config.json" else d)
            for i, d in members
        ],
    )
    with pytest.raises(ValueError, match="safe_mode"):
        ktorch.saving.load_model(tmp_path / "hostile.keras")
    assert not marker.exists()


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:builtins.eval",
        "!!python/module:os",
        "!!python/object:ktorch.layers.Dense {{units: 2}}",
    ],
)
def test_yaml_python_tags_anywhere_are_refused(tag, tmp_path):
    marker = tmp_path / "ran"
    text = _model().to_yaml().replace("units: 4", f"units: {tag.format(marker=marker)}", 1)
    assert "!!python" in text
    with pytest.raises(ValueError, match="Refusing"):
        model_from_yaml(text)
    assert not marker.exists()


def test_yaml_alias_bomb_and_self_reference_are_refused(tmp_path):
    functional_inputs = ktorch.Input((3,))
    model = ktorch.Model(functional_inputs, layers.Dense(2)(functional_inputs))
    text = model.to_yaml()
    assert "kwargs: {}" in text
    bomb = "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(10)
    )
    with _deadline(60), pytest.raises(ValueError, match="alias bomb"):
        model_from_yaml(bomb + text.replace("kwargs: {}", "kwargs: {junk: *l9}", 1))
    with _deadline(60), pytest.raises(ValueError, match="contain itself"):
        model_from_yaml(text.replace("kwargs: {}", "kwargs: {junk: &r [*r]}", 1))


# --------------------------------------------------------------- deep and foreign configs


def _nested_list(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_json_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="Invalid model JSON"):
        model_from_json("[" * 100_000 + "]" * 100_000)
    inputs = ktorch.Input((3,))
    config = json.loads(ktorch.Model(inputs, layers.Dense(2, name="out")(inputs)).to_json())
    for layer in config["config"]["layers"]:
        for node in layer["inbound_nodes"]:
            node["kwargs"] = {"junk": _nested_list(900)}
    text = json.dumps(config)
    with pytest.raises(ValueError, match="nested more than"):
        model_from_json(text)
    model, good = _saved(tmp_path)
    members = _members(good)
    for name, payload in (("deep", "[" * 100_000 + "]" * 100_000), ("graph", text)):
        _write_zip(
            tmp_path / f"{name}.keras",
            [(i, payload.encode() if i.filename == "config.json" else d) for i, d in members],
        )
        with pytest.raises(ValueError, match="config.json"):
            ktorch.saving.load_model(tmp_path / f"{name}.keras")
    with pytest.raises(ValueError, match="`config.json` is nested more than"):
        ktorch.saving.load_model(tmp_path / "graph.keras")
    _, legacy = _saved(tmp_path, ".h5")
    _edit(legacy, lambda f: f.attrs.__setitem__("model_config", "[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match="recursion"):
        ktorch.saving.load_model(legacy)
    _edit(legacy, lambda f: f.attrs.__setitem__("model_config", text))
    with pytest.raises(ValueError, match="'model_config' is nested more than"):
        ktorch.saving.load_model(legacy)


def test_config_depth_limit_is_exact():
    check_config_depth(_nested_list(MAX_CONFIG_DEPTH - 1), "config")
    check_config_depth({"a": _nested_list(MAX_CONFIG_DEPTH - 2)}, "config")
    with pytest.raises(ValueError, match=f"config is nested more than {MAX_CONFIG_DEPTH}"):
        check_config_depth(_nested_list(MAX_CONFIG_DEPTH), "config")
    with pytest.raises(ValueError, match="nested more than"):
        check_config_depth({"a": [{"b": _nested_list(MAX_CONFIG_DEPTH)}]}, "config")


_PROBE_MODULE = "ktorch_hostile_probe"


@pytest.fixture
def sentinels(tmp_path, monkeypatch):
    """Importable or callable things a hostile config names; each leaves a trace if reached."""
    import builtins
    import subprocess as subprocess_module

    calls = []
    marker = tmp_path / "imported"
    (tmp_path / f"{_PROBE_MODULE}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\nclass Boom:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append(("os.system", a, k)))
    monkeypatch.setattr(subprocess_module, "Popen", lambda *a, **k: calls.append(("Popen", a, k)))
    original_eval = builtins.eval

    def watched_eval(*args, **kwargs):
        # Libraries evaluate their own source strings (namedtuple, torch): those pass through.
        if len(args) == 1 and not kwargs and isinstance(args[0], str) and _TOKEN not in args[0]:
            caller = sys._getframe(1)
            return original_eval(args[0], caller.f_globals, caller.f_locals)
        if args and isinstance(args[0], str) and _TOKEN not in args[0] and not kwargs:
            return original_eval(*args)
        calls.append(("eval", args, kwargs))
        return None

    monkeypatch.setattr(builtins, "eval", watched_eval)
    yield calls
    assert calls == []
    assert not marker.exists()
    assert _PROBE_MODULE not in sys.modules


_TOKEN = "ktorch-hostile-token"
_FOREIGN = [
    {
        "module": "os",
        "class_name": "system",
        "config": {"command": _TOKEN},
        "registered_name": None,
    },
    {
        "module": "builtins",
        "class_name": "eval",
        "config": {"source": _TOKEN},
        "registered_name": "builtins.eval",
    },
    {
        "module": "subprocess",
        "class_name": "Popen",
        "config": {"args": [_TOKEN]},
        "registered_name": "subprocess.Popen",
    },
    {"module": _PROBE_MODULE, "class_name": "Boom", "config": {}, "registered_name": "Boom"},
    {"module": "os", "class_name": "function", "config": "system", "registered_name": "system"},
]


def _placements(foreign: dict) -> dict[str, dict]:
    """Model configs with `foreign` as the model, as a layer, and as a Dense's activation."""
    base = json.loads(_model().to_json())
    as_layer = json.loads(json.dumps(base))
    as_layer["config"]["layers"][1] = foreign
    as_activation = json.loads(json.dumps(base))
    as_activation["config"]["layers"][1]["config"]["activation"] = foreign
    return {"model": foreign, "layer": as_layer, "activation": as_activation}


@pytest.mark.parametrize("foreign", _FOREIGN, ids=lambda f: f"{f['module']}.{f['class_name']}")
def test_foreign_class_names_are_never_imported_or_called(foreign, sentinels, tmp_path):
    for where, config in _placements(foreign).items():
        with pytest.raises(ValueError, match="Unknown|Could not interpret"):
            model_from_json(json.dumps(config))
        with pytest.raises(ValueError, match="Unknown|Could not interpret"):
            model_from_yaml(yaml.safe_dump(config))
        model, good = _saved(tmp_path / where if os.path.isdir(tmp_path / where) else tmp_path)
        members = _members(good)
        _write_zip(
            tmp_path / f"{where}.keras",
            [
                (i, json.dumps(config).encode() if i.filename == "config.json" else d)
                for i, d in members
            ],
        )
        with pytest.raises(ValueError, match="Unknown|Could not interpret|config.json"):
            ktorch.saving.load_model(tmp_path / f"{where}.keras")
        _, legacy = _saved(tmp_path, ".h5")
        _edit(legacy, lambda f, c=config: f.attrs.__setitem__("model_config", json.dumps(c)))
        with pytest.raises(ValueError, match="Unknown|Could not interpret|Invalid"):
            ktorch.saving.load_model(legacy)


@pytest.mark.parametrize("foreign", _FOREIGN, ids=lambda f: f"{f['module']}.{f['class_name']}")
def test_foreign_compile_objects_are_never_imported_or_called(foreign, sentinels, tmp_path):
    model, good = _saved(tmp_path)
    members = _members(good)
    config = json.loads(next(d for i, d in members if i.filename == "config.json"))
    for key in ("optimizer", "loss"):
        edited = json.loads(json.dumps(config))
        edited["compile_config"][key] = foreign
        _write_zip(
            tmp_path / f"{key}.keras",
            [
                (i, json.dumps(edited).encode() if i.filename == "config.json" else d)
                for i, d in members
            ],
        )
        with pytest.raises(ValueError, match="compile"):
            ktorch.saving.load_model(tmp_path / f"{key}.keras")
    _, legacy = _saved(tmp_path, ".h5")
    with h5py.File(legacy, "r+") as f:
        training = json.loads(f.attrs["training_config"])
        training["optimizer_config"] = foreign
        f.attrs["training_config"] = json.dumps(training)
    with pytest.raises(ValueError):
        ktorch.saving.load_model(legacy)


@pytest.mark.parametrize("name", [5, ["Dense"], {"class_name": "Dense"}, None])
def test_class_names_that_are_not_strings_are_a_value_error(name, tmp_path):
    _, good = _saved(tmp_path)
    members = _members(good)
    config = json.loads(next(d for i, d in members if i.filename == "config.json"))
    as_layer = json.loads(json.dumps(config))
    as_layer["config"]["layers"][1]["class_name"] = name
    as_optimizer = json.loads(json.dumps(config))
    as_optimizer["compile_config"]["optimizer"]["class_name"] = name
    for where, edited in (("layer", as_layer), ("optimizer", as_optimizer)):
        _write_zip(
            tmp_path / f"{where}.keras",
            [
                (i, json.dumps(edited).encode() if i.filename == "config.json" else d)
                for i, d in members
            ],
        )
        with pytest.raises(ValueError, match="config"):
            ktorch.saving.load_model(tmp_path / f"{where}.keras")
    with pytest.raises(ValueError, match="Invalid model JSON"):
        model_from_json(json.dumps(as_layer))
    _, legacy = _saved(tmp_path, ".h5")
    with h5py.File(legacy, "r+") as f:
        model_config = json.loads(f.attrs["model_config"])
        model_config["config"]["layers"][1]["class_name"] = name
        f.attrs["model_config"] = json.dumps(model_config)
    with pytest.raises(ValueError, match="layer config|model_config"):
        ktorch.saving.load_model(legacy)


# ------------------------------------------------------------------ hostile numbers


def test_keras2_nadam_iteration_count_cannot_hang_the_loader(tmp_path):
    path = tmp_path / "nadam.h5"
    path.write_bytes(open(os.path.join(FIXTURES, "mlp.h5"), "rb").read())
    with h5py.File(path, "r+") as f:
        group = f["optimizer_weights"]
        del group["iteration:0"]
        group["iteration:0"] = np.int64(10**18)
    with _deadline(60):
        model = ktorch.saving.load_model(path)
    assert model.optimizer.iterations == 10**18


# --------------------------------------------------------------------- killed saves

_KILLED_SAVE = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import numpy as np
import ktorch
from ktorch import layers
from ktorch.saving import legacy_h5, safetensors_io, saving_lib

calls = []


def kill_midway(original, after):
    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    return patched


def half_then_die(tensors, filename, metadata=None):
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    with open(filename, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


legacy_h5._write_subset = kill_midway(legacy_h5._write_subset, 1)
saving_lib._write_dataset = kill_midway(saving_lib._write_dataset, 2)
safetensors_io.save_file = half_then_die
model = ktorch.Sequential(
    [ktorch.Input((3,)), layers.Dense(4, name="first"), layers.BatchNormalization(name="norm"),
     layers.Dense(2, name="last")]
)
path = {path!r}
if path.endswith(".weights.h5") or path.endswith(".safetensors"):
    model.save_weights(path)
else:
    model.save(path)
"""


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".h5", ".weights.h5", ".safetensors"])
def test_save_killed_midway_keeps_the_previous_file(suffix, tmp_path):
    model = _model()
    path = str(tmp_path / f"model{suffix}")
    if suffix == ".h5":
        model.save(path)
    else:
        model.save_weights(path)
    previous = open(path, "rb").read()
    script = _KILLED_SAVE.format(repo=REPO, path=path)
    result = subprocess.run([sys.executable, "-c", script], timeout=300, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    # The killed writer left its temporary file (nothing could remove it), never the target.
    leftovers = [n for n in os.listdir(tmp_path) if n != os.path.basename(path)]
    assert all(n.startswith(f".model{suffix}.") and n.endswith(".tmp") for n in leftovers)
    assert leftovers, "the writer was killed before it started writing"
    assert open(path, "rb").read() == previous
    target = _model("target")
    if suffix == ".h5":
        target = ktorch.saving.load_model(path)
    else:
        target.load_weights(path)
    _assert_weights(target, model.get_weights())
