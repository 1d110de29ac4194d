import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ktorch.layers import Input, Normalization
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def _data(shape=(50, 4, 3), seed=0):
    return (np.random.default_rng(seed).normal(size=shape) * 3 + 2).astype("float32")


@pytest.mark.parametrize("axis", [-1, None, (1, 2), 1])
def test_adapt_and_call_parity_with_keras(keras, axis):
    data = _data()
    ref = keras.layers.Normalization(axis=axis)
    ref.adapt(data)
    layer = Normalization(axis=axis)
    layer.adapt(data, batch_size=16)
    assert [w.name for w in layer.weights] == ["mean", "variance", "count"]
    assert [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in ref.weights]
    assert layer.count.dtype == torch.int32 and not layer.count.trainable
    for got, want in zip(layer.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        layer(torch.tensor(data[:5])).numpy(), to_numpy(ref(data[:5])), atol=1e-5
    )


def test_adapt_from_batches_tensors_and_loaders():
    data = _data((64, 3), seed=1)
    mean, var = data.mean(0), data.var(0)
    for source in (
        [data[:10], data[10:]],
        (data[i : i + 7] for i in range(0, 64, 7)),
        torch.tensor(data),
        DataLoader(TensorDataset(torch.tensor(data), torch.zeros(64)), batch_size=20),
    ):
        layer = Normalization()
        layer.adapt(source)
        np.testing.assert_allclose(layer.adapt_mean.detach().numpy(), mean, rtol=1e-5)
        np.testing.assert_allclose(layer.adapt_variance.detach().numpy(), var, rtol=1e-5)
        out = layer(torch.tensor(data)).numpy()
        np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(out.std(0), 1.0, atol=1e-4)


def test_given_mean_variance_and_invert(keras):
    x = _data((6, 2, 3), seed=2)
    for invert in (False, True):
        kwargs = {"mean": [1.0, 2.0, 3.0], "variance": [4.0, 1.0, 0.25], "invert": invert}
        expected = to_numpy(keras.layers.Normalization(**kwargs)(x))
        layer = Normalization(**kwargs)
        np.testing.assert_allclose(layer(torch.tensor(x)).numpy(), expected, rtol=1e-6)
        assert layer.weights == [] and layer.state_dict() == {}
    with pytest.raises(ValueError, match="both `mean` and `variance` must be set"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match="must have the same shape"):
        Normalization(mean=[1.0, 2.0], variance=[1.0])


def test_adapt_errors_and_symbolic_shape():
    layer = Normalization()
    assert layer(Input((5,))).shape == (None, 5)
    with pytest.raises(ValueError, match="incompatible shape"):
        layer.adapt(np.ones((4, 3)))
    with pytest.raises(ValueError, match="empty iterable"):
        Normalization().adapt([])
    with pytest.raises(ValueError, match="Cannot adapt"):
        fixed = Normalization(mean=0.0, variance=1.0)
        fixed.build((None, 2))
        fixed.adapt(np.ones((4, 2)))


def test_config_and_weights_round_trip(keras):
    layer = Normalization(axis=(1,))
    layer.adapt(_data((20, 3), seed=3))
    config = layer.get_config()
    assert set(config) == set(keras.layers.Normalization().get_config())
    restored = Normalization.from_config(config)
    restored.build_from_config(layer.get_build_config())
    restored.set_weights(layer.get_weights())
    x = torch.tensor(_data((4, 3), seed=4))
    torch.testing.assert_close(restored(x), layer(x))
    given = Normalization.from_config(Normalization(mean=[1.0], variance=[2.0]).get_config())
    assert given.input_mean == [1.0]
