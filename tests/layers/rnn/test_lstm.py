import numpy as np
import pytest
import torch

import ktorch
from ktorch.layers import LSTM, RNN, Embedding, LSTMCell, Masking
from tests.keras_ref import keras_module, to_numpy
from tests.layers.rnn.parity import assert_parity, normalized


def _x(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


def _mask(batch=3, steps=5, seed=1):
    mask = np.random.default_rng(seed).random((batch, steps)) > 0.4
    mask[0] = False  # one fully masked sequence
    mask[1, 0] = False
    return mask


def test_weights_shapes_and_forget_bias():
    layer = LSTM(6)
    layer(torch.zeros(2, 3, 4))
    assert [w.name for w in layer.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert [tuple(w.shape) for w in layer.weights] == [(4, 24), (6, 24), (24,)]
    assert all(w.trainable for w in layer.weights)
    bias = layer.cell.bias.detach().numpy()
    np.testing.assert_array_equal(bias[6:12], 1.0)
    np.testing.assert_array_equal(np.delete(bias, range(6, 12)), 0.0)
    layer = LSTM(6, unit_forget_bias=False, use_bias=False)
    layer(torch.zeros(2, 3, 4))
    assert len(layer.weights) == 2


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"return_state": True},
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"go_backwards": True},
        {"unroll": True, "return_sequences": True},
        {"activation": "relu", "recurrent_activation": "hard_sigmoid", "use_bias": False},
    ],
)
def test_parity(options):
    assert_parity(LSTM(5, **options), lambda k: k.layers.LSTM(5, **options), _x())


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"return_sequences": True, "go_backwards": True, "return_state": True},
        {"return_sequences": True, "zero_output_for_mask": True},
    ],
)
def test_parity_with_mask(options):
    assert_parity(LSTM(5, **options), lambda k: k.layers.LSTM(5, **options), _x(), mask=_mask())


def test_parity_initial_state():
    rng = np.random.default_rng(3)
    state = [rng.standard_normal((3, 5)).astype("float32") for _ in range(2)]
    options = {"return_sequences": True, "return_state": True}
    assert_parity(
        LSTM(5, **options), lambda k: k.layers.LSTM(5, **options), _x(), initial_state=state
    )
    assert_parity(
        LSTM(5, **options),
        lambda k: k.layers.LSTM(5, **options),
        _x(),
        initial_state=state,
        mask=_mask(),
    )


def test_parity_generic_cell_loop():
    options = {"return_sequences": True, "return_state": True}
    assert_parity(
        RNN(LSTMCell(5), **options), lambda k: k.layers.RNN(k.layers.LSTMCell(5), **options), _x()
    )
    assert_parity(
        RNN(LSTMCell(5), go_backwards=True, **options),
        lambda k: k.layers.RNN(k.layers.LSTMCell(5), go_backwards=True, **options),
        _x(),
        mask=_mask(),
    )


def test_mask_from_embedding_and_masking():
    tokens = np.array([[3, 1, 0, 0], [2, 0, 4, 1]])
    model = ktorch.Sequential([Embedding(6, 3, mask_zero=True), LSTM(4, return_sequences=True)])
    out = model(torch.as_tensor(tokens)).detach().numpy()
    # A masked step repeats the previous output.
    np.testing.assert_array_equal(out[0, 2], out[0, 1])
    np.testing.assert_array_equal(out[0, 3], out[0, 1])
    np.testing.assert_array_equal(out[1, 1], out[1, 0])
    assert not np.allclose(out[1, 2], out[1, 1])

    x = _x(2, 4, 3)
    x[0, 2:] = 0.0
    masked = ktorch.Sequential([Masking(0.0), LSTM(4)])
    masked(torch.as_tensor(x))
    plain = LSTM(4)
    plain(torch.as_tensor(x[:, :2]))
    plain.set_weights(masked.layers[1].get_weights())
    np.testing.assert_allclose(
        masked(torch.as_tensor(x))[0].detach().numpy(),
        plain(torch.as_tensor(x[:1, :2]))[0].detach().numpy(),
        atol=1e-6,
    )


def test_symbolic_shapes_and_mask():
    inputs = ktorch.Input((None,), dtype="int32")
    h = Embedding(10, 4, mask_zero=True)(inputs)
    seq, state_h, state_c = LSTM(3, return_sequences=True, return_state=True)(h)
    assert seq.shape == (None, None, 3)
    assert state_h.shape == (None, 3) and state_c.shape == (None, 3)
    assert seq._mask_shape == (None, None)
    last = LSTM(2)(seq)
    assert last.shape == (None, 2)
    model = ktorch.Model(inputs, last)
    tokens = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 6]])
    assert tuple(model(tokens).shape) == (2, 2)


def test_initial_state_in_functional_model():
    inputs = ktorch.Input((5, 4))
    h0, c0 = ktorch.Input((3,)), ktorch.Input((3,))
    outputs = LSTM(3)(inputs, initial_state=[h0, c0])
    model = ktorch.Model([inputs, h0, c0], outputs)
    x = torch.as_tensor(_x(2, 5, 4))
    s = torch.ones(2, 3)
    expected = model.layers[-1](x, initial_state=[s, s])
    torch.testing.assert_close(model([x, s, s]), expected)


def test_gradients_flow():
    layer = LSTM(4, return_sequences=True)
    x = torch.as_tensor(_x()).requires_grad_(True)
    layer(x, mask=torch.as_tensor(_mask())).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for w in layer.trainable_weights:
        assert w.grad is not None and w.grad.abs().sum() > 0


def test_config_round_trip():
    keras = keras_module()
    options = {"return_sequences": True, "dropout": 0.25, "unit_forget_bias": False, "seed": 3}
    ours = LSTM(7, **options)
    theirs = keras.layers.LSTM(7, name=ours.name, **options)
    assert normalized(ours.get_config()) == normalized(theirs.get_config())
    assert LSTM.from_config(ours.get_config()).get_config() == ours.get_config()
    from_keras = LSTM.from_config(theirs.get_config())
    assert normalized(from_keras.get_config()) == normalized(ours.get_config())
    cell = LSTMCell(3, recurrent_dropout=0.5, name="c")
    ref = keras.layers.LSTMCell(3, recurrent_dropout=0.5, name="c").get_config()
    assert normalized(cell.get_config()) == normalized(ref)
    assert LSTMCell.from_config(cell.get_config()).get_config() == cell.get_config()


def test_invalid_arguments():
    with pytest.raises(ValueError, match="units=0"):
        LSTM(0)
    with pytest.raises(ValueError, match="use_cudnn=maybe"):
        LSTM(2, use_cudnn="maybe")
    with pytest.raises(ValueError, match="ndim=3"):
        LSTM(2)(ktorch.Input((4,)))


def test_cell_called_alone_matches_keras_cell():
    keras = keras_module()
    x = _x(3, 1, 4)[:, 0]
    h = np.random.default_rng(7).standard_normal((3, 5)).astype("float32")
    c = np.random.default_rng(8).standard_normal((3, 5)).astype("float32")
    theirs = keras.layers.LSTMCell(5)
    expected_out, (expected_h, expected_c) = theirs(x, [h, c])
    ours = LSTMCell(5)
    ours(torch.as_tensor(x), [torch.as_tensor(h), torch.as_tensor(c)])
    ours.set_weights(theirs.get_weights())
    out, (new_h, new_c) = ours(torch.as_tensor(x), [torch.as_tensor(h), torch.as_tensor(c)])
    np.testing.assert_allclose(out.detach().numpy(), to_numpy(expected_out), atol=1e-5)
    np.testing.assert_allclose(new_c.detach().numpy(), to_numpy(expected_c), atol=1e-5)


def test_fused_op_runs_only_for_default_configuration(monkeypatch):
    from ktorch.layers.rnn import lstm as lstm_module

    calls = []
    fused = lstm_module.fused_lstm_sequence
    monkeypatch.setattr(
        lstm_module, "fused_lstm_sequence", lambda *a, **k: calls.append(1) or fused(*a, **k)
    )
    x = torch.as_tensor(_x())
    LSTM(3)(x)
    LSTM(3, dropout=0.5)(x, training=True)
    assert calls == [1, 1]
    LSTM(3, activation="relu")(x)
    LSTM(3, recurrent_activation="hard_sigmoid")(x)
    LSTM(3, unroll=True)(x)
    LSTM(3, recurrent_dropout=0.5)(x, training=True)
    assert calls == [1, 1]


@pytest.mark.parametrize(
    "options",
    [
        {"return_sequences": True, "return_state": True},
        {"go_backwards": True, "return_state": True},
        {"return_sequences": True, "zero_output_for_mask": True},
    ],
)
def test_fused_op_matches_torch_path(options):
    fused, stepped = LSTM(5, **options), LSTM(5, unroll=True, **options)
    x = torch.as_tensor(_x()).requires_grad_(True)
    mask = torch.as_tensor(_mask())
    fused(x)
    stepped(x)
    stepped.set_weights(fused.get_weights())
    results = []
    for layer in (fused, stepped):
        outputs = layer(x, mask=mask)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = sum((o * torch.linspace(-1, 1, o.shape[-1])).sum() for o in outputs)
        grads = torch.autograd.grad(loss, [x, *layer.trainable_weights])
        results.append([o.detach() for o in outputs] + list(grads))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
