"""ZeroPadding1D/2D/3D and Cropping1D/2D/3D: argument forms, data_format, config, parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktorch import layers
from tests.keras_ref import keras_module, to_numpy

RNG = np.random.default_rng(3)


def _shape(rank, data_format):
    spatial = {1: (7,), 2: (6, 7), 3: (5, 6, 7)}[rank]
    return (2, *spatial, 3) if data_format == "channels_last" else (2, 3, *spatial)


def _compare(name, kwargs, shape):
    keras = keras_module()
    x = RNG.standard_normal(shape).astype("float32")
    ref_layer = getattr(keras.layers, name)(**kwargs)
    x_ref = torch.tensor(x, requires_grad=True)
    ref_out = ref_layer(x_ref)
    ref_out.square().sum().backward()
    layer = getattr(layers, name)(**kwargs)
    x_ours = torch.tensor(x, requires_grad=True)
    out = layer(x_ours)
    out.square().sum().backward()
    np.testing.assert_array_equal(to_numpy(out), to_numpy(ref_out))
    np.testing.assert_array_equal(to_numpy(x_ours.grad), to_numpy(x_ref.grad))
    assert tuple(layer.compute_output_shape(shape)) == tuple(ref_out.shape)
    assert tuple(layer(layers.Input(shape[1:])).shape) == (None, *tuple(ref_out.shape)[1:])
    config = layer.get_config()
    assert config == {**ref_layer.get_config(), "dtype": config["dtype"], "name": config["name"]}
    assert getattr(layers, name).from_config(config).get_config() == config
    return out


PADDINGS = {
    1: [1, (2, 0), (0, 3)],
    2: [1, (2, 1), ((1, 0), (0, 2))],
    3: [1, (1, 2, 0), ((1, 0), (0, 2), (2, 1))],
}


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank,padding", [(r, p) for r in (1, 2, 3) for p in PADDINGS[r]])
def test_zero_padding_parity(data_format, rank, padding):
    _compare(
        f"ZeroPadding{rank}D",
        {"padding": padding, "data_format": data_format},
        _shape(rank, data_format),
    )


def test_zero_padding_defaults():
    assert layers.ZeroPadding1D().padding == (1, 1)
    assert layers.ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert layers.ZeroPadding3D().padding == ((1, 1), (1, 1), (1, 1))
    out = layers.ZeroPadding2D()(torch.ones(1, 2, 2, 1))
    assert out.sum() == 4 and out[0, 0].abs().sum() == 0


CROPPINGS = {
    1: [1, (2, 0), (0, 3)],
    2: [1, (2, 1), ((1, 0), (0, 2)), ((0, 0), (0, 0))],
    3: [1, (1, 2, 0), ((1, 0), (0, 2), (2, 1))],
}


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank,cropping", [(r, c) for r in (1, 2, 3) for c in CROPPINGS[r]])
def test_cropping_parity(data_format, rank, cropping):
    kwargs = {"cropping": cropping}
    if rank == 1:
        if data_format == "channels_first":
            pytest.skip("Cropping1D has no data_format argument.")
    else:
        kwargs["data_format"] = data_format
    out = _compare(f"Cropping{rank}D", kwargs, _shape(rank, data_format))
    assert out._base is not None


def test_cropping_defaults_and_errors():
    assert layers.Cropping1D().cropping == (1, 1)
    assert layers.Cropping2D().cropping == ((0, 0), (0, 0))
    assert layers.Cropping3D().cropping == ((1, 1), (1, 1), (1, 1))
    with pytest.raises(ValueError, match="smaller"):
        layers.Cropping2D(((2, 2), (0, 0)))(torch.zeros(1, 4, 4, 1))
    with pytest.raises(ValueError, match="smaller"):
        layers.Cropping1D((3, 3)).compute_output_shape((None, 6, 2))
    with pytest.raises(ValueError, match="negative"):
        layers.Cropping2D(-1)
    with pytest.raises(ValueError, match="2 elements"):
        layers.Cropping2D((1, 1, 1))
    with pytest.raises(ValueError, match="3 elements"):
        layers.ZeroPadding3D((1, 1))
    with pytest.raises(ValueError, match="entry of padding"):
        layers.ZeroPadding2D(((1, 2, 3), 1))
