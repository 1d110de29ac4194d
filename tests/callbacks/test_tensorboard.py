"""TensorBoard: event files read back with TensorBoard's own reader equal the History."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import ktorch
from ktorch.callbacks.callback_list import CallbackList
from ktorch.trainers import distributed

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _events(directory) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(directory),
        size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0},
    )
    accumulator.Reload()
    return accumulator


def _scalars(accumulator, tag):
    events = accumulator.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _model(learning_rate=0.05):
    model = ktorch.Sequential(
        [ktorch.Input((3,)), ktorch.layers.Dense(4, activation="relu"), ktorch.layers.Dense(1)]
    )
    model.compile(ktorch.optimizers.SGD(learning_rate=learning_rate), loss="mse", metrics=["mae"])
    return model


def test_epoch_scalars_equal_history(tmp_path):
    model = _model()
    x, y = _data()
    schedule = ktorch.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = model.fit(
        x,
        y,
        batch_size=16,
        validation_split=0.25,
        epochs=3,
        verbose=0,
        callbacks=[schedule, ktorch.callbacks.TensorBoard(log_dir=tmp_path)],
    )
    train = _events(tmp_path / "train")
    validation = _events(tmp_path / "validation")
    for name in ("loss", "mae", "learning_rate"):
        steps, values = _scalars(train, f"epoch_{name}")
        assert steps == [0, 1, 2]
        np.testing.assert_allclose(values, history.history[name], rtol=1e-6)
    for name in ("loss", "mae"):
        steps, values = _scalars(validation, f"epoch_{name}")
        assert steps == [0, 1, 2]
        np.testing.assert_allclose(values, history.history[f"val_{name}"], rtol=1e-6)
    assert not any(tag.startswith("epoch_val_") for tag in train.Tags()["scalars"])
    # After every validation pass: the metrics against the optimizer's step count (3 per epoch).
    steps, values = _scalars(validation, "evaluation_loss_vs_iterations")
    assert steps == [3, 6, 9]
    np.testing.assert_allclose(values, history.history["val_loss"], rtol=1e-6)


def test_batch_scalars_every_update_freq_batches(tmp_path):
    model = _model()
    x, y = _data()
    seen = []
    record = ktorch.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(logs["loss"])
    )
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[record, ktorch.callbacks.TensorBoard(log_dir=tmp_path, update_freq=2)],
    )
    steps, values = _scalars(_events(tmp_path / "train"), "batch_loss")
    assert steps == [2, 4, 6, 8]
    np.testing.assert_allclose(values, [seen[s - 1] for s in steps], rtol=1e-6)
    assert "batch_mae" in _events(tmp_path / "train").Tags()["scalars"]


def test_update_freq_batch_writes_every_batch(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        callbacks=[
            ktorch.callbacks.TensorBoard(
                log_dir=tmp_path, update_freq="batch", write_steps_per_second=True
            )
        ],
    )
    train = _events(tmp_path / "train")
    assert _scalars(train, "batch_loss")[0] == [1, 2, 3, 4]
    assert _scalars(train, "batch_steps_per_second")[0] == [1, 2, 3, 4]
    steps, rates = _scalars(train, "epoch_steps_per_second")
    assert steps == [0, 1] and all(r > 0 for r in rates)


def test_histograms_and_images_of_every_weight(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[ktorch.callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)],
    )
    train = _events(tmp_path / "train")
    for weight in model.weights:
        events = train.Histograms(f"{weight.path}/histogram")
        assert [e.step for e in events] == [0, 1]
        last = events[-1].histogram_value
        values = weight.detach().numpy().astype(np.float64)
        assert last.num == values.size
        assert last.min == pytest.approx(values.min())
        assert last.max == pytest.approx(values.max())
        assert last.sum == pytest.approx(values.sum(), rel=1e-5, abs=1e-6)
        # As Keras: a weight squeezing to 1 to 3 axes is an image; a single number is not.
        has_image = f"{weight.path}/image" in train.Tags()["images"]
        assert has_image == (1 <= values.squeeze().ndim <= 3)


def test_model_graph_is_the_model_json(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ktorch.callbacks.TensorBoard(tmp_path)])
    train = _events(tmp_path / "train")
    assert "keras" in train.Tags()["tensors"]
    (event,) = train.Tensors("keras")
    assert json.loads(event.tensor_proto.string_val[0]) == json.loads(model.to_json())
    metadata = train.SummaryMetadata("keras")
    assert metadata.plugin_data.plugin_name == "graph_keras_model"


def test_subclassed_model_graph_warns(tmp_path):
    class Subclassed(ktorch.Model):
        def __init__(self):
            super().__init__()
            self.dense = ktorch.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model.compile("sgd", "mse")
    x, y = _data()
    with pytest.warns(UserWarning, match="no graph written"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ktorch.callbacks.TensorBoard(tmp_path)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[ktorch.callbacks.TensorBoard(tmp_path, write_graph=False)],
        )


def test_embeddings_for_the_projector(tmp_path):
    metadata = tmp_path / "labels.tsv"
    metadata.write_text("".join(f"word{i}\n" for i in range(10)))
    model = ktorch.Sequential(
        [
            ktorch.Input((5,), dtype="int64"),
            ktorch.layers.Embedding(10, 4, name="words"),
            ktorch.layers.Flatten(),
            ktorch.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).integers(0, 10, (32, 5))
    y = np.zeros((32, 1), dtype="float32")
    callback = ktorch.callbacks.TensorBoard(
        tmp_path / "logs", embeddings_freq=1, embeddings_metadata={"words": str(metadata)}
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    train = tmp_path / "logs" / "train"
    config = (train / "projector_config.pbtxt").read_text()
    assert "words" in config
    (tensors,) = train.glob("*/words/tensors.tsv")
    written = np.loadtxt(tensors, delimiter="\t")
    np.testing.assert_allclose(written, model.get_layer("words").embeddings.detach().numpy())
    labels = (tensors.parent / "metadata.tsv").read_text().split()
    assert labels == [f"word{i}" for i in range(10)]


def test_unknown_embedding_metadata_layer_raises(tmp_path):
    model = _model()
    x, y = _data()
    callback = ktorch.callbacks.TensorBoard(
        tmp_path, embeddings_freq=1, embeddings_metadata={"nope": "labels.tsv"}
    )
    with pytest.raises(ValueError, match="Unrecognized `Embedding` layer names"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profile_batch": 2}, "profile_batch"),
        ({"profile_batch": "2,4"}, "profile_batch"),
        ({"update_freq": 0}, "update_freq"),
        ({"update_freq": "step"}, "update_freq"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ktorch.callbacks.TensorBoard(**kwargs)


def test_batch_hooks_only_with_integer_update_freq():
    assert not CallbackList([ktorch.callbacks.TensorBoard()]).needs_batch("train_end")
    assert CallbackList([ktorch.callbacks.TensorBoard(update_freq=5)]).needs_batch("train_end")


def test_only_the_main_process_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    model = _model()
    x, y = _data()
    model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=1,
        verbose=0,
        callbacks=[ktorch.callbacks.TensorBoard(tmp_path, histogram_freq=1, update_freq=1)],
    )
    assert list(tmp_path.iterdir()) == []


def test_faq_tensorboard_with_fit(tmp_path):
    import ktorch as keras

    x, y = _data()
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    tensorboard_callback = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))
    history = model.fit(
        x, y, validation_split=0.2, epochs=2, callbacks=[tensorboard_callback], verbose=0
    )
    steps, values = _scalars(_events(tmp_path / "logs" / "validation"), "epoch_loss")
    assert steps == [0, 1]
    np.testing.assert_allclose(values, history.history["val_loss"], rtol=1e-6)


def test_tensorboard_not_imported_with_ktorch():
    code = (
        "import sys, ktorch; "
        "print(any(m == 'tensorboard' or m.startswith(('tensorboard.', 'torch.utils.tensorboard'))"
        " for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
