"""Weight initializers, with Keras 3's names, arguments and formulas.

Every initializer is a callable `(shape, dtype=None) -> torch.Tensor` returning a CPU tensor;
shapes are Keras shapes (Dense kernel `(in, out)`, Conv2D kernel `(kh, kw, in, out)`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ktorch.initializers.constant_initializers import STFT, Constant, Identity, Ones, Zeros
from ktorch.initializers.initializer import Initializer, standardize_dtype
from ktorch.initializers.random_initializers import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    Orthogonal,
    RandomInitializer,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    compute_fans,
)
from ktorch.saving.object_registration import get_registered_object
from ktorch.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

constant = Constant
zeros = Zeros
ones = Ones
identity = Identity
stft = STFT
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
he_uniform = HeUniform
he_normal = HeNormal
lecun_uniform = LecunUniform
lecun_normal = LecunNormal
orthogonal = Orthogonal
IdentityInitializer = Identity
OrthogonalInitializer = Orthogonal
STFTInitializer = STFT

ALL_OBJECTS_DICT: dict[str, type] = {
    "Initializer": Initializer,
    "initializer": Initializer,
    "Constant": Constant,
    "constant": Constant,
    "Zeros": Zeros,
    "zeros": Zeros,
    "zero": Zeros,
    "Ones": Ones,
    "ones": Ones,
    "one": Ones,
    "Identity": Identity,
    "identity": Identity,
    "IdentityInitializer": Identity,
    "STFT": STFT,
    "stft": STFT,
    "STFTInitializer": STFT,
    "RandomNormal": RandomNormal,
    "random_normal": RandomNormal,
    "normal": RandomNormal,
    "RandomUniform": RandomUniform,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,
    "TruncatedNormal": TruncatedNormal,
    "truncated_normal": TruncatedNormal,
    "VarianceScaling": VarianceScaling,
    "variance_scaling": VarianceScaling,
    "GlorotUniform": GlorotUniform,
    "glorot_uniform": GlorotUniform,
    "GlorotNormal": GlorotNormal,
    "glorot_normal": GlorotNormal,
    "HeUniform": HeUniform,
    "he_uniform": HeUniform,
    "HeNormal": HeNormal,
    "he_normal": HeNormal,
    "LecunUniform": LecunUniform,
    "lecun_uniform": LecunUniform,
    "LecunNormal": LecunNormal,
    "lecun_normal": LecunNormal,
    "Orthogonal": Orthogonal,
    "orthogonal": Orthogonal,
    "OrthogonalInitializer": Orthogonal,
}


def serialize(initializer: Initializer) -> dict[str, Any]:
    """Returns the Keras config dict (`module`, `class_name`, `config`) of an initializer."""
    return serialize_keras_object(initializer)


def deserialize(config: dict[str, Any] | str, custom_objects: dict | None = None) -> Initializer:
    """Rebuilds an initializer from `serialize()` output or a name.

    Args:
        config: a config dict as written by `serialize()` (or by Keras), or a name.
        custom_objects: extra name-to-class mapping for custom initializers.
    """
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="initializer",
    )


def _from_tensor(value) -> Callable:
    value = torch.as_tensor(np.asarray(value) if isinstance(value, np.generic) else value)

    def initialize_fn(shape, dtype=None) -> torch.Tensor:
        if tuple(shape) != tuple(value.shape):
            raise ValueError(
                f"Expected `shape` to be {tuple(value.shape)} for a tensor used as initializer. "
                f"Received: shape={tuple(shape)}"
            )
        return value.detach().to(device="cpu", dtype=standardize_dtype(dtype)).clone()

    return initialize_fn


def get(identifier: Any) -> Callable | None:
    """Returns an initializer from a name, a config dict, a class, a callable or a tensor.

    Args:
        identifier: None; a name such as `"glorot_uniform"` or `"HeNormal"`; a dict from
            `serialize()`; an `Initializer` class or instance; a callable
            `(shape, dtype=None) -> tensor`; or a tensor/array used as the exact value.

    Returns:
        An initializer (or None for None).

    Example:
        ```python
        init = ktorch.initializers.get("he_normal")
        kernel = init((3, 3, 16, 32))
        ```
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = get_registered_object(identifier, None, ALL_OBJECTS_DICT)
        if obj is None:
            raise ValueError(
                "Could not interpret initializer identifier. Expected a known initializer name "
                f"such as 'glorot_uniform', a config dict or a callable. Received: "
                f"identifier={identifier!r}"
            )
    elif isinstance(identifier, (torch.Tensor, np.ndarray, np.generic)):
        obj = _from_tensor(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(
        "Could not interpret initializer identifier. Expected a name, a config dict or a "
        f"callable. Received: identifier={identifier!r}"
    )


__all__ = [
    "STFT",
    "ALL_OBJECTS_DICT",
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "IdentityInitializer",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "OrthogonalInitializer",
    "RandomInitializer",
    "RandomNormal",
    "RandomUniform",
    "STFTInitializer",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "compute_fans",
    "constant",
    "deserialize",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "serialize",
    "standardize_dtype",
    "stft",
    "truncated_normal",
    "variance_scaling",
    "zeros",
]
