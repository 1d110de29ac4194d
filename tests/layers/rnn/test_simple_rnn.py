import numpy as np
import pytest
import torch

from ktorch.layers import RNN, SimpleRNN, SimpleRNNCell
from tests.keras_ref import keras_module
from tests.layers.rnn.parity import assert_parity, normalized


def _x(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


def _mask():
    mask = np.random.default_rng(1).random((3, 5)) > 0.4
    mask[0] = False
    return mask


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True, "return_state": True},
        {"return_sequences": True, "go_backwards": True},
        {"activation": None, "use_bias": False},
    ],
)
def test_parity(options):
    assert_parity(SimpleRNN(5, **options), lambda k: k.layers.SimpleRNN(5, **options), _x())
    assert_parity(
        SimpleRNN(5, **options), lambda k: k.layers.SimpleRNN(5, **options), _x(), mask=_mask()
    )


def test_parity_initial_state_and_cell():
    state = [np.ones((3, 5), "float32")]
    assert_parity(
        SimpleRNN(5, return_sequences=True),
        lambda k: k.layers.SimpleRNN(5, return_sequences=True),
        _x(),
        initial_state=state,
    )
    assert_parity(
        RNN(SimpleRNNCell(5), return_state=True),
        lambda k: k.layers.RNN(k.layers.SimpleRNNCell(5), return_state=True),
        _x(),
        mask=_mask(),
    )


def test_weights_and_config():
    keras = keras_module()
    layer = SimpleRNN(3, dropout=0.2)
    layer(torch.zeros(1, 2, 4))
    assert [tuple(w.shape) for w in layer.weights] == [(4, 3), (3, 3), (3,)]
    ref = keras.layers.SimpleRNN(3, dropout=0.2, name=layer.name).get_config()
    assert normalized(layer.get_config()) == normalized(ref)
    assert SimpleRNN.from_config(layer.get_config()).get_config() == layer.get_config()
    cell = SimpleRNNCell(2, name="c", seed=1)
    assert normalized(cell.get_config()) == normalized(
        keras.layers.SimpleRNNCell(2, name="c", seed=1).get_config()
    )


@pytest.mark.parametrize("layer_fn", [lambda: SimpleRNN(4), lambda: RNN(SimpleRNNCell(4))])
def test_gradients_flow(layer_fn):
    layer = layer_fn()
    x = torch.as_tensor(_x()).requires_grad_(True)
    layer(x, mask=torch.as_tensor(_mask())).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in layer.trainable_weights)
