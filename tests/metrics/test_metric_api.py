"""The `Metric` contract the trainer relies on: resolution, state handling, configs, no sync."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ktorch.losses as losses
import ktorch.metrics as metrics
from ktorch.saving import register_keras_serializable


def _classification_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y_pred = torch.softmax(torch.randn(6, 4, generator=g), dim=-1)
    labels = torch.randint(0, 4, (6,), generator=g)
    return labels, y_pred


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape,expected",
    [
        ((8, 1), (8, 1), metrics.BinaryAccuracy),
        ((8,), (8, 1), metrics.BinaryAccuracy),
        ((8,), (8, 5), metrics.SparseCategoricalAccuracy),
        ((8, 1), (8, 5), metrics.SparseCategoricalAccuracy),
        ((8, 10), (8, 10, 5), metrics.SparseCategoricalAccuracy),
        ((8, 5), (8, 5), metrics.CategoricalAccuracy),
    ],
)
@pytest.mark.parametrize("identifier", ["accuracy", "acc"])
def test_resolve_accuracy_from_shapes(identifier, y_true_shape, y_pred_shape, expected):
    metric = metrics.resolve(identifier, torch.zeros(y_true_shape), torch.zeros(y_pred_shape))
    assert type(metric) is expected
    assert metric.name == identifier


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape,expected",
    [
        ((8, 1), (8, 1), metrics.BinaryCrossentropy),
        ((8,), (8, 5), metrics.SparseCategoricalCrossentropy),
        ((8, 5), (8, 5), metrics.CategoricalCrossentropy),
    ],
)
@pytest.mark.parametrize("identifier", ["crossentropy", "ce"])
def test_resolve_crossentropy_from_shapes(identifier, y_true_shape, y_pred_shape, expected):
    metric = metrics.resolve(identifier, np.zeros(y_true_shape), np.zeros(y_pred_shape))
    assert type(metric) is expected
    assert metric.name == identifier


@pytest.mark.parametrize(
    "loss,expected",
    [
        ("binary_crossentropy", metrics.BinaryAccuracy),
        ("sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
        ("categorical_crossentropy", metrics.CategoricalAccuracy),
        (torch.nn.BCEWithLogitsLoss(), metrics.BinaryAccuracy),
        (torch.nn.CrossEntropyLoss(), metrics.SparseCategoricalAccuracy),
    ],
)
def test_resolve_accuracy_from_loss_without_batch(loss, expected):
    assert type(metrics.resolve("accuracy", loss=loss)) is expected


def test_resolve_accuracy_without_batch_or_loss_is_an_error():
    with pytest.raises(ValueError, match="y_true and y_pred"):
        metrics.resolve("accuracy")


def test_resolve_names_and_wraps():
    mse = metrics.resolve("mse", None, None)
    assert isinstance(mse, metrics.MeanSquaredError) and mse.name == "mse"
    auc = metrics.AUC(name="my_auc")
    assert metrics.resolve(auc, None, None) is auc and auc.name == "my_auc"

    def worst_error(y_true, y_pred):
        return torch.amax(torch.abs(y_true - y_pred), dim=-1)

    wrapped = metrics.resolve(worst_error, None, None)
    assert isinstance(wrapped, metrics.MeanMetricWrapper)
    assert wrapped.name == "worst_error"
    wrapped.update_state(torch.zeros(2, 3), torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, 0.0]]))
    assert wrapped.result().item() == pytest.approx(1.25)
    assert type(metrics.resolve(metrics.Precision, None, None)) is metrics.Precision


def test_unknown_metric_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown metric: 'acuracy'"):
        metrics.get("acuracy")
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.resolve("no_such_metric", None, None)
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        metrics.get(42)


def test_get_follows_keras_names():
    assert isinstance(metrics.get("categorical_crossentropy"), metrics.CategoricalCrossentropy)
    assert isinstance(metrics.get("AUC"), metrics.AUC)
    assert isinstance(metrics.get("auc"), metrics.AUC)
    assert metrics.get("logcosh") is metrics.log_cosh
    assert metrics.get(None) is None


CONFIG_CASES = [
    metrics.Mean(name="m"),
    metrics.Sum(dtype="float64"),
    metrics.BinaryAccuracy(threshold=0.7),
    metrics.TopKCategoricalAccuracy(k=3),
    metrics.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True),
    metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    metrics.SparseCategoricalCrossentropy(ignore_class=3),
    metrics.Precision(thresholds=[0.3, 0.6], class_id=1),
    metrics.Recall(top_k=2),
    metrics.AUC(num_thresholds=17, curve="PR", multi_label=True, num_labels=3),
    metrics.AUC(thresholds=[0.2, 0.6]),
    metrics.TruePositives(thresholds=[0.1, 0.9]),
    metrics.R2Score(class_aggregation=None, num_regressors=1),
    metrics.MeanMetricWrapper(metrics.mean_absolute_error, name="mae_wrapper"),
]


@pytest.mark.parametrize("metric", CONFIG_CASES, ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    config = metric.get_config()
    rebuilt = type(metric).from_config(config)
    assert rebuilt.get_config() == config
    serialized = metrics.serialize(metric)
    assert serialized["module"] == "keras.metrics"
    assert serialized["class_name"] == type(metric).__name__
    again = metrics.deserialize(serialized)
    assert type(again) is type(metric) and again.get_config() == config


def test_keras_configs_load():
    keras_config = {
        "module": "keras.metrics",
        "class_name": "AUC",
        "config": {
            "name": "auc",
            "dtype": "float32",
            "num_thresholds": 200,
            "curve": "ROC",
            "summation_method": "interpolation",
            "multi_label": False,
            "num_labels": None,
            "label_weights": None,
            "from_logits": False,
        },
        "registered_name": None,
    }
    metric = metrics.deserialize(keras_config)
    assert isinstance(metric, metrics.AUC) and metric.num_thresholds == 200


def test_registered_custom_function_round_trips():
    @register_keras_serializable(package="MetricTests")
    def doubled_error(y_true, y_pred):
        return 2 * torch.abs(y_true - y_pred).mean(dim=-1)

    metric = metrics.MeanMetricWrapper(doubled_error, name="doubled")
    rebuilt = metrics.deserialize(metrics.serialize(metric))
    rebuilt.update_state(torch.zeros(1, 2), torch.ones(1, 2))
    assert rebuilt.result().item() == pytest.approx(2.0)


def test_call_reset_and_merge():
    labels, y_pred = _classification_batch()
    first = metrics.SparseCategoricalAccuracy()
    second = metrics.SparseCategoricalAccuracy()
    whole = metrics.SparseCategoricalAccuracy()
    value = first(labels[:3], y_pred[:3])
    assert torch.equal(value, first.result())
    second.update_state(labels[3:], y_pred[3:])
    whole.update_state(labels, y_pred)
    first.merge_state([second])
    assert torch.allclose(first.result(), whole.result())
    expected = (torch.argmax(y_pred, -1) == labels).float().mean()
    assert torch.allclose(whole.result(), expected)
    first.reset_state()
    assert all(float(v.abs().sum()) == 0 for v in first.variables)
    assert first.result().item() == 0.0


def test_merge_builds_lazy_state():
    g = torch.Generator().manual_seed(1)
    y_true, y_pred = torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g)
    whole, part_a, part_b = metrics.R2Score(), metrics.R2Score(), metrics.R2Score()
    whole.update_state(y_true, y_pred)
    part_b.update_state(y_true[:4], y_pred[:4])
    part_a.merge_state([part_b])
    other = metrics.R2Score()
    other.update_state(y_true[4:], y_pred[4:])
    part_a.merge_state([other, metrics.R2Score()])
    assert torch.allclose(part_a.result(), whole.result(), atol=1e-6)
    with pytest.raises(ValueError, match="different classes"):
        part_a.merge_state([metrics.Mean()])


def test_state_variables_and_reduction_marker():
    for cls in (metrics.Mean, metrics.Precision, metrics.AUC, metrics.TruePositives):
        assert cls._reduction == "sum"
    assert metrics.resolve("acc", np.zeros((2, 1)), np.zeros((2, 1)))._direction == "up"
    assert metrics.AUC._direction == "up" and metrics.MeanSquaredError._direction == "down"
    auc = metrics.AUC(num_thresholds=7)
    assert [tuple(v.shape) for v in auc.variables] == [(7,)] * 4
    mean = metrics.Mean()
    total = mean.add_variable((2,), initializer="ones", name="extra")
    assert mean.variables[-1] is total and torch.equal(total, torch.ones(2))


def _forbid_host_reads(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("update_state read a tensor value back to the host")

    for attr in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "cpu"):
        monkeypatch.setattr(torch.Tensor, attr, forbidden)


SYNC_CASES = [
    (metrics.Mean(), "values"),
    (metrics.Sum(), "values"),
    (metrics.Accuracy(), "sparse_pair"),
    (metrics.BinaryAccuracy(), "binary"),
    (metrics.CategoricalAccuracy(), "categorical"),
    (metrics.SparseCategoricalAccuracy(), "sparse"),
    (metrics.TopKCategoricalAccuracy(k=2), "categorical"),
    (metrics.SparseTopKCategoricalAccuracy(k=2), "sparse"),
    (metrics.MeanSquaredError(), "regression"),
    (metrics.MeanAbsoluteError(), "regression"),
    (metrics.RootMeanSquaredError(), "regression"),
    (metrics.MeanAbsolutePercentageError(), "regression"),
    (metrics.MeanSquaredLogarithmicError(), "regression"),
    (metrics.BinaryCrossentropy(), "binary"),
    (metrics.CategoricalCrossentropy(), "categorical"),
    (metrics.SparseCategoricalCrossentropy(ignore_class=1), "sparse"),
    (metrics.Hinge(), "binary"),
    (metrics.SquaredHinge(), "binary"),
    (metrics.CategoricalHinge(), "categorical"),
    (metrics.KLDivergence(), "categorical"),
    (metrics.Poisson(), "categorical"),
    (metrics.LogCoshError(), "regression"),
    (metrics.CosineSimilarity(), "regression"),
    (metrics.Precision(), "binary"),
    (metrics.Recall(top_k=1), "categorical"),
    (metrics.AUC(), "binary"),
    (metrics.AUC(multi_label=True, thresholds=[0.3, 0.7]), "categorical"),
    (metrics.TruePositives(), "binary"),
    (metrics.FalsePositives(), "binary"),
    (metrics.TrueNegatives(), "binary"),
    (metrics.FalseNegatives(), "binary"),
    (metrics.R2Score(), "regression"),
]


def _sync_inputs(kind: str):
    g = torch.Generator().manual_seed(3)
    if kind == "values":
        return (torch.randn(6, 2, generator=g),)
    if kind == "binary":
        return torch.randint(0, 2, (6, 1), generator=g).float(), torch.rand(6, 1, generator=g)
    labels, y_pred = _classification_batch(3)
    if kind == "sparse":
        return labels, y_pred
    if kind == "sparse_pair":
        return labels, torch.argmax(y_pred, -1)
    if kind == "categorical":
        return torch.nn.functional.one_hot(labels, 4).float(), y_pred
    return torch.rand(6, 3, generator=g), torch.rand(6, 3, generator=g)


@pytest.mark.parametrize("metric,kind", SYNC_CASES, ids=lambda v: getattr(v, "name", v))
def test_update_state_does_not_read_values_back(metric, kind, monkeypatch):
    inputs = _sync_inputs(kind)
    weight = torch.rand(6, generator=torch.Generator().manual_seed(4))
    with monkeypatch.context() as patch:
        _forbid_host_reads(patch)
        metric.update_state(*inputs)
        metric.update_state(*inputs, sample_weight=weight)
        metric.update_state(*inputs, sample_weight=0.5)
    assert torch.isfinite(torch.as_tensor(metric.result())).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_state_follows_inputs_to_cuda():
    metric = metrics.SparseCategoricalAccuracy()
    labels, y_pred = _classification_batch()
    total = metric.total
    metric.update_state(labels.cuda(), y_pred.cuda())
    assert metric.total is total and total.device.type == "cuda"
    assert metric.result().device.type == "cuda"
    expected = (torch.argmax(y_pred, -1) == labels).float().mean()
    assert metric.result().item() == pytest.approx(expected.item())


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="class_aggregation"):
        metrics.R2Score(class_aggregation="median")
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="ROCK")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.Precision(thresholds=[1.5])
    with pytest.raises(ValueError, match="2D inputs"):
        metrics.R2Score().update_state(torch.zeros(3), torch.zeros(3))


LOSS_FUNCTION_NAMES = [
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "kl_divergence",
    "poisson",
    "log_cosh",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
]


@pytest.mark.parametrize("name", LOSS_FUNCTION_NAMES)
def test_metric_functions_are_the_loss_functions(name):
    assert getattr(metrics, name) is getattr(losses, name)
    assert metrics.ALL_FUNCTIONS_DICT[name] is getattr(losses, name)
