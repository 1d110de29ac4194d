import copy
import math

import pytest
import torch

import ktorch.ops
import ktorch.utils
from ktorch.layers import Dropout, Input
from ktorch.ops import dropout as D
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


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_rate_within_binomial_tolerance(rate):
    n = 100_000
    y = Dropout(rate)(torch.ones(n), training=True)
    kept = int((y != 0).sum())
    # Within 5 standard deviations of a binomial(n, 1 - rate).
    assert abs(kept - n * (1 - rate)) < 5 * math.sqrt(n * rate * (1 - rate))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_training_runs_the_fused_op(dtype):
    x = torch.randn(7, 33, dtype=dtype)
    for seed in (None, 5):
        layer = Dropout(0.3, seed=seed, dtype=str(dtype).removeprefix("torch."))
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        torch.manual_seed(2)
        y = layer(x, training=True)
        torch.manual_seed(2)
        expected = ktorch.ops.fused_dropout(x, 0.3, generator=generator)
        assert y.dtype == dtype and torch.equal(y, expected)


def test_mask_matches_the_pure_torch_reference():
    x = torch.randn(9, 31)
    torch.manual_seed(2)
    y = Dropout(0.3)(x, training=True)
    torch.manual_seed(2)
    seed, offset = D.dropout_stream(None, x.device)
    assert torch.equal(y, D.fused_dropout_reference(x, 0.3, seed, offset)[0])


def test_full_noise_shape_runs_the_fused_op():
    x = torch.randn(4, 6)
    torch.manual_seed(8)
    y = Dropout(0.5, noise_shape=(None, 6))(x, training=True)
    torch.manual_seed(8)
    assert torch.equal(y, ktorch.ops.fused_dropout(x, 0.5))


def test_set_random_seed_reproduces_the_mask():
    layer = Dropout(0.5)
    x = torch.ones(32, 32)
    ktorch.utils.set_random_seed(11)
    a = layer(x, training=True)
    b = layer(x, training=True)
    ktorch.utils.set_random_seed(11)
    assert torch.equal(a, layer(x, training=True))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("noise_shape", [None, (None, 1, None)])
def test_backward_uses_the_forward_mask(noise_shape):
    # No zeros in x: an entry is kept exactly where the output is non-zero.
    x = (torch.rand(6, 5, 40) + 0.5).requires_grad_()
    y = Dropout(0.4, noise_shape=noise_shape)(x, training=True)
    grad = torch.randn_like(y)
    y.backward(grad)
    torch.testing.assert_close(x.grad, torch.where(y != 0, grad / 0.6, 0.0))


@pytest.mark.slow
def test_layer_under_torch_compile():
    x = torch.randn(16, 24, requires_grad=True)
    layer = Dropout(0.5)
    compiled = torch.compile(lambda t: layer(t, training=True), fullgraph=True)
    torch.manual_seed(4)
    y = compiled(x)
    torch.manual_seed(4)
    assert torch.equal(y, layer(x, training=True))
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2)
    assert compiled(x.detach()) is not None and not torch.equal(compiled(x), compiled(x))
    # A seeded layer passes its generator object, which the graph cannot hold: the op runs
    # between two graphs and still draws the seeded sequence.
    seeded, twin = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    compiled_seeded = torch.compile(lambda t: seeded(t, training=True))
    for _ in range(2):
        assert torch.equal(compiled_seeded(x), twin(x, training=True))


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
