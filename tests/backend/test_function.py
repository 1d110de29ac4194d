"""`ktorch.backend.function` and `learning_phase` (the Keras 2 FAQ's `K.function`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ktorch as keras
from ktorch import backend as K
from ktorch.layers import BatchNormalization, Dense, Dropout
from ktorch.models import Sequential


@pytest.fixture()
def model():
    keras.utils.set_random_seed(0)
    return Sequential(
        [Dense(8, input_shape=(4,), activation="relu"), Dropout(0.5), Dense(6), Dense(3)]
    )


def test_faq_third_layer_output(model):
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    get_3rd_layer_output = K.function([model.layers[0].input], [model.layers[3].output])
    layer_output = get_3rd_layer_output([x])[0]
    assert isinstance(layer_output, np.ndarray)
    np.testing.assert_allclose(layer_output, model.predict(x, verbose=0), atol=1e-6)


def test_intermediate_output_matches_manual_forward(model):
    x = np.random.default_rng(1).random((5, 4)).astype("float32")
    hidden = K.function([model.layers[0].input], model.layers[0].output)([x])
    expected = model.layers[0](torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(hidden, expected, atol=1e-6)


def test_faq_learning_phase(model):
    x = np.random.default_rng(2).random((64, 4)).astype("float32") + 0.5
    get_3rd_layer_output = K.function(
        [model.layers[0].input, K.learning_phase()], [model.layers[3].output]
    )
    test_mode = get_3rd_layer_output([x, 0])[0]
    np.testing.assert_allclose(test_mode, model.predict(x, verbose=0), atol=1e-6)
    train_mode = get_3rd_layer_output([x, 1])[0]
    # Dropout is active in training mode.
    assert not np.allclose(train_mode, test_mode, atol=1e-3)


def test_learning_phase_batch_norm_uses_batch_statistics():
    keras.utils.set_random_seed(0)
    model = Sequential([Dense(4, input_shape=(3,)), BatchNormalization()])
    x = (np.random.default_rng(0).random((32, 3)) * 5).astype("float32")
    f = K.function([model.layers[0].input, K.learning_phase()], [model.layers[1].output])
    out = f([x, 1])[0]
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-4)


def test_function_errors(model):
    with pytest.raises(TypeError, match="symbolic tensors"):
        K.function([np.zeros(3)], [model.layers[3].output])
    f = K.function([model.layers[0].input], [model.layers[3].output])
    with pytest.raises(ValueError, match="takes 1 inputs"):
        f([np.zeros((1, 4)), np.zeros((1, 4))])
    with pytest.raises(ValueError, match="updates"):
        K.function([model.layers[0].input], [model.layers[3].output], updates=[1])
    g = K.function([model.layers[0].input, K.learning_phase()], [model.layers[3].output])
    with pytest.raises(ValueError, match="0 or 1"):
        g([np.zeros((1, 4), "float32"), 2])


def test_set_learning_phase_is_deprecated_and_validated():
    with pytest.raises(ValueError, match="0 or 1"):
        K.set_learning_phase(3)
    with pytest.warns(DeprecationWarning):
        K.set_learning_phase(0)
