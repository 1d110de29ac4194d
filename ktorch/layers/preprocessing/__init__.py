from ktorch.layers.preprocessing.normalization import Normalization
from ktorch.layers.preprocessing.rescaling import Rescaling

__all__ = ["Normalization", "Rescaling"]
