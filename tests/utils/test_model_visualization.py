"""`plot_model` / `model_to_dot`."""

from __future__ import annotations

import re
import shutil

import pytest

import ktorch as keras
from ktorch.utils import model_to_dot, plot_model


def _edges(source: str) -> set[tuple[str, str]]:
    return set(re.findall(r'"([^"]+)" -> "([^"]+)"', source))


def _functional():
    inputs = keras.Input((8,), name="x")
    a = keras.layers.Dense(4, activation="relu", name="a")(inputs)
    b = keras.layers.Dense(4, name="b")(inputs)
    merged = keras.layers.Concatenate(name="merge")([a, b])
    outputs = keras.layers.Dense(2, name="out")(merged)
    return keras.Model(inputs, outputs, name="branches")


def test_functional_graph_edges_and_labels():
    source = model_to_dot(_functional(), show_shapes=True, show_layer_activations=True)
    assert source.startswith("digraph G {")
    assert _edges(source) == {
        ("x", "a"),
        ("x", "b"),
        ("a", "merge"),
        ("b", "merge"),
        ("merge", "out"),
    }
    assert "a (Dense)" in source
    assert "activation: relu" in source
    assert "output: (None, 8)" in source  # the Concatenate's output


def test_sequential_chain_and_nested_expansion():
    inner = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3, name="i1"), keras.layers.Dense(3, name="i2")],
        name="inner",
    )
    outer_in = keras.Input((3,), name="inp")
    outer = keras.Model(outer_in, keras.layers.Dense(1, name="head")(inner(outer_in)))
    flat = model_to_dot(outer)
    assert _edges(flat) == {("inp", "inner"), ("inner", "head")}
    nested = model_to_dot(outer, expand_nested=True)
    assert 'subgraph "cluster_inner"' in nested
    assert ("inner/i1", "inner/i2") in _edges(nested)
    assert ("inp", "inner/i1") in _edges(nested)
    assert ("inner/i2", "head") in _edges(nested)


def test_unbuilt_and_bad_arguments():
    with pytest.raises(ValueError, match="not yet been built"):
        model_to_dot(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="rankdir"):
        model_to_dot(_functional(), rankdir="XY")


def test_plot_model_writes_dot_and_renders_or_explains(tmp_path, monkeypatch):
    model = _functional()
    plot_model(model, to_file=tmp_path / "m.dot", rankdir="LR")
    assert "rankdir=LR" in (tmp_path / "m.dot").read_text()
    with pytest.raises(ValueError, match="Unsupported image format"):
        plot_model(model, to_file=tmp_path / "m.bmp2")
    if shutil.which("dot"):
        plot_model(model, to_file=tmp_path / "m.png", show_shapes=True)
        assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ImportError, match="Graphviz"):
        plot_model(model, to_file=tmp_path / "n.png")
    assert not (tmp_path / "n.png").exists()


def test_nested_functional_enters_at_its_input_layer():
    inner_in = keras.Input((3,), name="inner_x")
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="d")(inner_in), name="sub")
    outer_in = keras.Input((3,), name="outer_x")
    outer = keras.Model(outer_in, inner(outer_in))
    edges = _edges(model_to_dot(outer, expand_nested=True))
    assert edges == {("outer_x", "sub/inner_x"), ("sub/inner_x", "sub/d")}
