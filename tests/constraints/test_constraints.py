"""Constraints: numeric parity with Keras 3, configs and name resolution."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ktorch import constraints

CASES = [
    ("MaxNorm", {}),
    ("MaxNorm", {"max_value": 0.5, "axis": 1}),
    ("MaxNorm", {"max_value": 1.5, "axis": [0, 1, 2]}),
    ("MinMaxNorm", {}),
    ("MinMaxNorm", {"min_value": 1.0, "max_value": 2.0, "rate": 0.5, "axis": 1}),
    ("MinMaxNorm", {"min_value": 0.5, "max_value": 3.0, "axis": [0, 1, 2]}),
    ("NonNeg", {}),
    ("UnitNorm", {}),
    ("UnitNorm", {"axis": 1}),
    ("UnitNorm", {"axis": [0, 1, 2]}),
]


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def _weights(kwargs) -> np.ndarray:
    axis = kwargs.get("axis", 0)
    shape = (3, 3, 4, 6) if isinstance(axis, list) else (8, 5)
    return (np.random.default_rng(0).standard_normal(shape) * 2).astype("float32")


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_matches_keras(keras, name, kwargs):
    w = _weights(kwargs)
    expected = getattr(keras.constraints, name)(**kwargs)(torch.from_numpy(w)).cpu().numpy()
    result = getattr(constraints, name)(**kwargs)(torch.from_numpy(w))
    assert result.shape == w.shape
    assert result.dtype == torch.float32
    np.testing.assert_allclose(result.numpy(), expected, atol=1e-5, rtol=1e-5)


def test_projections_hold():
    w = torch.randn(10, 4, dtype=torch.float64) * 5
    assert (constraints.MaxNorm(1.5)(w).norm(dim=0) <= 1.5 + 1e-6).all()
    torch.testing.assert_close(
        constraints.UnitNorm(axis=1)(w).norm(dim=1), torch.ones(10, dtype=torch.float64)
    )
    norms = constraints.MinMaxNorm(2.0, 3.0)(w).norm(dim=0)
    assert ((norms >= 2.0 - 1e-6) & (norms <= 3.0 + 1e-6)).all()
    assert (constraints.NonNeg()(w) >= 0).all()
    assert constraints.Constraint()(w) is w


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_config_matches_keras(keras, name, kwargs):
    ours = getattr(constraints, name)(**kwargs)
    theirs = getattr(keras.constraints, name)(**kwargs)
    assert ours.get_config() == theirs.get_config()
    serialized = constraints.serialize(ours)
    keras_serialized = keras.constraints.serialize(theirs)
    assert serialized["module"] == keras_serialized["module"] == "keras.constraints"
    assert serialized["class_name"] == keras_serialized["class_name"]
    assert serialized["config"] == keras_serialized["config"]
    assert constraints.deserialize(keras_serialized).get_config() == ours.get_config()
    assert keras.constraints.deserialize(serialized).get_config() == theirs.get_config()


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_config_round_trip(name, kwargs):
    constraint = getattr(constraints, name)(**kwargs)
    rebuilt = constraints.deserialize(constraints.serialize(constraint))
    assert type(rebuilt) is type(constraint)
    assert rebuilt.get_config() == constraint.get_config()
    w = torch.from_numpy(_weights(kwargs))
    torch.testing.assert_close(rebuilt(w), constraint(w))


def test_names_match_keras(keras):
    from keras.src import constraints as keras_constraints

    assert set(constraints.ALL_OBJECTS_DICT) == set(keras_constraints.ALL_OBJECTS_DICT)
    for key, cls in keras_constraints.ALL_OBJECTS_DICT.items():
        assert constraints.ALL_OBJECTS_DICT[key].__name__ == cls.__name__


def test_get():
    assert constraints.get(None) is None
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    assert isinstance(constraints.get("MaxNorm"), constraints.MaxNorm)
    assert isinstance(constraints.get(constraints.UnitNorm), constraints.UnitNorm)
    constraint = constraints.MaxNorm(3)
    assert constraints.get(constraint) is constraint
    config = {"class_name": "MinMaxNorm", "config": {"min_value": 0.1, "max_value": 2.0}}
    assert constraints.get(config).max_value == 2.0

    def fn(w):
        return w

    assert constraints.get(fn) is fn


def test_get_unknown_name_raises():
    with pytest.raises(ValueError, match="constraint.*not_a_constraint"):
        constraints.get("not_a_constraint")
    with pytest.raises(ValueError, match="constraint"):
        constraints.get(7)
