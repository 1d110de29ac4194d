"""The FAQ's training and modeling snippets (current Keras FAQ and the Keras 2 one), run after
`import ktorch as keras`, as written where they are self-contained. Where the FAQ leaves a
piece out (`ResNet50Base`, `data`), a small stand-in is defined here."""

import numpy as np
import torch

import ktorch as keras
from ktorch import layers
from ktorch.layers import BatchNormalization, Dense, Dropout, Input
from ktorch.models import Model, Sequential


def ResNet50Base(input_shape, weights=None):  # noqa: N802 - the FAQ's name
    return Sequential([Input(input_shape), layers.Conv2D(4, 3), layers.GlobalAveragePooling2D()])


def test_trainable_attribute_console_example():
    layer = Dense(3)
    layer.build(input_shape=(None, 3))
    assert layer.trainable
    assert [w.path for w in layer.trainable_weights] == [
        f"{layer.name}/kernel",
        f"{layer.name}/bias",
    ]
    layer.trainable = False
    assert layer.trainable_weights == []


def test_fine_tuning_with_fit():
    model = Sequential(
        [
            ResNet50Base(input_shape=(32, 32, 3), weights="pretrained"),
            Dense(10),
        ]
    )
    model.layers[0].trainable = False
    assert model.layers[0].trainable_weights == []
    assert len(model.trainable_weights) == 2
    base_before = [w.copy() for w in model.layers[0].get_weights()]
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.rand(8, 32, 32, 3), np.random.rand(8, 10), verbose=0)
    for a, b in zip(model.layers[0].get_weights(), base_before, strict=False):
        np.testing.assert_array_equal(a, b)


def test_custom_training_loop_updates_only_trainable_weights():
    model = Sequential(
        [
            ResNet50Base(input_shape=(32, 32, 3), weights="pretrained"),
            Dense(10),
        ]
    )
    model.layers[0].trainable = False
    loss_fn = keras.losses.MeanSquaredError()
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    dataset = [
        (np.random.rand(4, 32, 32, 3).astype("float32"), np.random.rand(4, 10).astype("float32"))
        for _ in range(2)
    ]
    frozen = [w.copy() for w in model.layers[0].get_weights()]
    head = [w.copy() for w in model.layers[1].get_weights()]
    for inputs, targets in dataset:
        predictions = model(inputs)
        loss_value = loss_fn(targets, predictions)
        gradients = torch.autograd.grad(loss_value, model.trainable_weights)
        optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=False))
    for a, b in zip(model.layers[0].get_weights(), frozen, strict=False):
        np.testing.assert_array_equal(a, b)
    assert all(
        not np.array_equal(a, b) for a, b in zip(model.layers[1].get_weights(), head, strict=False)
    )


def test_training_argument_dropout():
    x = torch.ones(1000, 10)
    y = Dropout(0.5)(x, training=True)
    assert 0.3 < float((y == 0).float().mean()) < 0.7
    assert torch.equal(Dropout(0.5)(x), x)


class AutoScaleDropout(layers.Layer):
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.dropout = Dropout(rate)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, inputs, training=None):
        return self.dropout(inputs, training=training) * self.scale


def test_trainable_and_training_are_independent():
    x = torch.ones(64, 8)
    layer = AutoScaleDropout(0.5)
    y = layer(x, training=True)
    assert len(layer.trainable_weights) == 1
    assert bool((y == 0).any())

    layer = AutoScaleDropout(0.5)
    layer.trainable = False
    y = layer(x, training=True)
    assert layer.trainable_weights == []
    assert bool((y == 0).any())


def test_batch_normalization_frozen_runs_in_inference_mode():
    bn = BatchNormalization()
    x = torch.randn(16, 4) * 3 + 5
    bn(x, training=True)
    bn.trainable = False
    moving = [w.copy() for w in bn.get_weights()]
    out = bn(x, training=True)
    for a, b in zip(bn.get_weights(), moving, strict=False):
        np.testing.assert_array_equal(a, b)
    mean, var = torch.from_numpy(moving[2]), torch.from_numpy(moving[3])
    expected = (x - mean) / torch.sqrt(var + bn.epsilon) * torch.from_numpy(
        moving[0]
    ) + torch.from_numpy(moving[1])
    torch.testing.assert_close(out, expected)


def test_history_after_validation_split():
    model = Sequential([Dense(4, activation="relu", input_dim=3), Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    x, y = np.random.rand(50, 3), np.random.rand(50, 1)
    hist = model.fit(x, y, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "val_loss"}


def test_keras2_freezing_example():
    data, labels = np.random.rand(16, 32), np.random.rand(16, 32)
    frozen_layer = Dense(32, trainable=False)
    assert not frozen_layer.trainable

    x = Input(shape=(32,))
    layer = Dense(32)
    layer.trainable = False
    y = layer(x)

    frozen_model = Model(x, y)
    frozen_model.compile(optimizer="rmsprop", loss="mse")

    layer.trainable = True
    trainable_model = Model(x, y)
    trainable_model.compile(optimizer="rmsprop", loss="mse")

    before = [w.copy() for w in layer.get_weights()]
    frozen_model.fit(data, labels, verbose=0)
    for a, b in zip(layer.get_weights(), before, strict=False):
        np.testing.assert_array_equal(a, b)
    trainable_model.fit(data, labels, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(layer.get_weights(), before, strict=False))


def test_keras2_sequential_pop():
    model = Sequential()
    model.add(Dense(32, activation="relu", input_dim=784))
    model.add(Dense(32, activation="relu"))
    assert len(model.layers) == 2
    model.pop()
    assert len(model.layers) == 1


def test_intermediate_layer_model_predict():
    inputs = Input((5,))
    hidden = Dense(4, name="my_layer")(inputs)
    model = Model(inputs, Dense(2)(hidden))
    data = np.random.rand(10, 5).astype("float32")

    layer_name = "my_layer"
    intermediate_layer_model = Model(inputs=model.input, outputs=model.get_layer(layer_name).output)
    intermediate_output = intermediate_layer_model.predict(data, verbose=0)
    np.testing.assert_allclose(
        intermediate_output, model.get_layer("my_layer")(data).detach().numpy(), rtol=1e-6
    )


def test_feature_extraction_convnet():
    model = Sequential(
        [
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.GlobalMaxPooling2D(),
            layers.Dense(10),
        ]
    )
    data = np.random.rand(2, 20, 20, 3).astype("float32")
    model(data)  # the FAQ's model gets its input shape from data
    extractor = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    features = extractor(data)
    assert len(features) == 7
    assert tuple(features[-1].shape) == (2, 10)
    torch.testing.assert_close(features[-1], model(data))


def test_predict_versus_call():
    model = Sequential([Input((3,)), Dense(2)])
    x = np.random.rand(100, 3).astype("float32")
    y_call = model(x)
    assert y_call.requires_grad
    y_predict = model.predict(x, batch_size=64, verbose=0)
    assert isinstance(y_predict, np.ndarray)
    np.testing.assert_allclose(y_predict, y_call.detach().numpy(), rtol=1e-6)


def test_train_and_test_on_batch():
    model = Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.random.rand(8, 3), np.random.rand(8, 1)
    first = model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    assert model.test_on_batch(x, y) < first


def test_keras2_larger_than_memory_train_on_batch_and_fit_generator():
    """`train_on_batch`/`test_on_batch`, and `fit_generator(data_generator, steps_per_epoch,
    epochs)` with the FAQ's positional arguments."""
    import warnings

    model = Sequential([Dense(8, input_shape=(4,), activation="relu"), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.random((64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    first = model.train_on_batch(x[:32], y[:32])
    assert np.isfinite(first)
    assert np.isfinite(model.test_on_batch(x[32:], y[32:]))

    def data_generator():
        while True:
            for i in range(0, 64, 16):
                yield x[i : i + 16], y[i : i + 16]

    steps_per_epoch, epochs = 4, 3
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        history = model.fit_generator(data_generator(), steps_per_epoch, epochs)
    assert len(history.history["loss"]) == 3
    assert model.optimizer.iterations == 1 + 12


def test_keras2_hdf5_input_predict(tmp_path):
    import h5py

    model = Sequential([Dense(3, input_shape=(5,))])
    data = np.random.random((20, 5)).astype("float32")
    with h5py.File(tmp_path / "file.hdf5", "w") as f:
        f["x_data"] = data
    with h5py.File(tmp_path / "file.hdf5", "r") as f:
        x_data = f["x_data"]
        predictions = model.predict(x_data)
    np.testing.assert_allclose(predictions, model.predict(data), atol=1e-6)


def test_reproducible_results_with_set_random_seed():
    def run():
        keras.utils.set_random_seed(1337)
        model = Sequential([Dense(8, input_shape=(4,), activation="relu"), Dropout(0.5), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        x = np.random.random((64, 4))
        y = np.random.random((64, 1))
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_shuffles_training_data_but_not_validation_data():
    seen_train, seen_val = [], []

    class Recorder(keras.layers.Layer):
        def call(self, inputs, training=None):
            (seen_train if training else seen_val).append(inputs[:, 0].detach().clone())
            return inputs

    model = Sequential([Input((1,)), Recorder(), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.arange(40, dtype="float32").reshape(40, 1)
    seen_val.clear()  # the graph's shape probe
    keras.utils.set_random_seed(0)
    model.fit(x, x, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    epoch1 = torch.cat(seen_train[:4]).tolist()
    epoch2 = torch.cat(seen_train[4:8]).tolist()
    # The last 25% (30..39) are held out; the rest is reshuffled globally every epoch.
    assert sorted(epoch1) == sorted(epoch2) == list(range(30))
    assert epoch1 != epoch2 and epoch1 != list(range(30))
    val = torch.cat(seen_val).tolist()
    assert val == list(range(30, 40)) * 2
