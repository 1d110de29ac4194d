"""Loss classes and functions: numeric parity with Keras 3 for every reduction and weighting."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ktorch import losses

REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]
# Keys ktorch keeps in a config where Keras 3 drops the argument (so it survives a round trip).
EXTRA_CONFIG_KEYS = {
    "CosineSimilarity": {"axis"},
    "Huber": {"delta"},
    "SparseCategoricalCrossentropy": {"axis"},
}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _f32(x):
    return np.asarray(x, dtype="float32")


def regression(rng):
    return _f32(rng.standard_normal((6, 4))), _f32(rng.standard_normal((6, 4)))


def positive(rng):
    return _f32(rng.uniform(0.1, 2.0, (6, 4))), _f32(rng.uniform(0.1, 2.0, (6, 4)))


def hinge_01(rng):
    return _f32(rng.integers(0, 2, (6, 4))), _f32(rng.standard_normal((6, 4)))


def hinge_pm1(rng):
    return _f32(rng.choice([-1.0, 1.0], (6, 4))), _f32(rng.standard_normal((6, 4)))


def one_hot_scores(rng):
    return _f32(np.eye(5)[rng.integers(0, 5, 6)]), _f32(rng.standard_normal((6, 5)))


def distributions(rng):
    return _f32(_softmax(rng.standard_normal((6, 5)))), _f32(_softmax(rng.standard_normal((6, 5))))


def binary(from_logits, shape=(6, 3)):
    def make(rng):
        logits = rng.standard_normal(shape) * 3
        y_pred = logits if from_logits else 1 / (1 + np.exp(-logits))
        return _f32(rng.integers(0, 2, shape)), _f32(y_pred)

    return make


def binary_flat_labels(rng):
    y_true, y_pred = binary(False, (6, 1))(rng)
    return y_true[:, 0], y_pred


def categorical(from_logits, shape=(6, 5), axis=-1):
    def make(rng):
        num_classes = shape[axis]
        labels = rng.integers(
            0, num_classes, shape[:axis] + shape[axis + 1 :] if axis != -1 else shape[:-1]
        )
        y_true = np.moveaxis(np.eye(num_classes)[labels], -1, axis)
        logits = rng.standard_normal(shape) * 2
        # Unnormalized probabilities check the renormalization Keras applies.
        y_pred = logits if from_logits else _softmax(logits, axis) * rng.uniform(0.5, 2.0)
        return _f32(y_true), _f32(y_pred)

    return make


def sparse(from_logits, shape=(6, 5), axis=-1, label_shape=None, float_labels=False, values=None):
    def make(rng):
        num_classes = shape[axis]
        label_dims = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        labels = rng.integers(0, num_classes, label_dims)
        if values is not None:
            labels.flat[: len(values)] = values
        if label_shape is not None:
            labels = labels.reshape(label_shape)
        if float_labels:
            labels = labels.astype("float32")
        logits = rng.standard_normal(shape) * 2
        y_pred = logits if from_logits else _softmax(logits, axis)
        return labels, _f32(y_pred)

    return make


def ctc_inputs(rng):
    labels = rng.integers(1, 5, (4, 3))
    labels[0, 2] = 0
    labels[2, 1:] = 0
    return labels, _f32(rng.standard_normal((4, 8, 5)))


def embeddings(rng):
    x = rng.standard_normal((8, 4))
    return rng.integers(0, 3, 8), _f32(x / np.linalg.norm(x, axis=1, keepdims=True))


def segmentation(rng):
    return _f32(rng.integers(0, 2, (4, 6))), _f32(rng.uniform(0, 1, (4, 6)))


def class_probabilities(rng):
    return rng.integers(0, 5, 6), _f32(_softmax(rng.standard_normal((6, 5))))


# (class name, constructor arguments, input maker)
SPECS = [
    ("MeanSquaredError", {}, regression),
    ("MeanAbsoluteError", {}, regression),
    ("MeanAbsolutePercentageError", {}, regression),
    ("MeanSquaredLogarithmicError", {}, positive),
    ("CosineSimilarity", {}, regression),
    ("Huber", {}, regression),
    ("Huber", {"delta": 0.5}, regression),
    ("LogCosh", {}, regression),
    ("Hinge", {}, hinge_01),
    ("Hinge", {}, hinge_pm1),
    ("SquaredHinge", {}, hinge_01),
    ("SquaredHinge", {}, hinge_pm1),
    ("CategoricalHinge", {}, one_hot_scores),
    ("KLDivergence", {}, distributions),
    ("Poisson", {}, positive),
    ("BinaryCrossentropy", {}, binary(False)),
    ("BinaryCrossentropy", {"from_logits": True}, binary(True)),
    ("BinaryCrossentropy", {"label_smoothing": 0.2}, binary(False)),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, binary(True)),
    ("BinaryCrossentropy", {"from_logits": True, "axis": 0}, binary(True, (3, 6))),
    ("BinaryCrossentropy", {}, binary_flat_labels),
    ("BinaryFocalCrossentropy", {}, binary(False)),
    ("BinaryFocalCrossentropy", {"from_logits": True, "gamma": 1.5}, binary(True)),
    (
        "BinaryFocalCrossentropy",
        {"apply_class_balancing": True, "alpha": 0.4, "label_smoothing": 0.1},
        binary(False),
    ),
    ("CategoricalCrossentropy", {}, categorical(False)),
    ("CategoricalCrossentropy", {"from_logits": True}, categorical(True)),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, categorical(False)),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, categorical(True)),
    ("CategoricalCrossentropy", {"from_logits": True}, categorical(True, (4, 3, 5))),
    ("CategoricalCrossentropy", {"axis": 1}, categorical(False, (4, 5, 3), axis=1)),
    ("CategoricalFocalCrossentropy", {}, categorical(False)),
    ("CategoricalFocalCrossentropy", {"from_logits": True, "alpha": 0.5}, categorical(True)),
    (
        "CategoricalFocalCrossentropy",
        {"gamma": 3.0, "label_smoothing": 0.1},
        categorical(False),
    ),
    ("SparseCategoricalCrossentropy", {}, sparse(False)),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, sparse(True)),
    (
        "SparseCategoricalCrossentropy",
        {"from_logits": True},
        sparse(True, label_shape=(6, 1), float_labels=True),
    ),
    ("SparseCategoricalCrossentropy", {}, sparse(False, label_shape=(6, 1))),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, sparse(True, (4, 3, 5))),
    ("SparseCategoricalCrossentropy", {}, sparse(False, (4, 3, 5))),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "axis": 1}, sparse(True, (4, 5, 3), 1)),
    (
        "SparseCategoricalCrossentropy",
        {"from_logits": True, "ignore_class": 2},
        sparse(True, values=[2, 2, 0]),
    ),
    (
        "SparseCategoricalCrossentropy",
        {"ignore_class": 1},
        sparse(False, (4, 3, 5), values=[1, 1, 1, 0]),
    ),
    ("CTC", {}, ctc_inputs),
    ("Dice", {}, segmentation),
    ("Dice", {"axis": [1]}, segmentation),
    ("Tversky", {"alpha": 0.3, "beta": 0.7}, segmentation),
    ("Tversky", {"axis": [1]}, segmentation),
    ("Circle", {}, embeddings),
    ("Circle", {"gamma": 10.0, "margin": 0.2, "remove_diagonal": False}, embeddings),
    ("CategoricalGeneralizedCrossEntropy", {"q": 0.7}, class_probabilities),
]

SPEC_IDS = [f"{i}-{name}" for i, (name, _, _) in enumerate(SPECS)]


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _weight_variants(rng, values_shape):
    """Sample weights to try: none, one per sample (also as a column), one per element."""
    variants = [None]
    if len(values_shape) == 0:
        return [*variants, np.float32(0.7)]
    batch = values_shape[0]
    per_sample = rng.uniform(0.0, 2.0, batch).astype("float32")
    per_sample[0] = 0.0
    if len(values_shape) == 1:
        variants += [per_sample, per_sample[:, None]]
    variants.append(rng.uniform(0.0, 2.0, values_shape).astype("float32"))
    return variants


@pytest.mark.parametrize(("name", "kwargs", "make"), SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_keras(keras, name, kwargs, make, reduction):
    rng = _rng(len(name))
    y_true, y_pred = make(rng)
    theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    ours = getattr(losses, name)(reduction=reduction, **kwargs)
    values_shape = tuple(
        getattr(keras.losses, name)(reduction="none", **kwargs)(y_true, y_pred).shape
    )
    for sample_weight in _weight_variants(rng, values_shape):
        expected = _numpy(theirs(y_true, y_pred, sample_weight=sample_weight))
        result = ours(y_true, y_pred, sample_weight=sample_weight)
        assert isinstance(result, torch.Tensor)
        assert result.dtype == torch.float32
        assert tuple(result.shape) == expected.shape
        np.testing.assert_allclose(result.detach().numpy(), expected, atol=1e-5, rtol=1e-5)
        torch_inputs = ours(torch.as_tensor(y_true), torch.as_tensor(y_pred), sample_weight)
        np.testing.assert_allclose(torch_inputs.detach().numpy(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "kwargs", "make"), SPECS, ids=SPEC_IDS)
def test_function_form_matches_keras(keras, name, kwargs, make):
    y_true, y_pred = make(_rng(1))
    ours = getattr(losses, name)(**kwargs)
    theirs = getattr(keras.losses, name)(**kwargs)
    assert ours.fn.__name__ == theirs.fn.__name__
    assert getattr(losses, ours.fn.__name__) is ours.fn
    y_pred_t = torch.as_tensor(y_pred)
    y_true_t = torch.as_tensor(y_true, dtype=torch.float32)
    if name in ("CTC", "Circle", "CategoricalGeneralizedCrossEntropy"):
        y_true_t = torch.as_tensor(y_true)
    try:
        expected = theirs.fn(y_true_t, y_pred_t, **theirs._fn_kwargs)
    except ValueError:
        with pytest.raises(ValueError, match="shape"):
            ours.fn(y_true_t, y_pred_t, **ours._fn_kwargs)
        return
    result = ours.fn(y_true_t, y_pred_t, **ours._fn_kwargs)
    assert result.shape == expected.shape
    np.testing.assert_allclose(_numpy(result), _numpy(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "kwargs", "make"), SPECS, ids=SPEC_IDS)
def test_gradients_flow(name, kwargs, make):
    y_true, y_pred = make(_rng(2))
    y_pred = torch.tensor(y_pred, requires_grad=True)
    loss = getattr(losses, name)(**kwargs)(y_true, y_pred)
    loss.backward()
    assert y_pred.grad is not None
    assert torch.isfinite(y_pred.grad).all()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("MeanSquaredError", {"name": "my_mse", "reduction": "sum"}),
        ("CosineSimilarity", {"axis": 0, "reduction": None}),
        ("Huber", {"delta": 2.0}),
        ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1, "axis": 0}),
        (
            "BinaryFocalCrossentropy",
            {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.0, "from_logits": True},
        ),
        ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2, "axis": 1}),
        ("CategoricalFocalCrossentropy", {"alpha": 0.1, "gamma": 4.0}),
        (
            "SparseCategoricalCrossentropy",
            {"from_logits": True, "ignore_class": -1, "reduction": "mean_with_sample_weight"},
        ),
        ("Dice", {"axis": [1, 2]}),
        ("Tversky", {"alpha": 0.2, "beta": 0.8}),
        ("Circle", {"gamma": 30.0, "margin": 0.1, "remove_diagonal": False}),
        ("CategoricalGeneralizedCrossEntropy", {"q": 0.3}),
        ("MeanAbsoluteError", {}),
        ("MeanAbsolutePercentageError", {}),
        ("MeanSquaredLogarithmicError", {}),
        ("LogCosh", {}),
        ("Hinge", {}),
        ("SquaredHinge", {}),
        ("CategoricalHinge", {}),
        ("KLDivergence", {}),
        ("Poisson", {}),
        ("CTC", {}),
    ],
)
def test_config_matches_keras(keras, name, kwargs):
    ours = getattr(losses, name)(**kwargs)
    theirs = getattr(keras.losses, name)(**kwargs)
    extra = EXTRA_CONFIG_KEYS.get(name, set())
    config = ours.get_config()
    assert {k: v for k, v in config.items() if k not in extra} == theirs.get_config()
    for key in extra:
        assert config[key] == kwargs.get(key, getattr(ours, key))
    serialized = losses.serialize(ours)
    assert serialized["module"] == "keras.losses"
    assert serialized["class_name"] == name
    rebuilt = losses.deserialize(keras.losses.serialize(theirs))
    assert type(rebuilt) is type(ours)
    assert {k: v for k, v in rebuilt.get_config().items() if k not in extra} == theirs.get_config()
    from keras.src.losses import ALL_OBJECTS_DICT as keras_objects

    if name in keras_objects:
        assert type(keras.losses.deserialize(serialized)).__name__ == name
    again = losses.deserialize(serialized)
    assert type(again) is type(ours)
    assert again.get_config() == config


def test_class_attributes():
    loss = losses.BinaryFocalCrossentropy(from_logits=True, gamma=3.0)
    assert loss.from_logits is True and loss.gamma == 3.0 and loss.axis == -1
    assert losses.SparseCategoricalCrossentropy(ignore_class=0).ignore_class == 0
    assert losses.CategoricalCrossentropy().from_logits is False
    assert losses.MeanSquaredError().name == "mean_squared_error"
    assert losses.Huber().name == "huber_loss"


def test_sparse_from_logits_is_one_fused_call(monkeypatch):
    calls = []
    original = torch.nn.functional.cross_entropy

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    def no_one_hot(*args, **kwargs):
        raise AssertionError("sparse crossentropy must not build a one-hot tensor")

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", counting)
    monkeypatch.setattr(torch.nn.functional, "one_hot", no_one_hot)
    logits = torch.randn(4, 7, 10)
    labels = torch.randint(0, 10, (4, 7))
    value = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert calls == [torch.Size([28, 10])]
    expected = original(logits.reshape(-1, 10), labels.reshape(-1))
    torch.testing.assert_close(value, expected)


def test_sparse_labels_accept_float_and_trailing_axis():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 1, 2, 3])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = loss(labels, logits)
    torch.testing.assert_close(loss(labels.float(), logits), expected)
    torch.testing.assert_close(loss(labels.float()[:, None], logits), expected)
    torch.testing.assert_close(loss(labels.numpy().astype("float64"), logits), expected)
    per_sample = losses.sparse_categorical_crossentropy(labels[:, None].float(), logits, True)
    torch.testing.assert_close(
        per_sample, torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    )
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.zeros(4), logits)
    wrapped = losses.LossFunctionWrapper(
        losses.get("sparse_categorical_crossentropy"), from_logits=True
    )
    assert wrapped._cast_y_true is False and losses.MeanSquaredError()._cast_y_true is True
    torch.testing.assert_close(wrapped(labels, logits), expected)


def test_shape_mismatch_errors():
    with pytest.raises(ValueError, match="same shape"):
        losses.categorical_crossentropy(torch.zeros(4, 3), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="same shape"):
        losses.binary_crossentropy(torch.zeros(4, 3), torch.zeros(4, 2))


def test_mask_matches_keras(keras):
    rng = _rng(3)
    y_true, y_pred = regression(rng)
    mask = torch.tensor([True, False, True, True, False, True])
    weights = rng.uniform(0, 1, 6).astype("float32")
    for reduction in REDUCTIONS:
        for sample_weight in (None, weights):
            masked = torch.from_numpy(y_pred)
            masked._keras_mask = mask
            expected = keras.losses.MeanSquaredError(reduction=reduction)(
                y_true, masked, sample_weight=sample_weight
            )
            result = losses.MeanSquaredError(reduction=reduction)(y_true, masked, sample_weight)
            np.testing.assert_allclose(_numpy(result), _numpy(expected), atol=1e-5, rtol=1e-5)


def test_per_sample_weights_broadcast_over_steps(keras):
    rng = _rng(4)
    labels = rng.integers(0, 5, (4, 3))
    logits = _f32(rng.standard_normal((4, 3, 5)))
    weights = rng.uniform(0, 1, 4).astype("float32")
    for reduction in ("sum_over_batch_size", "sum", "none"):
        expected = keras.losses.SparseCategoricalCrossentropy(True, reduction=reduction)(
            labels, logits, sample_weight=np.repeat(weights[:, None], 3, axis=1)
        )
        result = losses.SparseCategoricalCrossentropy(True, reduction=reduction)(
            labels, logits, sample_weight=weights
        )
        np.testing.assert_allclose(_numpy(result), _numpy(expected), atol=1e-5, rtol=1e-5)


def test_loss_dtype():
    y_true, y_pred = regression(_rng(5))
    result = losses.MeanSquaredError(dtype="float64")(y_true, y_pred)
    assert result.dtype == torch.float64
    np.testing.assert_allclose(
        result.item(), np.mean((y_true.astype("float64") - y_pred) ** 2), rtol=1e-12
    )
    assert losses.MeanSquaredError(dtype="mixed_bfloat16").dtype == "bfloat16"
    assert losses.MeanSquaredError().dtype == "float32"
    with pytest.raises(ValueError, match="dtype"):
        losses.MeanSquaredError(dtype="complex_nonsense")


def test_invalid_reduction():
    with pytest.raises(ValueError, match="reduction.*Received: reduction='average'"):
        losses.MeanSquaredError(reduction="average")


def test_keras2_auto_reduction():
    config = {"class_name": "CategoricalCrossentropy", "config": {"reduction": "auto"}}
    assert losses.get(config).reduction == "sum_over_batch_size"


def test_custom_loss_subclass():
    class Doubled(losses.Loss):
        def call(self, y_true, y_pred):
            return 2 * torch.mean(torch.abs(y_true - y_pred), dim=-1)

    first, second = Doubled(), Doubled()
    assert first.name.startswith("doubled") and first.name != second.name
    y_true, y_pred = regression(_rng(6))
    expected = 2 * np.mean(np.abs(y_true - y_pred))
    np.testing.assert_allclose(first(y_true, y_pred).item(), expected, rtol=1e-6)
    assert Doubled.from_config(first.get_config()).name == first.name
    with pytest.raises(NotImplementedError):
        losses.Loss()(torch.zeros(2), torch.zeros(2))


def test_loss_function_wrapper(keras):
    y_true, y_pred = regression(_rng(7))
    wrapper = losses.LossFunctionWrapper(losses.huber, name="wrapped", reduction="sum", delta=0.3)
    expected = keras.losses.Huber(delta=0.3, reduction="sum")(y_true, y_pred)
    np.testing.assert_allclose(_numpy(wrapper(y_true, y_pred)), _numpy(expected), rtol=1e-5)
    config = wrapper.get_config()
    assert config == {"name": "wrapped", "reduction": "sum", "fn": "huber", "delta": 0.3}
    rebuilt = losses.deserialize(losses.serialize(wrapper))
    assert isinstance(rebuilt, losses.LossFunctionWrapper) and rebuilt.fn is losses.huber
    assert rebuilt.get_config() == config

    from keras.src.losses import LossFunctionWrapper as KerasWrapper

    keras_config = keras.losses.serialize(KerasWrapper(keras.losses.huber, delta=0.3))
    from_keras = losses.deserialize(keras_config)
    assert from_keras.fn is losses.huber and from_keras._fn_kwargs == {"delta": 0.3}

    def custom(y_true, y_pred, power=2):
        return torch.mean(torch.abs(y_true - y_pred) ** power, dim=-1)

    custom_loss = losses.LossFunctionWrapper(custom, power=3)
    expected = np.mean(np.abs(y_true - y_pred) ** 3)
    np.testing.assert_allclose(custom_loss(y_true, y_pred).item(), expected, rtol=1e-5)


def test_names_match_keras(keras):
    from keras.src import losses as keras_losses

    assert set(keras_losses.ALL_OBJECTS_DICT) <= set(losses.ALL_OBJECTS_DICT)
    for key, obj in keras_losses.ALL_OBJECTS_DICT.items():
        assert losses.ALL_OBJECTS_DICT[key].__name__ == obj.__name__


def test_get():
    assert losses.get(None) is None
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("categorical_crossentropy") is losses.categorical_crossentropy
    assert losses.get("kullback_leibler_divergence") is losses.kl_divergence
    assert isinstance(
        losses.get("SparseCategoricalCrossentropy"), losses.SparseCategoricalCrossentropy
    )
    assert isinstance(losses.get(losses.Huber), losses.Huber)
    loss = losses.Poisson()
    assert losses.get(loss) is loss
    config = {"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}
    assert losses.get(config).from_logits is True

    def fn(y_true, y_pred):
        return torch.mean(y_true - y_pred, dim=-1)

    assert losses.get(fn) is fn
    wrapped = losses.get(torch.nn.CrossEntropyLoss())
    assert isinstance(wrapped, losses.TorchLoss)
    assert isinstance(losses.get(torch.nn.MSELoss), losses.TorchLoss)


def test_get_unknown_name_raises():
    with pytest.raises(ValueError, match="loss.*not_a_loss"):
        losses.get("not_a_loss")
    with pytest.raises(ValueError, match="loss"):
        losses.get(12)


def test_torch_loss_cross_entropy():
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    loss = losses.get(torch.nn.CrossEntropyLoss())
    expected = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(loss(labels, logits), expected)
    torch.testing.assert_close(loss(labels.float(), logits), expected)
    torch.testing.assert_close(loss(labels.double()[:, None], logits), expected)
    probabilities = torch.softmax(torch.randn(6, 4), dim=-1)
    torch.testing.assert_close(
        loss(probabilities, logits), torch.nn.functional.cross_entropy(logits, probabilities)
    )
    nll = losses.get(torch.nn.NLLLoss())
    log_probs = torch.log_softmax(logits, dim=-1)
    torch.testing.assert_close(nll(labels.float(), log_probs), expected)


def test_torch_loss_regression_and_weights():
    y_pred = torch.randn(6, 1)
    y_true = np.random.default_rng(0).standard_normal(6)
    loss = losses.get(torch.nn.MSELoss())
    expected = torch.mean((torch.as_tensor(y_true, dtype=torch.float32) - y_pred[:, 0]) ** 2)
    torch.testing.assert_close(loss(y_true, y_pred), expected)
    with pytest.raises(ValueError, match="reduction='none'"):
        loss(y_true, y_pred, sample_weight=np.ones(6))

    weights = torch.rand(6)
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    weighted = losses.get(torch.nn.CrossEntropyLoss(reduction="none"))
    per_sample = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(
        weighted(labels.float(), logits, sample_weight=weights), torch.sum(per_sample * weights) / 6
    )


def test_torch_loss_config_round_trip():
    module = torch.nn.CrossEntropyLoss(
        weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1, ignore_index=-1
    )
    loss = losses.TorchLoss(module)
    config = losses.serialize(loss)
    rebuilt = losses.deserialize(config)
    assert isinstance(rebuilt.module, torch.nn.CrossEntropyLoss)
    assert rebuilt.module.label_smoothing == 0.1 and rebuilt.module.ignore_index == -1
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(rebuilt(labels, logits), loss(labels, logits))
    with pytest.raises(ValueError, match="module_class"):
        losses.TorchLoss.from_config({"name": "x", "module_class": "Linear", "module_config": {}})


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("target_shape", [(16,), (16, 1)])
def test_sparse_crossentropy_fused_mean_equals_general_path(from_logits, target_shape):
    y_pred = torch.rand(16, 5) if not from_logits else torch.randn(16, 5)
    y_true = torch.randint(0, 5, target_shape)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    fused = loss(y_true, y_pred)
    general = loss(y_true.float(), y_pred)  # float targets take the general path
    weighted = loss(y_true, y_pred, sample_weight=torch.ones(16))
    torch.testing.assert_close(fused, general)
    torch.testing.assert_close(fused, weighted)
