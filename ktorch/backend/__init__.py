"""Keras `backend` compatibility helpers (`K.floatx()`, `K.clear_session()`, `K.function`...)."""

from ktorch.backend.function import (
    Function,
    function,
    learning_phase,
    set_learning_phase,
)
from ktorch.config import (
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from ktorch.utils import naming


def backend() -> str:
    return "torch"


def clear_session() -> None:
    """Resets the automatic layer names (`dense`, `dense_1`, ... start over)."""
    naming.reset_uids()


__all__ = [
    "Function",
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "function",
    "image_data_format",
    "learning_phase",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_learning_phase",
]
