"""Models: `Model` (functional and subclassed), `Sequential`."""

from ktorch.models.functional import Functional
from ktorch.models.model import Model
from ktorch.models.sequential import Sequential

__all__ = ["Functional", "Model", "Sequential"]
