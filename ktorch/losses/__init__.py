"""Losses, with Keras 3's names, arguments, formulas and reductions.

Function forms (`mean_squared_error`, `categorical_crossentropy`, ...) return per-sample
values; classes (`MeanSquaredError`, ...) reduce them and apply sample weights. A `torch.nn`
loss module passed to `get` is adapted by `TorchLoss`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from ktorch.losses.loss import Loss, reduce_weighted_values, squeeze_or_expand_to_same_rank
from ktorch.losses.losses import (
    CTC,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    CategoricalHinge,
    Circle,
    CosineSimilarity,
    Dice,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    LossFunctionWrapper,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
    Tversky,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_generalized_cross_entropy,
    categorical_hinge,
    circle,
    cosine_similarity,
    ctc,
    dice,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
    tversky,
)
from ktorch.losses.torch_loss import TorchLoss
from ktorch.saving.object_registration import get_registered_object
from ktorch.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
bce = BCE = binary_crossentropy
logcosh = log_cosh

_OBJECTS = (
    Loss,
    LossFunctionWrapper,
    TorchLoss,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    SparseCategoricalCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCosh,
    Huber,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    Dice,
    Tversky,
    Circle,
    CTC,
    kl_divergence,
    poisson,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_generalized_cross_entropy,
    sparse_categorical_crossentropy,
    mean_squared_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    cosine_similarity,
    log_cosh,
    huber,
    hinge,
    squared_hinge,
    categorical_hinge,
    dice,
    tversky,
    circle,
    ctc,
)

ALL_OBJECTS_DICT: dict[str, Any] = {obj.__name__: obj for obj in _OBJECTS}
ALL_OBJECTS_DICT.update(
    {
        "bce": binary_crossentropy,
        "BCE": binary_crossentropy,
        "kld": kl_divergence,
        "KLD": kl_divergence,
        "kullback_leibler_divergence": kl_divergence,
        "logcosh": log_cosh,
        "mae": mean_absolute_error,
        "MAE": mean_absolute_error,
        "mse": mean_squared_error,
        "MSE": mean_squared_error,
        "mape": mean_absolute_percentage_error,
        "MAPE": mean_absolute_percentage_error,
        "msle": mean_squared_logarithmic_error,
        "MSLE": mean_squared_logarithmic_error,
    }
)


def serialize(loss: Loss | Callable) -> dict[str, Any] | str:
    """Returns the Keras config of a loss object, or the name of a loss function."""
    return serialize_keras_object(loss)


def deserialize(name: dict[str, Any] | str, custom_objects: dict | None = None) -> Any:
    """Rebuilds a loss object or function from `serialize()` output or a name.

    Args:
        name: a config dict as written by `serialize()` (or by Keras), or a name.
        custom_objects: extra name-to-object mapping for custom losses.
    """
    if isinstance(name, str):
        obj = get_registered_object(name, custom_objects, ALL_OBJECTS_DICT)
        if obj is None:
            raise ValueError(
                "Could not interpret loss identifier. Expected a known loss name such as "
                f"'mse' or a config dict. Received: identifier={name!r}"
            )
        return obj() if inspect.isclass(obj) else obj
    return deserialize_keras_object(
        name,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="loss",
    )


def get(identifier: Any) -> Any:
    """Returns a loss from a name, a config dict, a class, a callable or a torch loss module.

    Args:
        identifier: None; a name such as `"mse"`, `"categorical_crossentropy"` or
            `"SparseCategoricalCrossentropy"`; a dict from `serialize()`; a `Loss` class or
            instance; a callable `(y_true, y_pred) -> per-sample values`; or a `torch.nn`
            loss module (returned wrapped in `TorchLoss`).

    Returns:
        A loss function or `Loss` instance (None for None).

    Example:
        ```python
        loss = ktorch.losses.get("sparse_categorical_crossentropy")
        loss = ktorch.losses.get(torch.nn.CrossEntropyLoss())  # TorchLoss
        ```
    """
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        obj = deserialize(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if isinstance(obj, torch.nn.Module):
        return TorchLoss(obj)
    if callable(obj):
        return obj
    raise ValueError(
        "Could not interpret loss identifier. Expected a name, a config dict, a callable or a "
        f"torch.nn loss module. Received: identifier={identifier!r}"
    )


__all__ = [
    "BCE",
    "CTC",
    "KLD",
    "MAE",
    "MAPE",
    "MSE",
    "MSLE",
    "ALL_OBJECTS_DICT",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "CategoricalHinge",
    "Circle",
    "CosineSimilarity",
    "Dice",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "TorchLoss",
    "Tversky",
    "bce",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "categorical_hinge",
    "circle",
    "cosine_similarity",
    "ctc",
    "deserialize",
    "dice",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "log_cosh",
    "logcosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "reduce_weighted_values",
    "serialize",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "squeeze_or_expand_to_same_rank",
    "tversky",
]
