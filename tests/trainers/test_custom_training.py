"""Custom training: overridden train/test/predict steps and hand-written loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ktorch as keras


def _data(n=96, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    y = rng.standard_normal((n, 1)).astype("float32")
    return x, y


def _functional(cls=keras.Model, d=8):
    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(d,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(1)(hidden)
    return cls(inputs, outputs)


def _assert_same_weights(a, b, atol=1e-6):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, atol=atol)


class GuideModel(keras.Model):
    """The torch-backend guide's `train_step`, as written there."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable_weights = [v for v in self.trainable_weights]
        gradients = [v.value.grad for v in trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_functional_subclass_keeps_its_class_and_overrides():
    model = _functional(GuideModel)
    assert isinstance(model, GuideModel)
    assert isinstance(model, keras.models.Functional)
    assert type(model).__name__ == "GuideModel"
    assert type(model).train_step is GuideModel.train_step
    # The variant class is made once per user class.
    assert type(_functional(GuideModel)) is type(model)


def test_guide_train_step_matches_builtin_fit():
    x, y = _data()
    custom = _functional(GuideModel)
    builtin = _functional()
    _assert_same_weights(custom, builtin, atol=0)
    for model in (custom, builtin):
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    h_custom = custom.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    h_builtin = builtin.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    _assert_same_weights(custom, builtin)
    # The nested result of the compiled metrics is flattened into the logs, as in Keras.
    assert set(h_custom.history) == {"loss", "mae"}
    np.testing.assert_allclose(h_custom.history["mae"], h_builtin.history["mae"], rtol=1e-5)
    np.testing.assert_allclose(h_custom.history["loss"], h_builtin.history["loss"], rtol=1e-5)


class LowLevelModel(keras.Model):
    """The guide's lower-level variant: no compiled loss, metrics listed by the model."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
        self.loss_fn = keras.losses.MeanSquaredError()

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.loss_fn(y, y_pred)
        loss.backward()
        trainable_weights = [v for v in self.trainable_weights]
        gradients = [v.value.grad for v in trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable_weights)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        self.loss_tracker.update_state(self.loss_fn(y, y_pred))
        self.mae_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        # Listed here so that fit/evaluate reset them at the start of each epoch.
        return [self.loss_tracker, self.mae_metric]


def test_lower_level_train_and_test_step():
    x, y = _data()
    model = _functional(LowLevelModel)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    # Metrics were reset each epoch: the epoch value is the mean over that epoch only.
    results = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(results["loss"], np.mean((pred - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(results["mae"], np.mean(np.abs(pred - y)), rtol=1e-4)


class Keras2StyleModel(keras.Model):
    """The Keras 2 guide's step: `compiled_loss` with regularization losses."""

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compiled_loss(
            y, y_pred, sample_weight=sample_weight, regularization_losses=self.losses
        )
        loss.backward()
        self.optimizer.apply([w.grad for w in self.trainable_weights], self.trainable_weights)
        self.compiled_metrics.update_state(y, y_pred, sample_weight=sample_weight)
        return {m.name: m.result() for m in self.metrics if m.name != "loss"} | {"loss": loss}


def test_keras2_style_compiled_loss_with_regularization_and_sample_weight():
    x, y = _data()
    sw = np.linspace(0.5, 1.5, len(x)).astype("float32")
    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=(8,))
    outputs = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.1))(inputs)
    model = Keras2StyleModel(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    before = model.get_weights()
    batch_x, batch_y, batch_sw = x[:16], y[:16], sw[:16]
    model.fit(batch_x, batch_y, sample_weight=batch_sw, batch_size=16, epochs=1, verbose=0)
    # Reference: one SGD step on the weighted MSE plus the L2 penalty.
    kernel = torch.tensor(before[0], requires_grad=True)
    bias = torch.tensor(before[1], requires_grad=True)
    pred = torch.from_numpy(batch_x) @ kernel + bias
    per_sample = ((pred - torch.from_numpy(batch_y)) ** 2).mean(dim=1)
    loss = (per_sample * torch.from_numpy(batch_sw)).mean() + 0.1 * (kernel**2).sum()
    loss.backward()
    np.testing.assert_allclose(
        model.get_weights()[0], before[0] - 0.01 * kernel.grad.numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        model.get_weights()[1], before[1] - 0.01 * bias.grad.numpy(), atol=1e-6
    )


class ArgmaxModel(keras.Model):
    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return torch.argmax(self(x, training=False), dim=-1)


def test_predict_step_override():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8,))
    outputs = keras.layers.Dense(4)(inputs)
    model = ArgmaxModel(inputs, outputs)
    x, _ = _data()
    labels = model.predict(x, batch_size=32, verbose=0)
    logits = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_array_equal(labels, logits.argmax(axis=-1))


def test_subclass_with_own_constructor_arguments_is_not_functional():
    class Scaled(keras.Model):
        def __init__(self, units, activation):
            super().__init__()
            self.dense = keras.layers.Dense(units, activation=activation)

        def call(self, x):
            return self.dense(x)

    model = Scaled(3, "relu")
    assert not isinstance(model, keras.models.Functional)
    assert model(torch.ones(2, 5)).shape == (2, 3)


@pytest.mark.parametrize("use_torch_optimizer", [False, True])
def test_training_loop_from_scratch(use_torch_optimizer):
    """The guide's loop: forward, loss, zero_grad, backward, optimizer.apply / step."""
    x, y = _data(n=64)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16
    )
    model = _functional()
    reference = _functional()
    reference.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    loss_fn = keras.losses.MeanSquaredError()
    if use_torch_optimizer:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    losses = []
    for _ in range(2):
        for inputs, targets in loader:
            outputs = model(inputs, training=True)
            loss = loss_fn(targets, outputs)
            model.zero_grad()
            loss.backward()
            if use_torch_optimizer:
                optimizer.step()
            else:
                trainable_weights = [v for v in model.trainable_weights]
                gradients = [v.value.grad for v in trainable_weights]
                with torch.no_grad():
                    optimizer.apply(gradients, trainable_weights)
            losses.append(float(loss))
    assert losses[-1] < losses[0]
    if not use_torch_optimizer:
        # Same steps as fit with the same optimizer: same weights.
        reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        _assert_same_weights(model, reference)


def test_compile_config_round_trip_and_per_output_metric_lists():
    inputs = keras.Input((4,))
    a = keras.layers.Dense(1, name="a")(inputs)
    b = keras.layers.Dense(1, name="b")(inputs)
    model = keras.Model(inputs, [a, b])
    assert model.get_compile_config() is None
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.003),
        loss=["mse", "mae"],
        loss_weights=[1.0, 0.5],
        metrics=[["mae"], ["mse", "mae"]],
    )
    config = model.get_compile_config()
    assert config["loss"] == ["mse", "mae"] and config["loss_weights"] == [1.0, 0.5]
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    logs = model.evaluate(x, [x[:, :1], x[:, 1:2]], verbose=0, return_dict=True)
    assert {"a_mae", "b_mse", "b_mae"} <= set(logs) and "a_mse" not in logs
    clone = keras.Model(inputs, [a, b])
    clone.compile_from_config(config)
    assert clone.optimizer.learning_rate == pytest.approx(0.003)
    assert clone.get_compile_config() == config
