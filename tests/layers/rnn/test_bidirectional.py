import numpy as np
import pytest
import torch

import ktorch
from ktorch.layers import GRU, LSTM, Bidirectional, Embedding, SimpleRNN
from tests.keras_ref import keras_module
from tests.layers.rnn.parity import assert_parity, normalized


def _x(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


def _mask():
    mask = np.random.default_rng(1).random((3, 5)) > 0.4
    mask[0] = False
    mask[2] = True
    mask[2, 3:] = False
    return mask


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_parity_merge_modes(merge_mode, return_sequences):
    assert_parity(
        Bidirectional(LSTM(3, return_sequences=return_sequences), merge_mode=merge_mode),
        lambda k: k.layers.Bidirectional(
            k.layers.LSTM(3, return_sequences=return_sequences), merge_mode=merge_mode
        ),
        _x(),
    )


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_parity_mask_and_state(merge_mode):
    options = {"return_sequences": True, "return_state": True}
    rng = np.random.default_rng(5)
    states = [rng.standard_normal((3, 3)).astype("float32") for _ in range(2)]
    assert_parity(
        Bidirectional(GRU(3, **options), merge_mode=merge_mode),
        lambda k: k.layers.Bidirectional(k.layers.GRU(3, **options), merge_mode=merge_mode),
        _x(),
        mask=_mask(),
        initial_state=states,
    )
    assert_parity(
        Bidirectional(LSTM(3, return_sequences=True)),
        lambda k: k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True)),
        _x(),
        mask=_mask(),
    )


def test_backward_layer_and_weights():
    forward = LSTM(4, return_sequences=True)
    backward = SimpleRNN(4, activation="relu", return_sequences=True, go_backwards=True)
    layer = Bidirectional(forward, backward_layer=backward)
    assert layer.backward_layer is backward
    assert layer.forward_layer.name == f"forward_{forward.name}"
    y = layer(torch.as_tensor(_x()))
    assert tuple(y.shape) == (3, 5, 8)
    assert [tuple(w.shape) for w in layer.weights] == [
        (4, 16), (4, 16), (16,), (4, 4), (4, 4), (4,)
    ]  # fmt: skip
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2))
    with pytest.raises(ValueError, match="merge mode"):
        Bidirectional(LSTM(2), merge_mode="max")


def test_symbolic_shapes_and_mask():
    inputs = ktorch.Input((None,), dtype="int32")
    h = Embedding(9, 4, mask_zero=True)(inputs)
    seq = Bidirectional(LSTM(3, return_sequences=True))(h)
    assert seq.shape == (None, None, 6)
    assert seq._mask_shape == (None, None)
    out, *states = Bidirectional(GRU(2, return_state=True), merge_mode=None)(seq)
    assert out.shape == (None, 2) and len(states) == 3
    model = ktorch.Model(inputs, Bidirectional(LSTM(2), merge_mode="sum")(seq))
    assert tuple(model(torch.tensor([[1, 2, 0], [3, 0, 0]])).shape) == (2, 2)


def test_stateful_reset_and_gradients():
    layer = Bidirectional(LSTM(2, stateful=True))
    model = ktorch.Sequential([ktorch.Input((3, 4), batch_size=3), layer])
    model.predict_on_batch(_x(3, 3, 4))
    assert all(float(s.abs().sum()) > 0 for s in layer.states)
    model.reset_states()
    assert all(float(s.abs().sum()) == 0 for s in layer.states)
    with pytest.raises(AttributeError, match="stateful"):
        Bidirectional(LSTM(2)).reset_states()
    plain = Bidirectional(GRU(2))
    x = torch.as_tensor(_x()).requires_grad_(True)
    plain(x).sum().backward()
    assert all(w.grad is not None for w in plain.trainable_weights)


def test_config_round_trip():
    keras = keras_module()
    layer = Bidirectional(LSTM(3, return_sequences=True), merge_mode="ave", name="bi")
    ref = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True, name=layer.forward_layer.name[8:]),
        merge_mode="ave",
        name="bi",
    )
    assert normalized(layer.get_config()) == normalized(ref.get_config())
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    from_keras = Bidirectional.from_config(ref.get_config())
    assert from_keras.merge_mode == "ave" and from_keras.backward_layer.go_backwards


def test_input_shape_on_wrapped_layer_builds_sequential():
    model = ktorch.Sequential([Bidirectional(LSTM(3, return_sequences=True, input_shape=(5, 4)))])
    assert model.built and model.output.shape == (None, 5, 6)
    model = ktorch.Sequential([Bidirectional(GRU(2), input_shape=(5, 4))])
    assert model.output.shape == (None, 4)
