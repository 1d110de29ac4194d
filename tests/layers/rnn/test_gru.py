import numpy as np
import pytest
import torch

import ktorch
from ktorch.layers import GRU, RNN, GRUCell
from tests.keras_ref import keras_module
from tests.layers.rnn.parity import assert_parity, normalized


def _x(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


def _mask(batch=3, steps=5, seed=1):
    mask = np.random.default_rng(seed).random((batch, steps)) > 0.4
    mask[0] = False
    mask[1, 0] = False
    return mask


@pytest.mark.parametrize("reset_after", [True, False])
def test_weights_shapes(reset_after):
    layer = GRU(6, reset_after=reset_after)
    layer(torch.zeros(2, 3, 4))
    bias_shape = (2, 18) if reset_after else (18,)
    assert [tuple(w.shape) for w in layer.weights] == [(4, 18), (6, 18), bias_shape]
    assert [w.name for w in layer.weights] == ["kernel", "recurrent_kernel", "bias"]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True, "return_state": True},
        {"return_sequences": True, "go_backwards": True},
        {"use_bias": False, "activation": "relu"},
    ],
)
def test_parity(reset_after, options):
    assert_parity(
        GRU(5, reset_after=reset_after, **options),
        lambda k: k.layers.GRU(5, reset_after=reset_after, **options),
        _x(),
    )


@pytest.mark.parametrize("reset_after", [True, False])
def test_parity_mask_and_initial_state(reset_after):
    options = {"return_sequences": True, "return_state": True, "reset_after": reset_after}
    state = [np.random.default_rng(2).standard_normal((3, 5)).astype("float32")]
    assert_parity(
        GRU(5, **options),
        lambda k: k.layers.GRU(5, **options),
        _x(),
        mask=_mask(),
        initial_state=state,
    )
    assert_parity(
        GRU(5, go_backwards=True, **options),
        lambda k: k.layers.GRU(5, go_backwards=True, **options),
        _x(),
        mask=_mask(),
    )


@pytest.mark.parametrize("reset_after", [True, False])
def test_parity_cell_loop(reset_after):
    assert_parity(
        RNN(GRUCell(5, reset_after=reset_after), return_sequences=True),
        lambda k: k.layers.RNN(k.layers.GRUCell(5, reset_after=reset_after), return_sequences=True),
        _x(),
        mask=_mask(),
    )


def test_gradients_flow():
    layer = GRU(4, reset_after=False)
    x = torch.as_tensor(_x()).requires_grad_(True)
    layer(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in layer.trainable_weights)


def test_config_round_trip():
    keras = keras_module()
    options = {"reset_after": False, "recurrent_dropout": 0.1, "go_backwards": True}
    ours = GRU(4, **options)
    theirs = keras.layers.GRU(4, name=ours.name, **options)
    assert normalized(ours.get_config()) == normalized(theirs.get_config())
    assert GRU.from_config(ours.get_config()).get_config() == ours.get_config()
    cell = GRUCell(3, name="c", reset_after=False)
    ref = keras.layers.GRUCell(3, name="c", reset_after=False).get_config()
    assert normalized(cell.get_config()) == normalized(ref)


def test_stateful_carries_state_across_calls():
    x = torch.as_tensor(_x(2, 6, 3))
    stateful = GRU(4, stateful=True, batch_size=2, return_sequences=True)
    model = ktorch.Sequential([ktorch.Input((3, 3), batch_size=2), stateful])
    plain = GRU(4, return_sequences=True)
    plain(x)
    plain.set_weights(stateful.get_weights())
    first = model.predict_on_batch(x[:, :3])
    second = model.predict_on_batch(x[:, 3:])
    np.testing.assert_allclose(
        np.concatenate([first, second], 1), plain(x).detach().numpy(), atol=1e-6
    )
    stateful.reset_states()
    np.testing.assert_allclose(
        model.predict_on_batch(x[:, :3]), plain(x[:, :3]).detach().numpy(), atol=1e-6
    )


@pytest.fixture
def ops_backend():
    """Restores the ops backend after a test that changes it."""
    previous = ktorch.ops.get_backend()
    yield ktorch.ops.set_backend
    ktorch.ops.set_backend(previous)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_fused_op_and_reference_give_the_same_training_step(ops_backend, reset_after, go_backwards):
    # Masked steps, an initial state, input dropout and the weight gradients: the layer on the
    # fused op (where it is built) against the same layer on the pure-torch reference.
    x = torch.as_tensor(_x())
    mask = torch.as_tensor(_mask())
    state = torch.randn(3, 5)
    results = []
    for backend in ("auto", "reference"):
        ops_backend(backend)
        layer = GRU(
            5,
            reset_after=reset_after,
            go_backwards=go_backwards,
            dropout=0.3,
            seed=7,
            return_sequences=True,
            return_state=True,
        )
        layer.build((3, 5, 4))
        torch.manual_seed(0)
        with torch.no_grad():
            for weight in layer.weights:
                weight.copy_(torch.randn_like(weight) * 0.5)
        output, h = layer(x, mask=mask, initial_state=[state], training=True)
        (output.sum() + 2 * h.sum()).backward()
        results.append([output.detach(), h.detach()] + [w.grad for w in layer.weights])
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
