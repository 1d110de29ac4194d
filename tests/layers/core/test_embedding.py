import numpy as np
import pytest
import torch

from ktorch.layers import Embedding, Input
from tests.keras_ref import keras_module, to_numpy


@pytest.fixture(scope="module")
def keras():
    return keras_module()


def test_weights_and_shapes():
    layer = Embedding(10, 4)
    y = layer(torch.tensor([[1, 2, 3]]))
    assert y.shape == (1, 3, 4) and y.dtype == torch.float32
    assert [w.name for w in layer.weights] == ["embeddings"]
    assert layer.embeddings.shape == (10, 4) and layer.embeddings.trainable
    assert Embedding(10, 4)(Input((7,), dtype="int32")).shape == (None, 7, 4)


def test_parity_with_keras(keras):
    x = np.random.default_rng(0).integers(0, 10, size=(3, 5))
    ref = keras.layers.Embedding(10, 4)
    expected = to_numpy(ref(x))
    layer = Embedding(10, 4)
    layer.build()
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), expected, atol=1e-6)
    # float indices are truncated to integers, as in Keras
    np.testing.assert_allclose(
        layer(torch.tensor(x, dtype=torch.float32)).detach().numpy(), expected, atol=1e-6
    )


def test_mask_zero(keras):
    x = np.array([[3, 0, 5, 0], [0, 1, 2, 3]])
    layer = Embedding(6, 2, mask_zero=True)
    y = layer(torch.tensor(x))
    expected = to_numpy(keras.layers.Embedding(6, 2, mask_zero=True).compute_mask(x))
    np.testing.assert_array_equal(y._keras_mask.numpy(), expected)
    assert layer.compute_mask(torch.tensor(x)).dtype == torch.bool
    assert Embedding(6, 2)(torch.tensor(x)).__dict__.get("_keras_mask") is None
    symbolic = Embedding(6, 2, mask_zero=True)(Input((4,), dtype="int32"))
    assert symbolic._mask_shape == (None, 4)


def test_initial_weights_argument():
    matrix = np.arange(12, dtype="float32").reshape(4, 3)
    layer = Embedding(4, 3, weights=matrix)
    assert layer.built
    np.testing.assert_array_equal(layer(torch.tensor([2])).detach().numpy(), matrix[[2]])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="`input_dim` must be a positive integer"):
        Embedding(0, 3)
    with pytest.raises(ValueError, match="`output_dim` must be a positive integer"):
        Embedding(3, 2.5)


def test_config_round_trip(keras):
    layer = Embedding(7, 3, mask_zero=True, embeddings_regularizer="l2")
    config = layer.get_config()
    assert set(config) == set(keras.layers.Embedding(7, 3).get_config())
    restored = Embedding.from_config(config)
    assert (restored.input_dim, restored.output_dim, restored.mask_zero) == (7, 3, True)
    assert restored.embeddings_regularizer is not None
