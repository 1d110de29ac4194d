"""compile/fit/evaluate/predict semantics, including the FAQ's training questions."""

import numpy as np
import pytest
import torch

import ktorch
from ktorch import layers


def _data(n=64, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5).astype("int64")
    return x, np.minimum(y, classes - 1)


def _model(d=6, classes=3, **dense_kwargs):
    return ktorch.Sequential(
        [
            ktorch.Input((d,)),
            layers.Dense(16, activation="relu", **dense_kwargs),
            layers.Dense(classes, activation="softmax"),
        ]
    )


def test_fit_before_compile_errors():
    x, y = _data()
    with pytest.raises(RuntimeError, match="compile"):
        _model().fit(x, y, verbose=0)


def test_fit_learns_and_history():
    x, y = _data(256)
    model = _model()
    model.compile(
        optimizer=ktorch.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 8
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.7
    assert model.history is history


def test_validation_split_is_last_fraction_unshuffled():
    x, y = _data(100)
    model = _model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, batch_size=10, validation_split=0.2, verbose=0)
    # After the single epoch, the recorded val_loss is the loss on the last 20 samples.
    expected = model.evaluate(x[80:], y[80:], batch_size=10, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-5)


def test_validation_split_rejects_generators():
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy")

    def gen():
        while True:
            yield _data(8)

    with pytest.raises(ValueError, match="validation_split"):
        model.fit(gen(), steps_per_epoch=2, validation_split=0.5, verbose=0)


class Recorder(ktorch.Sequential):
    def train_step(self, data):
        self.seen.append(data[0][:, -1].clone())
        return super().train_step(data)


def _recorder(shuffle):
    x = np.arange(40, dtype="float32").reshape(40, 1).repeat(2, axis=1)
    y = np.zeros(40, dtype="int64")
    model = Recorder([ktorch.Input((2,)), layers.Dense(2)])
    model.seen = []
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=shuffle, verbose=0)
    return torch.cat(model.seen).view(2, 40)


def test_shuffle_false_keeps_order():
    seen = _recorder(False)
    assert seen[0].tolist() == list(range(40)) == seen[1].tolist()


def test_shuffle_true_reshuffles_each_epoch_globally():
    seen = _recorder(True)
    assert sorted(seen[0].tolist()) == list(range(40)) == sorted(seen[1].tolist())
    assert seen[0].tolist() != list(range(40))
    assert seen[0].tolist() != seen[1].tolist()


def test_training_loss_includes_regularization_and_dropout_only_in_training():
    x, y = _data(32)
    model = ktorch.Sequential(
        [
            ktorch.Input((6,)),
            layers.Dense(8, kernel_regularizer=ktorch.regularizers.L2(10.0)),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=ktorch.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy"
    )
    test_loss = model.evaluate(x, y, batch_size=32, verbose=0)
    train_loss = model.train_on_batch(x, y)
    penalty = 10.0 * float((model.layers[0].kernel.detach() ** 2).sum())
    assert train_loss == pytest.approx(test_loss + penalty, rel=1e-4)


def test_predict_matches_call_and_returns_numpy():
    x, _ = _data(70)
    model = _model()
    predictions = model.predict(x, batch_size=16, verbose=0)
    assert isinstance(predictions, np.ndarray) and predictions.shape == (70, 3)
    np.testing.assert_allclose(predictions, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x[:5]), predictions[:5], rtol=1e-5)


def test_evaluate_return_forms():
    x, y = _data(40)
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    values = model.evaluate(x, y, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "accuracy"]
    assert values == pytest.approx([logs["loss"], logs["accuracy"]])
    model.compile(loss="sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, y, verbose=0), float)


def test_reproducible_with_seed():
    def run():
        ktorch.utils.set_random_seed(123)
        x, y = _data(64)
        model = ktorch.Sequential(
            [
                ktorch.Input((6,)),
                layers.Dense(8),
                layers.Dropout(0.5),
                layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run(), strict=False):
        np.testing.assert_array_equal(a, b)


def test_sample_weight_zero_ignores_samples():
    x, y = _data(20)
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy")
    weights = np.r_[np.ones(10), np.zeros(10)].astype("float32")
    weighted = model.evaluate(x, y, sample_weight=weights, batch_size=20, verbose=0)
    subset = model.evaluate(x[:10], y[:10], batch_size=10, verbose=0)
    # Keras's sum_over_batch_size divides by all 20 samples.
    assert weighted == pytest.approx(subset / 2, rel=1e-5)


def test_class_weight_changes_loss_like_sample_weight():
    x, y = _data(30)
    model = _model()
    model.compile(
        optimizer=ktorch.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy"
    )
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    by_class = model.train_on_batch(x, y, class_weight=class_weight)
    sw = np.array([class_weight[int(c)] for c in y], dtype="float32")
    by_sample = model.train_on_batch(x, y, sample_weight=sw)
    assert by_class == pytest.approx(by_sample, rel=1e-6)


def test_initial_epoch_and_steps_per_epoch():
    x, y = _data(64)
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=5, initial_epoch=3, batch_size=8, steps_per_epoch=3, verbose=0)
    assert history.epoch == [3, 4]


def test_torch_optimizer_and_torch_loss_module():
    x, y = _data(64)
    model = ktorch.Sequential(
        [ktorch.Input((6,)), layers.Dense(16, activation="relu"), layers.Dense(3)]
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.compile(optimizer=optimizer, loss=torch.nn.CrossEntropyLoss(), metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0)[0] < before


def test_compile_captures_trainable_gan_pattern():
    discriminator = ktorch.Sequential([ktorch.Input((4,)), layers.Dense(1, activation="sigmoid")])
    generator = ktorch.Sequential([ktorch.Input((2,)), layers.Dense(4)])
    discriminator.compile(optimizer=ktorch.optimizers.SGD(0.1), loss="binary_crossentropy")
    discriminator.trainable = False
    z = ktorch.Input((2,))
    gan = ktorch.Model(z, discriminator(generator(z)))
    gan.compile(optimizer=ktorch.optimizers.SGD(0.1), loss="binary_crossentropy")

    d_before = [w.copy() for w in discriminator.get_weights()]
    g_before = [w.copy() for w in generator.get_weights()]
    gan.train_on_batch(np.random.rand(8, 2).astype("float32"), np.ones((8, 1), "float32"))
    for a, b in zip(discriminator.get_weights(), d_before, strict=False):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(generator.get_weights(), g_before, strict=False)
    )

    discriminator.train_on_batch(
        np.random.rand(8, 4).astype("float32"), np.zeros((8, 1), "float32")
    )
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(discriminator.get_weights(), d_before, strict=False)
    )
    assert not discriminator.trainable  # the attribute itself is untouched


def test_custom_train_step_torch_guide_pattern():
    class CustomModel(ktorch.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1)

        def call(self, x):
            return self.dense(x)

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

    x = np.random.rand(64, 3).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model = CustomModel()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_multi_output_losses_and_metrics_names():
    x = ktorch.Input((4,))
    h = layers.Dense(8, activation="relu")(x)
    a = layers.Dense(1, name="reg")(h)
    b = layers.Dense(3, activation="softmax", name="cls")(h)
    model = ktorch.Model(x, {"reg": a, "cls": b})
    model.compile(
        optimizer="adam",
        loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
        loss_weights={"reg": 0.5, "cls": 1.0},
        metrics={"cls": ["accuracy"]},
    )
    data = np.random.rand(32, 4).astype("float32")
    targets = {"reg": np.random.rand(32, 1).astype("float32"), "cls": np.random.randint(0, 3, 32)}
    logs = model.fit(data, targets, epochs=1, batch_size=8, verbose=0).history
    assert {"loss", "reg_loss", "cls_loss", "cls_accuracy"} <= set(logs)
    total = model.evaluate(data, targets, batch_size=32, verbose=0, return_dict=True)
    assert total["loss"] == pytest.approx(0.5 * total["reg_loss"] + total["cls_loss"], rel=1e-5)


def test_dataloader_and_generator_inputs():
    x, y = _data(48)
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16
    )
    history = model.fit(loader, epochs=2, verbose=0, validation_data=loader)
    assert len(history.history["val_loss"]) == 2

    def gen():
        while True:
            yield x[:16], y[:16]

    history = model.fit(gen(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_cardinality_mismatch_error():
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="cardinality"):
        model.fit(np.zeros((10, 6), "float32"), np.zeros(9, "int64"), verbose=0)


def test_deferred_model_compiles_then_builds_on_fit():
    x, y = _data(32)
    model = ktorch.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3)])
    model.compile(
        optimizer="adam", loss=ktorch.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.built and len(model.trainable_weights) == 4


def test_progress_output(capsys):
    x, y = _data(32)
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4" in out and "loss:" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    assert "4/4" in capsys.readouterr().out


def test_callbacks_receive_logs():
    x, y = _data(32)
    model = _model()
    model.compile(loss="sparse_categorical_crossentropy")
    seen = []

    class Spy(ktorch.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch", epoch, logs["loss"]))

    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Spy()])
    assert [s[0] for s in seen] == [0, 1, "epoch"]
    assert all(isinstance(s[-1], float) for s in seen)


@pytest.mark.slow
def test_jit_compile_matches_eager_without_recompiling():
    from torch._dynamo.utils import counters

    x, y = _data(64)

    def run(jit):
        ktorch.utils.set_random_seed(7)
        model = ktorch.Sequential(
            [
                ktorch.Input((6,)),
                layers.Dense(16, activation="relu", activity_regularizer="l2"),
                layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=jit)
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
        return model.get_weights(), history.history["loss"]

    counters.clear()
    (eager_weights, eager_loss), (jit_weights, jit_loss) = run(False), run(True)
    for a, b in zip(eager_weights, jit_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eager_loss, jit_loss, rtol=1e-5)
    # Per-call bookkeeping must not make every step a new graph.
    assert counters["stats"]["unique_graphs"] <= 2


def test_evaluate_unbuilt_model_on_generator_uses_every_batch():
    x, y = _data(32)
    model = ktorch.Sequential([layers.Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    seen = []

    class Count(ktorch.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)

    model.evaluate(iter(batches), steps=4, verbose=0, callbacks=[Count()])
    assert seen == [0, 1, 2, 3]
