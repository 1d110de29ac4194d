"""MaxPooling1D/2D/3D and AveragePooling1D/2D/3D: TensorFlow's "same" rule, Keras parity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module, to_numpy

RNG = np.random.default_rng(0)


def _same_pads(size, pool, stride):
    out = (size - 1) // stride + 1
    total = max(0, (out - 1) * stride + pool - size)
    return out, total // 2, total - total // 2


def numpy_pool(x, pool_size, strides, padding, mode):
    """Reference pooling of a channels_last array: windows over real cells only."""
    spatial = x.shape[1:-1]
    outs, lefts = [], []
    for n, k, s in zip(spatial, pool_size, strides, strict=True):
        if padding == "valid":
            outs.append((n - k) // s + 1)
            lefts.append(0)
        else:
            out, left, _ = _same_pads(n, k, s)
            outs.append(out)
            lefts.append(left)
    y = np.zeros((x.shape[0], *outs, x.shape[-1]), x.dtype)
    for index in itertools.product(*(range(o) for o in outs)):
        window = tuple(
            slice(max(0, i * s - left), min(n, i * s - left + k))
            for i, s, left, n, k in zip(index, strides, lefts, spatial, pool_size, strict=True)
        )
        cells = x[(slice(None), *window, slice(None))].reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None), *index, slice(None))] = cells.max(1) if mode == "max" else cells.mean(1)
    return y


def _symmetric(spatial, pool_size, strides, padding):
    if padding == "valid":
        return True
    return all(
        _same_pads(n, k, s)[1] == _same_pads(n, k, s)[2]
        for n, k, s in zip(spatial, pool_size, strides, strict=True)
    )


# (pool_size, strides): default strides, overlapping, even windows with unit strides (the
# asymmetric "same" case), strides larger than the window.
WINDOWS = [(2, None), (3, 1), (2, 1), (3, 2), (4, 3), (2, 3)]
SIZES = {1: [(7,), (8,)], 2: [(7, 8), (6, 5)], 3: [(5, 6, 4)]}
CASES = [
    (rank, mode, padding, pool, strides, spatial)
    for rank in (1, 2, 3)
    for mode in ("max", "average")
    for padding in ("valid", "same")
    for pool, strides in WINDOWS
    for spatial in SIZES[rank]
]


def _layer_name(mode, rank):
    return f"{'Max' if mode == 'max' else 'Average'}Pooling{rank}D"


@pytest.mark.parametrize("rank,mode,padding,pool,strides,spatial", CASES)
def test_matches_numpy_reference(rank, mode, padding, pool, strides, spatial):
    x = RNG.standard_normal((2, *spatial, 3)).astype("float32")
    layer = getattr(layers, _layer_name(mode, rank))(pool, strides=strides, padding=padding)
    out = layer(torch.from_numpy(x))
    pool_size = (pool,) * rank
    stride_tuple = ((strides or pool),) * rank
    expected = numpy_pool(x, pool_size, stride_tuple, padding, mode)
    assert tuple(layer.compute_output_shape(x.shape)) == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5, rtol=1e-5)


KERAS_CASES = [
    (rank, mode, padding, pool, strides, data_format)
    for rank in (1, 2, 3)
    for mode in ("max", "average")
    for padding in ("valid", "same")
    for pool, strides in ((2, None), (3, 1), (3, 2), (2, 1))
    for data_format in ("channels_last", "channels_first")
]


@pytest.mark.parametrize("rank,mode,padding,pool,strides,data_format", KERAS_CASES)
def test_keras_parity(rank, mode, padding, pool, strides, data_format):
    keras = keras_module()
    spatial = {1: (7,), 2: (7, 6), 3: (5, 6, 3)}[rank]
    pool_size, stride_tuple = (pool,) * rank, ((strides or pool),) * rank
    if mode == "average" and not _symmetric(spatial, pool_size, stride_tuple, padding):
        pytest.skip("Keras's torch backend counts padded cells here; the NumPy test covers it.")
    shape = (2, *spatial, 3) if data_format == "channels_last" else (2, 3, *spatial)
    x = RNG.standard_normal(shape).astype("float32")
    kwargs = dict(pool_size=pool, strides=strides, padding=padding, data_format=data_format)
    ref_layer = getattr(keras.layers, _layer_name(mode, rank))(**kwargs)
    x_ref = torch.tensor(x, requires_grad=True)
    ref_out = ref_layer(x_ref)
    ref_out.square().sum().backward()
    layer = getattr(layers, _layer_name(mode, rank))(**kwargs)
    x_ours = torch.tensor(x, requires_grad=True)
    out = layer(x_ours)
    out.square().sum().backward()
    np.testing.assert_allclose(to_numpy(out), to_numpy(ref_out), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(x_ours.grad), to_numpy(x_ref.grad), atol=1e-5)
    assert layer.get_config()["strides"] == ref_layer.get_config()["strides"]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_asymmetric_average_gradient_counts_real_cells(data_format):
    # Pool 4, stride 1, "same" on 5 steps pads (1, 2); the last window holds 2 real cells.
    layer = layers.AveragePooling1D(4, strides=1, padding="same", data_format=data_format)
    x = torch.arange(5.0).reshape(1, 5, 1)
    if data_format == "channels_first":
        x = x.reshape(1, 1, 5)
    x.requires_grad_(True)
    out = layer(x).flatten()
    expected = numpy_pool(
        np.arange(5.0, dtype="float32").reshape(1, 5, 1), (4,), (1,), "same", "average"
    )
    torch.testing.assert_close(out, torch.from_numpy(expected.flatten()))
    out[-1].backward()
    torch.testing.assert_close(x.grad.flatten(), torch.tensor([0.0, 0.0, 0.0, 0.5, 0.5]))


@pytest.mark.parametrize(
    "layer,shape",
    [
        (lambda: layers.MaxPooling1D(), (2, 8, 4)),
        (lambda: layers.AveragePooling1D(3, strides=2, padding="same"), (2, 8, 4)),
        (lambda: layers.MaxPooling2D(), (2, 8, 8, 4)),
        (lambda: layers.AveragePooling2D(2, strides=1, padding="same"), (2, 8, 8, 4)),
        (lambda: layers.MaxPooling2D(2, strides=1, padding="same"), (2, 8, 8, 4)),
    ],
)
def test_channels_last_output_is_contiguous(layer, shape):
    out = layer()(torch.randn(shape))
    assert out.is_contiguous()


def test_symbolic_output_shape():
    x = layers.Input((None, 9, 4))
    assert tuple(layers.MaxPooling2D(3, 2, padding="same")(x).shape) == (None, None, 5, 4)
    y = layers.AveragePooling1D(2, data_format="channels_first")(layers.Input((3, 8)))
    assert tuple(y.shape) == (None, 3, 4)
    z = layers.MaxPooling3D()(layers.Input((4, 6, 8, 2)))
    assert tuple(z.shape) == (None, 2, 3, 4, 2)


def test_defaults_config_and_aliases():
    keras = keras_module()
    layer = layers.MaxPooling2D()
    assert layer.pool_size == (2, 2) and layer.strides == (2, 2)
    assert layers.MaxPooling1D().pool_size == (2,)
    assert layers.MaxPooling3D().pool_size == (2, 2, 2)
    config = layers.AveragePooling2D(3, strides=1, padding="same", name="avg").get_config()
    ref = keras.layers.AveragePooling2D(3, strides=1, padding="same", name="avg").get_config()
    assert config == {**ref, "dtype": config["dtype"]}
    clone = layers.AveragePooling2D.from_config(config)
    assert clone.get_config() == config
    assert layers.AveragePooling2D.from_config(ref).padding == "same"
    assert layers.MaxPool1D is layers.MaxPooling1D and layers.MaxPool2D is layers.MaxPooling2D
    assert layers.MaxPool3D is layers.MaxPooling3D and layers.AvgPool1D is layers.AveragePooling1D
    assert layers.AvgPool2D is layers.AveragePooling2D
    assert layers.AvgPool3D is layers.AveragePooling3D
    assert not layer.weights


def test_errors():
    with pytest.raises(ValueError, match="padding"):
        layers.MaxPooling2D(padding="causal")
    with pytest.raises(ValueError, match="pool_size"):
        layers.MaxPooling2D(pool_size=(2, 2, 2))
    with pytest.raises(ValueError, match="data_format"):
        layers.AveragePooling1D(2, data_format="NCW")
    with pytest.raises(ValueError, match="ndim=4"):
        layers.MaxPooling2D()(torch.zeros(2, 8, 3))
    with pytest.raises(ValueError, match="negative"):
        layers.MaxPooling2D(4).compute_output_shape((None, 3, 3, 1))
