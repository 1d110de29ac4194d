import numpy as np
import pytest
import torch

import ktorch
import ktorch as keras
from ktorch.layers import GRU, LSTM, RNN, Dense, GRUCell, LSTMCell, SimpleRNN, StackedRNNCells
from tests.keras_ref import keras_module
from tests.layers.rnn.parity import assert_parity, normalized


def _x(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


class MinimalRNNCell(ktorch.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), name="recurrent_kernel"
        )

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]


def test_stacked_cells_parity_and_config():
    keras_ = keras_module()
    mask = np.ones((3, 5), bool)
    mask[1, 3:] = False
    assert_parity(
        RNN([LSTMCell(4), GRUCell(3)], return_sequences=True),
        lambda k: k.layers.RNN([k.layers.LSTMCell(4), k.layers.GRUCell(3)], return_sequences=True),
        _x(),
        mask=mask,
    )
    layer = RNN([LSTMCell(4, name="a"), GRUCell(3, name="b")], name="r")
    assert isinstance(layer.cell, StackedRNNCells)
    ref = keras_.layers.RNN(
        [keras_.layers.LSTMCell(4, name="a"), keras_.layers.GRUCell(3, name="b")], name="r"
    )
    ref_config = ref.get_config()
    ref_config["cell"]["config"]["name"] = layer.cell.name
    assert normalized(layer.get_config()) == normalized(ref_config)
    clone = RNN.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    layer(torch.zeros(2, 3, 5))
    assert [tuple(w.shape) for w in layer.weights] == [
        (5, 16),
        (4, 16),
        (16,),
        (4, 9),
        (3, 9),
        (2, 9),
    ]


def test_custom_cell():
    layer = RNN(MinimalRNNCell(3), return_sequences=True)
    x = torch.as_tensor(_x())
    y = layer(x)
    assert tuple(y.shape) == (3, 5, 3)
    cell = layer.cell
    h = torch.zeros(3, 3)
    for t in range(5):
        h = x[:, t] @ cell.kernel + h @ cell.recurrent_kernel
        torch.testing.assert_close(y[:, t], h)
    inputs = ktorch.Input((None, 4))
    assert layer(inputs).shape == (None, None, 3)


def test_invalid_cell():
    with pytest.raises(ValueError, match="call"):
        RNN(object())


def test_faq_stateful_example():
    Sequential, LSTM, Dense = keras.models.Sequential, keras.layers.LSTM, keras.layers.Dense  # noqa: N806
    x = np.random.random((32, 21, 16)).astype("float32")
    model = Sequential()
    model.add(LSTM(32, input_shape=(10, 16), batch_size=32, stateful=True))
    model.add(Dense(16, activation="softmax"))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.train_on_batch(x[:, :10, :], np.reshape(x[:, 10, :], (32, 16)))
    lstm = model.layers[0]
    state = [s.clone() for s in lstm.states]
    assert all(s.abs().sum() > 0 for s in state)
    assert not any(s.requires_grad for s in lstm.states)
    model.train_on_batch(x[:, 10:20, :], np.reshape(x[:, 20, :], (32, 16)))
    assert not torch.equal(lstm.states[0], state[0])
    model.reset_states()
    assert all(float(s.abs().sum()) == 0 for s in lstm.states)
    model.layers[0].reset_states()


def test_stateful_carries_state_across_calls():
    x = torch.as_tensor(_x(2, 6, 3))
    stateful = LSTM(4, stateful=True, batch_size=2, return_sequences=True)
    model = ktorch.Sequential([ktorch.Input((3, 3), batch_size=2), stateful])
    plain = LSTM(4, return_sequences=True)
    plain(x)
    plain.set_weights(stateful.get_weights())
    first = model.predict_on_batch(x[:, :3])
    second = model.predict(x[:, 3:], batch_size=2, verbose=0)
    np.testing.assert_allclose(
        np.concatenate([first, second], 1), plain(x).detach().numpy(), atol=1e-6
    )
    stateful.reset_states()
    np.testing.assert_allclose(
        model.predict_on_batch(x[:, :3]), plain(x[:, :3]).detach().numpy(), atol=1e-6
    )
    assert model.get_weights()[0].shape == (3, 16)
    assert len(stateful.weights) == 3
    assert "rnn_state_0" not in stateful.state_dict()


def test_stateful_graph_building_does_not_run_the_layer():
    layer = GRU(3, stateful=True)
    inputs = ktorch.Input((4, 2), batch_size=5)
    output = layer(inputs)
    assert output.shape == (5, 3)
    assert all(float(s.abs().sum()) == 0 for s in layer.states)
    layer.reset_states([np.ones((5, 3), "float32")])
    ktorch.Model(inputs, Dense(2)(output))
    np.testing.assert_array_equal(layer.states[0].numpy(), 1.0)


def test_stateful_wrong_batch_size():
    layer = SimpleRNN(3, stateful=True)
    layer(torch.zeros(4, 2, 2))
    with pytest.raises(
        ValueError, match=r"simple_rnn.*Expected batch size: 4.*Received batch size: 3"
    ):
        layer(torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="batch size must be static"):
        ktorch.Sequential([ktorch.Input((2, 2)), LSTM(3, stateful=True)])


def test_stateful_fit_updates_state_not_through_optimizer():
    model = ktorch.Sequential([ktorch.Input((5, 4), batch_size=3), GRU(3, stateful=True), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(_x(), np.zeros((3, 1), "float32"), batch_size=3, epochs=2, shuffle=False, verbose=0)
    gru = model.layers[0]
    assert float(gru.states[0].abs().sum()) > 0
    state_ids = {id(s) for s in gru.states}
    assert not any(id(w) in state_ids for w in model.trainable_weights)


def test_dropout_statistics_and_constant_mask():
    torch.manual_seed(0)
    rate = 0.3
    layer = SimpleRNN(
        64,
        dropout=rate,
        activation=None,
        use_bias=False,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        return_sequences=True,
    )
    x = torch.ones(200, 4, 64)
    y = layer(x, training=True)
    dropped = (y == 0).float().mean()
    assert abs(float(dropped) - rate) < 0.02
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - rate)))
    torch.testing.assert_close(y[:, 1:], y[:, :1].expand_as(y[:, 1:]))
    assert not torch.equal(layer(x, training=True), y)
    torch.testing.assert_close(layer(x), x)


def test_recurrent_dropout_statistics():
    torch.manual_seed(0)
    rate = 0.25
    layer = SimpleRNN(
        64,
        recurrent_dropout=rate,
        activation=None,
        use_bias=False,
        kernel_initializer="identity",
        recurrent_initializer="identity",
        return_sequences=True,
    )
    x = torch.zeros(300, 3, 64)
    x[:, 0] = 1.0
    y = layer(x, training=True)
    mask = y[:, 1]
    assert abs(float((mask == 0).float().mean()) - rate) < 0.02
    torch.testing.assert_close(y[:, 2], mask * mask)


@pytest.mark.parametrize("layer_cls", [LSTM, GRU])
def test_gated_dropout_in_training_only(layer_cls):
    torch.manual_seed(0)
    layer = layer_cls(8, dropout=0.5, recurrent_dropout=0.5)
    x = torch.as_tensor(_x(16, 5, 4))
    inference = layer(x)
    torch.testing.assert_close(layer(x), inference)
    trained = layer(x, training=True)
    assert not torch.allclose(trained, inference)
    trained.sum().backward()
    assert all(w.grad is not None for w in layer.trainable_weights)
    masks = layer.cell._create_dropout_mask(torch.ones(1000, 8), 0.5)
    gates = 4 if layer_cls is LSTM else 3
    assert masks.shape == (gates, 1000, 8)
    assert abs(float((masks == 0).float().mean()) - 0.5) < 0.02
    only_input = layer_cls(8, dropout=0.5)
    only_input(x)
    assert not torch.allclose(only_input(x, training=True), only_input(x))


def _gradient_penalty_grads(make_layer, backend):
    """Gradients of a gradient penalty (create_graph=True) through a recurrent layer."""
    previous = ktorch.ops.get_backend()
    ktorch.ops.set_backend(backend)
    try:
        ktorch.utils.set_random_seed(0)
        layer = make_layer()
        x = torch.tensor(_x(batch=4, steps=6, features=3), requires_grad=True)
        mask = torch.ones(4, 6, dtype=torch.bool)
        mask[1, 4:] = False
        out = layer(x, mask=mask)
        (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        penalty = (grad_x.flatten(1).norm(dim=1) - 1).square().mean()
        return torch.autograd.grad(penalty, layer.trainable_weights)
    finally:
        ktorch.ops.set_backend(previous)


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: LSTM(5, return_sequences=True),
        lambda: GRU(5),
        lambda: GRU(5, reset_after=False, go_backwards=True),
    ],
    ids=["lstm", "gru", "gru_reset_before"],
)
def test_gradient_penalty_matches_the_reference(make_layer):
    # A WGAN-GP critic differentiates its input gradient: the fused ops must give the same
    # second-order gradients as plain autograd through the per-step reference.
    if not ktorch.ops.available()["cpu"]:
        pytest.skip("ktorch._C has no cpu kernel")
    fused = _gradient_penalty_grads(make_layer, "kernel")
    reference = _gradient_penalty_grads(make_layer, "reference")
    for got, want in zip(fused, reference, strict=True):
        assert float(want.abs().max()) > 0
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
