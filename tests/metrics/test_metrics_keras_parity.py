"""Every metric against Keras 3 (torch backend): several updates, with and without weights."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import torch

import ktorch.metrics as metrics

BATCH = 8
NUM_CLASSES = 5
NUM_UPDATES = 3


def _keras():
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras does not run on the torch backend here.")
    return keras


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _batch(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One `(y_true, y_pred)` batch of the given kind, as float32/int64 arrays."""
    f32 = np.float32
    if kind == "values":
        return rng.normal(size=(BATCH, 3)).astype(f32), None
    if kind == "binary":
        return rng.integers(0, 2, (BATCH, 1)).astype(f32), rng.uniform(size=(BATCH, 1)).astype(f32)
    if kind == "binary_logits":
        return rng.integers(0, 2, (BATCH, 1)).astype(f32), rng.normal(size=(BATCH, 1)).astype(f32)
    if kind == "multilabel":
        return rng.integers(0, 2, (BATCH, 3)).astype(f32), rng.uniform(size=(BATCH, 3)).astype(f32)
    if kind == "labels_equal":
        return rng.integers(0, 3, (BATCH, 1)).astype(f32), rng.integers(0, 3, (BATCH, 1)).astype(
            f32
        )
    logits = rng.normal(size=(BATCH, NUM_CLASSES)).astype(f32)
    labels = rng.integers(0, NUM_CLASSES, BATCH)
    if kind == "categorical":
        return np.eye(NUM_CLASSES, dtype=f32)[labels], _softmax(logits)
    if kind == "categorical_logits":
        return np.eye(NUM_CLASSES, dtype=f32)[labels], logits
    if kind == "sparse":
        return labels.astype(np.int64), _softmax(logits)
    if kind == "sparse_column":
        return labels.astype(np.int64)[:, None], _softmax(logits)
    if kind == "sparse_logits":
        return labels.astype(np.int64), logits
    if kind == "regression":
        return rng.normal(size=(BATCH, 3)).astype(f32), rng.normal(size=(BATCH, 3)).astype(f32)
    if kind == "positive":
        return (
            rng.uniform(0.05, 1, (BATCH, 3)).astype(f32),
            rng.uniform(0.05, 1, (BATCH, 3)).astype(f32),
        )
    if kind == "hinge":
        return rng.integers(0, 2, (BATCH, 3)).astype(f32), rng.normal(size=(BATCH, 3)).astype(f32)
    raise ValueError(kind)


CASES = [
    ("Mean", {}, "values"),
    ("Sum", {}, "values"),
    ("Accuracy", {}, "labels_equal"),
    ("BinaryAccuracy", {}, "binary"),
    ("BinaryAccuracy", {"threshold": 0.3}, "multilabel"),
    ("CategoricalAccuracy", {}, "categorical"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseCategoricalAccuracy", {}, "sparse_column"),
    ("TopKCategoricalAccuracy", {"k": 2}, "categorical"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "positive"),
    ("MeanSquaredLogarithmicError", {}, "positive"),
    ("LogCoshError", {}, "regression"),
    ("CosineSimilarity", {}, "regression"),
    ("BinaryCrossentropy", {}, "multilabel"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary_logits"),
    ("CategoricalCrossentropy", {}, "categorical"),
    (
        "CategoricalCrossentropy",
        {"from_logits": True, "label_smoothing": 0.2},
        "categorical_logits",
    ),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logits"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 0}, "sparse"),
    ("Hinge", {}, "hinge"),
    ("SquaredHinge", {}, "hinge"),
    ("CategoricalHinge", {}, "categorical_logits"),
    ("KLDivergence", {}, "positive"),
    ("Poisson", {}, "positive"),
    ("Precision", {}, "multilabel"),
    ("Precision", {"thresholds": [0.2, 0.5, 0.8]}, "multilabel"),
    ("Precision", {"top_k": 2}, "multilabel"),
    ("Precision", {"class_id": 1}, "multilabel"),
    ("Recall", {}, "multilabel"),
    ("Recall", {"thresholds": [0.0, 0.5, 1.0]}, "multilabel"),
    ("Recall", {"top_k": 1, "class_id": 2}, "multilabel"),
    ("AUC", {}, "binary"),
    ("AUC", {"curve": "PR"}, "multilabel"),
    ("AUC", {"curve": "PR", "summation_method": "minoring"}, "multilabel"),
    ("AUC", {"curve": "PRGAIN", "num_thresholds": 50}, "binary"),
    ("AUC", {"summation_method": "majoring", "thresholds": [0.1, 0.4, 0.45, 0.9]}, "binary"),
    ("AUC", {"multi_label": True, "num_thresholds": 20}, "multilabel"),
    ("AUC", {"multi_label": True, "label_weights": [0.2, 1.0, 0.5]}, "multilabel"),
    ("AUC", {"label_weights": [0.2, 1.0, 0.5]}, "multilabel"),
    ("AUC", {"from_logits": True}, "binary_logits"),
    ("TruePositives", {}, "multilabel"),
    ("FalsePositives", {"thresholds": [0.25, 0.75]}, "multilabel"),
    ("TrueNegatives", {}, "binary"),
    ("FalseNegatives", {"thresholds": 0.3}, "multilabel"),
    ("R2Score", {}, "regression"),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}, "regression"),
    ("R2Score", {"class_aggregation": None, "num_regressors": 2}, "regression"),
]


def _accumulate(metric, batches, weights, framework):
    for (y_true, y_pred), weight in zip(batches, weights, strict=True):
        if framework == "ktorch":
            y_true = torch.from_numpy(y_true)
            y_pred = None if y_pred is None else torch.from_numpy(y_pred)
            weight = None if weight is None else torch.from_numpy(weight)
        if y_pred is None:
            metric.update_state(y_true, sample_weight=weight)
        else:
            metric.update_state(y_true, y_pred, sample_weight=weight)
    return np.asarray(metric.result().detach().cpu() if framework == "ktorch" else metric.result())


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "class_name,kwargs,kind", CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)]
)
def test_metric_matches_keras(class_name, kwargs, kind, weighted):
    keras = _keras()
    rng = np.random.default_rng(zlib.crc32(f"{class_name}{kind}{kwargs}".encode()))
    batches = [_batch(kind, rng) for _ in range(NUM_UPDATES)]
    weights = [
        rng.uniform(0, 1, BATCH).astype(np.float32) if weighted else None
        for _ in range(NUM_UPDATES)
    ]
    expected = _accumulate(getattr(keras.metrics, class_name)(**kwargs), batches, weights, "keras")
    received = _accumulate(getattr(metrics, class_name)(**kwargs), batches, weights, "ktorch")
    np.testing.assert_allclose(received, keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
        "poisson",
        "log_cosh",
    ],
)
def test_metric_function_matches_keras(name):
    keras = _keras()
    kind = {
        "binary_accuracy": "multilabel",
        "binary_crossentropy": "multilabel",
        "categorical_accuracy": "categorical",
        "top_k_categorical_accuracy": "categorical",
        "categorical_crossentropy": "categorical",
        "categorical_hinge": "categorical_logits",
        "sparse_categorical_accuracy": "sparse",
        "sparse_top_k_categorical_accuracy": "sparse",
        "sparse_categorical_crossentropy": "sparse",
        "hinge": "hinge",
        "squared_hinge": "hinge",
    }.get(name, "positive")
    y_true, y_pred = _batch(kind, np.random.default_rng(7))
    expected = getattr(keras.metrics, name)(y_true, y_pred)
    received = getattr(metrics, name)(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    np.testing.assert_allclose(
        received.numpy(), keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "class_name,kwargs",
    [("MeanSquaredError", {}), ("SparseCategoricalCrossentropy", {"ignore_class": 0})],
)
def test_masked_predictions_match_keras(class_name, kwargs, weighted):
    keras = _keras()
    rng = np.random.default_rng(11)
    steps = 4
    if class_name == "MeanSquaredError":
        y_true = rng.normal(size=(BATCH, steps, 3)).astype(np.float32)
        y_pred = rng.normal(size=(BATCH, steps, 3)).astype(np.float32)
    else:
        y_true = rng.integers(0, NUM_CLASSES, (BATCH, steps))
        y_pred = _softmax(rng.normal(size=(BATCH, steps, NUM_CLASSES)).astype(np.float32))
    mask = rng.uniform(size=(BATCH, steps)) > 0.3
    weight = rng.uniform(size=(BATCH, steps)).astype(np.float32) if weighted else None
    results = []
    for module in (keras.metrics, metrics):
        predictions = torch.from_numpy(y_pred)
        predictions._keras_mask = torch.from_numpy(mask)
        metric = getattr(module, class_name)(**kwargs)
        metric.update_state(
            torch.from_numpy(y_true),
            predictions,
            sample_weight=None if weight is None else torch.from_numpy(weight),
        )
        results.append(keras.ops.convert_to_numpy(metric.result()))
    expected, received = results
    np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-6)
