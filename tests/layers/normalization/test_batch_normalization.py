import numpy as np
import pytest
import torch

import ktorch.ops
from ktorch.layers import BatchNormalization, Input
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _pair(keras, shape, **kwargs):
    """A built Keras layer with random weights and ours with the same weights."""
    rng = np.random.default_rng(0)
    ref = keras.layers.BatchNormalization(**kwargs)
    ref.build(shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5  # a valid moving variance
    ref.set_weights(weights)
    ours = BatchNormalization(**kwargs)
    ours.build(shape)
    ours.set_weights(weights)
    return ref, ours


CASES = [
    (-1, (4, 5, 6, 3)),  # channels_last image
    (1, (4, 3, 5, 6)),  # channels_first image
    (-1, (6, 3)),  # dense features
    (-1, (4, 5, 3)),  # channels_last sequence
    (1, (4, 3, 5)),  # channels_first sequence
    (-1, (2, 3, 4, 5, 3)),  # channels_last volume
]


@pytest.mark.parametrize("axis, shape", CASES)
def test_training_and_inference_parity_with_keras(keras, axis, shape):
    ref, ours = _pair(keras, shape, axis=axis, momentum=0.9)
    x = (np.random.default_rng(1).normal(size=shape) * 2.0 + 0.5).astype("float32")
    for training in (False, True, True):
        expected = to_numpy(ref(x, training=training))
        out = ours(torch.tensor(x), training=training)
        np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-5)
        for got, want in zip(ours.get_weights(), ref.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_moving_statistics_formula():
    x = torch.randn(8, 3) * 3 + 2
    layer = BatchNormalization(momentum=0.8)
    layer(x, training=True)
    mean, var = x.mean(0), x.var(0, unbiased=False)
    torch.testing.assert_close(layer.moving_mean.detach(), 0.2 * mean)
    torch.testing.assert_close(layer.moving_variance.detach(), 0.8 + 0.2 * var)


def test_training_output_is_normalized_and_inference_uses_moving_stats():
    x = torch.randn(16, 4) * 5 + 3
    layer = BatchNormalization(center=False, scale=False)
    y = layer(x, training=True)
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    y = layer(x)  # inference by default
    expected = (x - layer.moving_mean) / torch.sqrt(layer.moving_variance + 1e-3)
    torch.testing.assert_close(y, expected.detach())


@pytest.mark.parametrize("axis, shape", [(-1, (4, 5, 6, 3)), (1, (4, 3, 5, 6))])
def test_frozen_layer_always_runs_in_inference_mode(keras, axis, shape):
    ref, ours = _pair(keras, shape, axis=axis)
    ref.trainable = False
    ours.trainable = False
    before = [w.copy() for w in ours.get_weights()]
    x = np.random.default_rng(2).normal(size=shape).astype("float32")
    expected = to_numpy(ref(x, training=True))
    out = ours(torch.tensor(x), training=True)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(out.detach().numpy(), ours(torch.tensor(x)).detach().numpy())
    for got, want in zip(ours.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_mask_restricts_batch_statistics(keras):
    shape = (3, 5, 4)
    ref, ours = _pair(keras, shape, momentum=0.5)
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype("float32")
    mask = rng.random(shape[:-1]) > 0.3
    expected = to_numpy(ref(x, training=True, mask=mask))
    out = ours(torch.tensor(x), training=True, mask=torch.tensor(mask))
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-5)
    for got, want in zip(ours.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="one dimension less than the inputs"):
        ours(torch.tensor(x), training=True, mask=torch.ones(3, dtype=torch.bool))


def test_weights_order_and_trainability():
    layer = BatchNormalization(axis=1)
    layer.build((None, 3, 8, 8))
    assert [w.name for w in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in layer.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in layer.non_trainable_weights] == ["moving_mean", "moving_variance"]
    assert all(tuple(w.shape) == (3,) for w in layer.weights)
    assert not layer.moving_mean.requires_grad
    assert set(layer.state_dict()) == {"gamma", "beta", "moving_mean", "moving_variance"}
    no_affine = BatchNormalization(center=False, scale=False)
    no_affine.build((None, 4))
    assert [w.name for w in no_affine.weights] == ["moving_mean", "moving_variance"]


def test_gradients_flow_in_training():
    layer = BatchNormalization()
    x = torch.randn(6, 3, requires_grad=True)
    (layer(x, training=True) * torch.arange(3.0)).sum().backward()
    assert x.grad is not None and layer.gamma.grad is not None
    assert layer.moving_mean.grad is None


@pytest.mark.parametrize("training", [True, False])
def test_gradient_penalty_matches_the_reference(training):
    # create_graph=True through the fused op gives plain autograd's second-order gradients.
    if not ktorch.ops.available()["cpu"]:
        pytest.skip("ktorch._C has no cpu kernel")
    x0 = torch.randn(8, 3, 4, generator=torch.Generator().manual_seed(0)) * 2 + 1
    results = []
    previous = ktorch.ops.get_backend()
    for backend in ("kernel", "reference"):
        ktorch.ops.set_backend(backend)
        try:
            ktorch.utils.set_random_seed(1)
            layer = BatchNormalization(axis=1, gamma_initializer="random_uniform")
            layer.build((None, 3, 4))
            with torch.no_grad():
                layer.beta.normal_()
            x = x0.clone().requires_grad_()
            out = layer(x, training=training)
            (grad_x,) = torch.autograd.grad((out.square() * out).sum(), x, create_graph=True)
            penalty = (grad_x.flatten(1).norm(dim=1) - 1).square().mean()
            results.append(torch.autograd.grad(penalty, [x, *layer.trainable_weights]))
        finally:
            ktorch.ops.set_backend(previous)
    for got, want in zip(*results, strict=True):
        assert float(want.abs().max()) > 0
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_channels_last_memory_is_kept():
    x = torch.randn(2, 3, 5, 6)
    outputs = []
    for data in (x, x.contiguous(memory_format=torch.channels_last)):
        layer = BatchNormalization(axis=1)
        out = layer(data, training=True)
        assert out.stride() == data.stride()
        outputs.append((out, layer.moving_mean.detach(), layer.moving_variance.detach()))
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.fixture
def reference_backend():
    previous = ktorch.ops.get_backend()
    yield lambda: ktorch.ops.set_backend("reference")
    ktorch.ops.set_backend(previous)


@pytest.mark.parametrize("axis, shape", CASES)
@pytest.mark.parametrize("dtype", [None, "mixed_float16"])
def test_kernel_and_reference_backends_agree(axis, shape, dtype, reference_backend):
    if not ktorch.ops.available()["cpu"]:
        pytest.skip("ktorch._C has no cpu kernel")
    results = []
    for use_reference in (False, True):
        if use_reference:
            reference_backend()
        torch.manual_seed(0)
        layer = BatchNormalization(axis=axis, momentum=0.8, dtype=dtype)
        layer.build(shape)
        x = (torch.randn(shape) * 2 + 1).requires_grad_()
        out = layer(x, training=True)
        (out.float() * torch.randn(shape)).sum().backward()
        inference = layer(x.detach())
        grads = (x.grad, layer.gamma.grad, layer.beta.grad)
        stats = (layer.moving_mean.detach(), layer.moving_variance.detach())
        results.append((out.detach(), inference, *grads, *stats))
    tolerance = 1e-5 if dtype is None else 2e-3
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


def test_shapes_input_spec_and_batch_of_one():
    layer = BatchNormalization()
    assert layer(Input((4, 4, 3))).shape == (None, 4, 4, 3)
    with pytest.raises(ValueError, match="batch_normalization"):
        layer(Input((4, 4, 5)))
    single = BatchNormalization()
    out = single(torch.randn(1, 3), training=True)
    torch.testing.assert_close(out, torch.zeros(1, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(single.moving_variance.detach(), torch.full((3,), 0.99))


def test_half_precision_inputs_keep_float32_statistics():
    layer = BatchNormalization(dtype="mixed_float16")
    y = layer(torch.randn(8, 3), training=True)
    assert y.dtype == torch.float16 and layer.moving_mean.dtype == torch.float32


def test_config_round_trip(keras):
    layer = BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False)
    config = layer.get_config()
    assert set(config) == set(keras.layers.BatchNormalization().get_config())
    restored = BatchNormalization.from_config(config)
    assert (restored.axis, restored.momentum, restored.epsilon, restored.center) == (
        1,
        0.9,
        1e-5,
        False,
    )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("axis, shape", CASES)
def test_cuda_matches_cpu(axis, shape):
    cpu = BatchNormalization(axis=axis, momentum=0.9)
    cpu.build(shape)
    gpu = BatchNormalization(axis=axis, momentum=0.9)
    gpu.build(shape)
    gpu.to("cuda")
    x = torch.randn(shape) * 2 + 1
    for training in (True, True, False):
        expected = cpu(x, training=training)
        out = gpu(x.cuda(), training=training)
        torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=1e-5)
    for got, want in zip(gpu.get_weights(), cpu.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
