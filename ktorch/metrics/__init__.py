"""Metrics: stateful `Metric` objects, per-sample metric functions and name resolution."""

from __future__ import annotations

from typing import Any

import numpy as np

# The loss functions serve as metric functions under the same names, as in Keras.
from ktorch.losses.losses import (
    categorical_crossentropy,
    categorical_hinge,
    hinge,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from ktorch.metrics.accuracy_metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from ktorch.metrics.confusion_metrics import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from ktorch.metrics.hinge_metrics import CategoricalHinge, Hinge, SquaredHinge
from ktorch.metrics.metric import Metric
from ktorch.metrics.probabilistic_metrics import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
)
from ktorch.metrics.reduction_metrics import Mean, MeanMetricWrapper, Sum
from ktorch.metrics.regression_metrics import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
)
from ktorch.saving import serialization_lib
from ktorch.saving.object_registration import get_registered_object
from ktorch.utils.naming import to_snake_case

ALL_OBJECTS = (
    Metric,
    Mean,
    Sum,
    MeanMetricWrapper,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCoshError,
    R2Score,
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
)

ALL_FUNCTIONS = (
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    top_k_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    mean_squared_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
    hinge,
    squared_hinge,
    categorical_hinge,
    kl_divergence,
    poisson,
    log_cosh,
)

# Names Keras resolves to classes: the class name, its snake case, and short aliases.
ALL_OBJECTS_DICT: dict[str, Any] = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({to_snake_case(cls.__name__): cls for cls in ALL_OBJECTS})
ALL_OBJECTS_DICT.update(
    {
        "bce": BinaryCrossentropy,
        "BCE": BinaryCrossentropy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "MAPE": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "MSLE": MeanSquaredLogarithmicError,
    }
)
# Function names (and Keras 2 aliases) that are not also class names.
ALL_FUNCTIONS_DICT: dict[str, Any] = {fn.__name__: fn for fn in ALL_FUNCTIONS}
ALL_FUNCTIONS_DICT.update(
    {
        "kld": kl_divergence,
        "KLD": kl_divergence,
        "kullback_leibler_divergence": kl_divergence,
        "logcosh": log_cosh,
    }
)

_ACCURACY_NAMES = ("accuracy", "acc")
_CROSSENTROPY_NAMES = ("crossentropy", "ce")
_BY_KIND = {
    "accuracy": {
        "binary": BinaryAccuracy,
        "sparse": SparseCategoricalAccuracy,
        "categorical": CategoricalAccuracy,
    },
    "crossentropy": {
        "binary": BinaryCrossentropy,
        "sparse": SparseCategoricalCrossentropy,
        "categorical": CategoricalCrossentropy,
    },
}


def serialize(metric: Metric | Any) -> Any:
    """Returns the config of a `Metric` instance or the name of a metric function."""
    return serialization_lib.serialize_keras_object(metric)


def deserialize(config: Any, custom_objects: dict | None = None) -> Any:
    """Rebuilds a metric (or returns a metric function) from `serialize` output.

    Args:
        config: a dict written by `serialize`, or a name.
        custom_objects: user classes and functions by name.
    """
    return serialization_lib.deserialize_keras_object(
        config,
        module_objects={**ALL_FUNCTIONS_DICT, **ALL_OBJECTS_DICT},
        custom_objects=custom_objects,
        printable_module_name="metric",
    )


def get(identifier: Any) -> Any:
    """Returns a `Metric` instance or a metric function for `identifier`.

    Args:
        identifier: None, a name (`"mse"`, `"AUC"`, `"categorical_accuracy"`), a config
            dict, a `Metric` instance or class, or a function.

    Returns:
        A `Metric` instance, a function, or None for None.

    Example:
        ```python
        ktorch.metrics.get("mse")  # <MeanSquaredError name=mean_squared_error>
        ```
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier) or ALL_FUNCTIONS_DICT.get(identifier)
        if obj is None:
            obj = get_registered_object(identifier)
        if obj is None:
            raise ValueError(
                f"Unknown metric: '{identifier}'. Expected the name of a ktorch metric (e.g. "
                "'accuracy', 'mse', 'AUC'), a Metric instance, a callable or a config dict."
            )
    else:
        obj = identifier
    if isinstance(obj, type):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def _shape(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else np.shape(value)


def _kind_from_loss(loss: Any) -> str:
    if isinstance(loss, str):
        name = loss.lower()
    else:
        name = to_snake_case(getattr(loss, "__name__", None) or type(loss).__name__)
    if "binary" in name or name.startswith("bce"):
        return "binary"
    if "sparse" in name or name in ("cross_entropy_loss", "nll_loss"):
        return "sparse"
    return "categorical"


def _kind(y_true: Any, y_pred: Any, loss: Any) -> str:
    if y_true is None or y_pred is None:
        if loss is None:
            raise ValueError(
                "Cannot resolve 'accuracy'/'crossentropy' without the first batch: expected "
                "y_true and y_pred (or a loss). Received: y_true=None, y_pred=None, loss=None"
            )
        return _kind_from_loss(loss)
    true_shape, pred_shape = _shape(y_true), _shape(y_pred)
    if pred_shape and pred_shape[-1] == 1:
        return "binary"
    if len(true_shape) < len(pred_shape) or (
        true_shape and true_shape[-1] == 1 and pred_shape and pred_shape[-1] > 1
    ):
        return "sparse"
    return "categorical"


def resolve(identifier: Any, y_true: Any = None, y_pred: Any = None, loss: Any = None) -> Metric:
    """Returns the `Metric` instance a `compile(metrics=...)` entry stands for.

    `"accuracy"`/`"acc"` and `"crossentropy"`/`"ce"` pick their binary, sparse categorical or
    categorical variant from the first batch as Keras 3 does: binary when
    `y_pred.shape[-1] == 1`, sparse when `y_true` has one axis fewer than `y_pred` (or a
    trailing axis of 1 while `y_pred.shape[-1] > 1`), categorical otherwise. Without a batch,
    the loss decides (binary and sparse losses select their variants). The metric is named
    by the string the user gave; callables become `MeanMetricWrapper`s named after them.

    Args:
        identifier: a metric name, config dict, `Metric`, metric class or callable.
        y_true: the targets of the first batch (only their shape is used).
        y_pred: the predictions of the first batch (only their shape is used).
        loss: the loss identifier, consulted only when no batch is given.

    Returns:
        A `Metric` instance.
    """
    if identifier is None:
        raise ValueError("Expected a metric identifier. Received: None")
    if isinstance(identifier, str) and identifier.lower() in _ACCURACY_NAMES + _CROSSENTROPY_NAMES:
        family = "accuracy" if identifier.lower() in _ACCURACY_NAMES else "crossentropy"
        return _BY_KIND[family][_kind(y_true, y_pred, loss)](name=identifier)
    obj = get(identifier)
    if not isinstance(obj, Metric):
        name = getattr(obj, "__name__", None) or type(obj).__name__
        obj = MeanMetricWrapper(obj, name=to_snake_case(name))
    if isinstance(identifier, str):
        obj.name = identifier
    return obj


__all__ = [
    "AUC",
    "ALL_OBJECTS",
    "ALL_OBJECTS_DICT",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "Precision",
    "R2Score",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_hinge",
    "deserialize",
    "get",
    "hinge",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "resolve",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
]
