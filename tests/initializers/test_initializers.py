"""Initializers: shapes, dtypes, statistics, determinism, configs and parity with Keras 3."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from ktorch import config, initializers
from ktorch.initializers import compute_fans

CONV_SHAPE = (3, 3, 64, 128)  # Keras Conv2D kernel: (kh, kw, in, out)

# (class name, constructor arguments) covering every public initializer.
CONFIG_CASES = [
    ("Zeros", {}),
    ("Ones", {}),
    ("Constant", {"value": 3.5}),
    ("Identity", {"gain": 2.0}),
    ("RandomNormal", {"mean": 1.0, "stddev": 0.5, "seed": 3}),
    ("RandomUniform", {"minval": -2.0, "maxval": 1.0, "seed": 4}),
    ("TruncatedNormal", {"mean": 0.5, "stddev": 2.0, "seed": None}),
    (
        "VarianceScaling",
        {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": 5},
    ),
    ("VarianceScaling", {"input_axes": [1], "output_axes": [0]}),
    ("GlorotUniform", {"seed": 1}),
    ("GlorotNormal", {}),
    ("HeUniform", {"seed": 2}),
    ("HeNormal", {}),
    ("LecunUniform", {}),
    ("LecunNormal", {"seed": 7}),
    ("Orthogonal", {"gain": 0.5, "seed": 9}),
    ("STFT", {"side": "imag", "window": "hamming", "scaling": "spectrum", "periodic": True}),
]


# Keys ktorch keeps in a config where Keras 3 drops the argument (so it survives a round trip).
EXTRA_CONFIG_KEYS = {"Identity": {"gain"}}


def _keras_view(name: str, config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in EXTRA_CONFIG_KEYS.get(name, set())}


def _scale_cases():
    """(initializer, expected std of the samples, uniform limit or None, truncation bound)."""
    fan_in, fan_out = 3 * 3 * 64, 3 * 3 * 128
    fan_avg = (fan_in + fan_out) / 2
    cases = []
    for name, scale, n, dist in [
        ("GlorotUniform", 1.0, fan_avg, "uniform"),
        ("GlorotNormal", 1.0, fan_avg, "truncated_normal"),
        ("HeUniform", 2.0, fan_in, "uniform"),
        ("HeNormal", 2.0, fan_in, "truncated_normal"),
        ("LecunUniform", 1.0, fan_in, "uniform"),
        ("LecunNormal", 1.0, fan_in, "truncated_normal"),
    ]:
        cases.append((name, {}, scale, n, dist))
    cases.append(
        ("VarianceScaling", {"scale": 3.0, "mode": "fan_out"}, 3.0, fan_out, "truncated_normal")
    )
    cases.append(
        (
            "VarianceScaling",
            {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"},
            0.5,
            fan_avg,
            "untruncated_normal",
        )
    )
    return cases


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@pytest.mark.parametrize(("name", "kwargs"), CONFIG_CASES)
@pytest.mark.parametrize("dtype", [None, "float64", torch.float16, "bfloat16"])
def test_shape_dtype_device(name, kwargs, dtype):
    shape = (16, 1, 9) if name == "STFT" else (5, 7)
    init = getattr(initializers, name)(**kwargs)
    values = init(shape, dtype=dtype)
    expected_dtype = getattr(torch, config.floatx()) if dtype is None else dtype
    if isinstance(expected_dtype, str):
        expected_dtype = getattr(torch, expected_dtype)
    assert isinstance(values, torch.Tensor)
    assert tuple(values.shape) == shape
    assert values.dtype == expected_dtype
    assert values.device.type == "cpu"
    assert torch.isfinite(values.float()).all()


@pytest.mark.parametrize(("name", "kwargs", "scale", "n", "dist"), _scale_cases())
def test_variance_scaling_statistics(name, kwargs, scale, n, dist):
    torch.manual_seed(0)
    values = getattr(initializers, name)(**kwargs)(CONV_SHAPE).double()
    expected_std = math.sqrt(scale / n)
    std = values.std().item()
    assert abs(values.mean().item()) < 4 * expected_std / math.sqrt(values.numel())
    assert std == pytest.approx(expected_std, rel=0.02)
    if dist == "uniform":
        limit = math.sqrt(3.0 * scale / n)
        assert values.abs().max().item() <= limit
        assert values.abs().max().item() > 0.99 * limit
    elif dist == "truncated_normal":
        bound = 2 * expected_std / 0.87962566103423978
        assert values.abs().max().item() <= bound * (1 + 1e-6)
    else:
        assert values.abs().max().item() > 3 * expected_std


@pytest.mark.parametrize(("name", "kwargs", "scale", "n", "dist"), _scale_cases())
def test_keras_draws_the_same_distribution(keras, name, kwargs, scale, n, dist):
    ours = getattr(initializers, name)(seed=1, **kwargs)(CONV_SHAPE).double()
    theirs = torch.from_numpy(
        _numpy(getattr(keras.initializers, name)(seed=1, **kwargs)(CONV_SHAPE))
    ).double()
    assert ours.std().item() == pytest.approx(theirs.std().item(), rel=0.03)
    assert ours.abs().max().item() == pytest.approx(theirs.abs().max().item(), rel=0.1)


@pytest.mark.parametrize(
    ("name", "kwargs", "mean", "std"),
    [
        ("RandomNormal", {"mean": 1.0, "stddev": 0.5}, 1.0, 0.5),
        ("RandomUniform", {"minval": -1.0, "maxval": 3.0}, 1.0, 4 / math.sqrt(12)),
        ("TruncatedNormal", {"mean": -2.0, "stddev": 0.1}, -2.0, 0.1 * 0.87962566103423978),
    ],
)
def test_random_statistics(name, kwargs, mean, std):
    torch.manual_seed(1)
    values = getattr(initializers, name)(**kwargs)((200, 300)).double()
    assert values.mean().item() == pytest.approx(mean, abs=4 * std / math.sqrt(values.numel()))
    assert values.std().item() == pytest.approx(std, rel=0.02)
    if name == "RandomUniform":
        assert values.min().item() >= -1.0 and values.max().item() < 3.0
    if name == "TruncatedNormal":
        assert (values - mean).abs().max().item() <= 2 * 0.1 + 1e-6


@pytest.mark.parametrize(
    "shape", [(), (7,), (4, 9), (3, 5, 8), CONV_SHAPE, (2, 3, 4, 5, 6), (0, 3)]
)
def test_compute_fans_matches_keras(keras, shape):
    from keras.src.initializers.random_initializers import compute_fans as keras_compute_fans

    assert compute_fans(shape) == keras_compute_fans(shape)
    if len(shape) >= 3:
        axes = {"input_axes": [0, 1], "output_axes": [2]}
        assert compute_fans(shape, **axes) == keras_compute_fans(shape, **axes)


@pytest.mark.parametrize(
    "name", ["RandomNormal", "RandomUniform", "TruncatedNormal", "GlorotUniform", "Orthogonal"]
)
def test_determinism(name):
    cls = getattr(initializers, name)
    torch.manual_seed(123)
    first = cls()((6, 6))
    second = cls()((6, 6))
    torch.manual_seed(123)
    assert torch.equal(first, cls()((6, 6)))
    assert not torch.equal(first, second)

    state = torch.get_rng_state()
    seeded = cls(seed=5)
    assert torch.equal(seeded((6, 6)), seeded((6, 6)))
    assert torch.equal(seeded((6, 6)), cls(seed=5)((6, 6)))
    assert not torch.equal(seeded((6, 6)), cls(seed=6)((6, 6)))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 3, 4, 8), (2, 2, 8, 3)])
def test_orthogonal(shape):
    values = initializers.Orthogonal(gain=1.0, seed=0)(shape, dtype="float64")
    matrix = values.reshape(-1, shape[-1])
    rows, cols = matrix.shape
    if rows < cols:
        gram, size = matrix @ matrix.T, rows
    else:
        gram, size = matrix.T @ matrix, cols
    torch.testing.assert_close(gram, torch.eye(size, dtype=torch.float64), atol=1e-10, rtol=0)
    scaled = initializers.Orthogonal(gain=3.0, seed=0)(shape, dtype="float64")
    torch.testing.assert_close(scaled, 3.0 * values)


def test_orthogonal_rejects_vectors():
    with pytest.raises(ValueError, match="at least two-dimensional"):
        initializers.Orthogonal()((5,))


def test_identity_and_constants():
    torch.testing.assert_close(initializers.Identity(gain=2.0)((3, 5)), 2.0 * torch.eye(3, 5))
    with pytest.raises(ValueError, match="2D"):
        initializers.Identity()((3, 3, 3))
    assert torch.equal(initializers.Zeros()((2, 3)), torch.zeros(2, 3))
    assert torch.equal(
        initializers.Ones()((2, 3), dtype="int64"), torch.ones(2, 3, dtype=torch.long)
    )
    assert torch.equal(initializers.Constant(4)((2, 2)), torch.full((2, 2), 4.0))
    torch.testing.assert_close(
        initializers.Constant([1.0, 2.0, 3.0])((2, 3)), torch.tensor([[1.0, 2.0, 3.0]] * 2)
    )


def test_random_initializers_need_float_dtype():
    with pytest.raises(ValueError, match="floating point dtype"):
        initializers.RandomNormal()((2, 2), dtype="int32")


def test_invalid_arguments():
    with pytest.raises(ValueError, match="scale"):
        initializers.VarianceScaling(scale=0.0)
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan_sideways")
    with pytest.raises(ValueError, match="distribution"):
        initializers.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="seed"):
        initializers.RandomNormal(seed="abc")
    with pytest.raises(ValueError, match="dtype"):
        initializers.Zeros()((2,), dtype="not_a_dtype")


@pytest.mark.parametrize(("name", "kwargs"), CONFIG_CASES)
def test_config_matches_keras(keras, name, kwargs):
    ours = getattr(initializers, name)(**kwargs)
    theirs = getattr(keras.initializers, name)(**kwargs)
    assert _keras_view(name, ours.get_config()) == theirs.get_config()
    serialized = initializers.serialize(ours)
    keras_serialized = keras.initializers.serialize(theirs)
    assert serialized["module"] == keras_serialized["module"] == "keras.initializers"
    assert serialized["class_name"] == keras_serialized["class_name"]
    assert _keras_view(name, serialized["config"]) == keras_serialized["config"]
    rebuilt = initializers.deserialize(keras_serialized)
    assert type(rebuilt) is type(ours)
    assert _keras_view(name, rebuilt.get_config()) == theirs.get_config()
    loaded_in_keras = keras.initializers.deserialize(serialized)
    assert type(loaded_in_keras).__name__ == name


@pytest.mark.parametrize(("name", "kwargs"), CONFIG_CASES)
def test_config_round_trip(name, kwargs):
    init = getattr(initializers, name)(**kwargs)
    rebuilt = type(init).from_config(init.get_config())
    assert rebuilt.get_config() == init.get_config()
    again = initializers.deserialize(initializers.serialize(init))
    assert type(again) is type(init)
    assert again.get_config() == init.get_config()
    assert init.clone().get_config() == init.get_config()
    if kwargs.get("seed") is not None:
        shape = (16, 1, 9) if name == "STFT" else (4, 4)
        assert torch.equal(init(shape), again(shape))


def test_constant_array_value_round_trip():
    init = initializers.Constant(np.array([1.0, 2.0]))
    assert init.get_config() == {"value": [1.0, 2.0]}
    rebuilt = initializers.Constant.from_config(
        {"value": {"class_name": "__numpy__", "config": {"value": [1.0, 2.0], "dtype": "float32"}}}
    )
    torch.testing.assert_close(rebuilt((3, 2)), init((3, 2)))


def test_stft_matches_keras(keras):
    for kwargs in CONFIG_CASES[-1][1], {}, {"window": None}:
        expected = _numpy(keras.initializers.STFT(**kwargs)((32, 1, 17)))
        result = initializers.STFT(**kwargs)((32, 1, 17))
        np.testing.assert_allclose(result.numpy(), expected, atol=1e-5, rtol=1e-5)


def test_names_match_keras(keras):
    from keras.src import initializers as keras_initializers

    assert set(initializers.ALL_OBJECTS_DICT) == set(keras_initializers.ALL_OBJECTS_DICT)
    for key, cls in keras_initializers.ALL_OBJECTS_DICT.items():
        assert initializers.ALL_OBJECTS_DICT[key].__name__ == cls.__name__
        if key != "Initializer" and key != "initializer":
            assert type(initializers.get(key)).__name__ == cls.__name__


def test_get():
    assert initializers.get(None) is None
    assert isinstance(initializers.get("glorot_uniform"), initializers.GlorotUniform)
    assert isinstance(initializers.get("he_normal"), initializers.HeNormal)
    assert isinstance(initializers.get(initializers.Ones), initializers.Ones)
    init = initializers.HeUniform(seed=3)
    assert initializers.get(init) is init
    config = {"class_name": "RandomNormal", "config": {"mean": 2.0, "stddev": 1.0, "seed": 1}}
    assert initializers.get(config).get_config() == {"mean": 2.0, "stddev": 1.0, "seed": 1}

    def fn(shape, dtype=None):
        return torch.zeros(shape)

    assert initializers.get(fn) is fn
    tensor_init = initializers.get(torch.arange(6.0).reshape(2, 3))
    torch.testing.assert_close(
        tensor_init((2, 3), dtype="float64"), torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    )
    with pytest.raises(ValueError, match="shape"):
        tensor_init((3, 2))


def test_get_unknown_name_raises():
    with pytest.raises(ValueError, match="initializer.*not_an_initializer"):
        initializers.get("not_an_initializer")
    with pytest.raises(ValueError, match="initializer"):
        initializers.get(3.5)
