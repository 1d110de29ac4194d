import copy

import pytest
import torch

from ktorch.layers import Dropout, Input
from tests.keras_ref import keras_module


def test_inference_is_identity():
    x = torch.randn(4, 5)
    layer = Dropout(0.5)
    assert layer(x) is x
    assert layer(x, training=False) is x
    assert Dropout(0.0)(x, training=True) is x


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("noise_shape", [None, (None, 1, None)])
def test_keep_rate_and_scaling(rate, noise_shape):
    x = torch.ones(200, 20, 50)
    y = Dropout(rate, noise_shape=noise_shape)(x, training=True)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - rate)) < 0.02
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - rate)))
    assert abs(y.mean().item() - 1.0) < 0.05


def test_noise_shape_broadcasts_the_mask():
    y = Dropout(0.5, noise_shape=(None, 1, None))(torch.ones(20, 5, 10), training=True)
    assert torch.equal(y[:, 0], y[:, 3])
    y = Dropout(0.5, noise_shape=(20, 1, 10))(torch.ones(20, 5, 10), training=True)
    assert torch.equal(y[:, 1], y[:, 4])


def test_rate_one_drops_everything():
    assert torch.count_nonzero(Dropout(1.0)(torch.ones(3, 4), training=True)) == 0


def test_reproducible_under_manual_seed():
    layer = Dropout(0.5)
    torch.manual_seed(7)
    a = layer(torch.ones(8, 8), training=True)
    torch.manual_seed(7)
    b = layer(torch.ones(8, 8), training=True)
    assert torch.equal(a, b)
    assert not torch.equal(a, layer(torch.ones(8, 8), training=True))


def test_seeded_layers_draw_the_same_sequence():
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    x = torch.ones(16, 16)
    first = a(x, training=True)
    assert torch.equal(first, b(x, training=True))
    assert not torch.equal(first, a(x, training=True))
    clone = copy.deepcopy(a)
    assert torch.equal(clone(x, training=True), a(x, training=True))


def test_gradient_is_masked_and_scaled():
    x = torch.ones(50, 40, requires_grad=True)
    y = Dropout(0.25)(x, training=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)


@pytest.mark.parametrize("rate", [-0.5, 1.5, "0.5"])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="Invalid value received for argument `rate`"):
        Dropout(rate)


@pytest.mark.parametrize(
    "noise_shape, message",
    [
        ("x", "Expected a tuple or list of integers"),
        ((2, 1.5), "integers or None"),
        ((2, 0), "positive integers or None"),
    ],
)
def test_invalid_noise_shape(noise_shape, message):
    with pytest.raises(ValueError, match=message):
        Dropout(0.5, noise_shape=noise_shape)


def test_masks_pass_through_and_symbolic_shape():
    x = torch.ones(2, 3, 4)
    x._keras_mask = torch.ones(2, 3, dtype=torch.bool)
    assert Dropout(0.5)(x, training=True)._keras_mask is x._keras_mask
    assert Dropout(0.5)(Input((3, 4))).shape == (None, 3, 4)


def test_config_round_trip():
    keras = keras_module()
    layer = Dropout(0.3, noise_shape=[None, 1], seed=4)
    config = layer.get_config()
    assert set(config) == set(keras.layers.Dropout(0.3).get_config())
    restored = Dropout.from_config(config)
    assert (restored.rate, restored.noise_shape, restored.seed) == (0.3, (None, 1), 4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("seed, noise_shape", [(None, None), (3, None), (None, (None, 1))])
def test_cuda_keep_rate_and_seeding(seed, noise_shape):
    x = torch.ones(400, 300, device="cuda")
    y = Dropout(0.3, noise_shape=noise_shape, seed=seed)(x, training=True)
    assert y.device.type == "cuda"
    assert abs((y != 0).float().mean().item() - 0.7) < 0.03
    if seed is not None:
        assert torch.equal(y, Dropout(0.3, seed=seed)(x, training=True))
