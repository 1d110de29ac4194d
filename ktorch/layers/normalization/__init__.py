from ktorch.layers.normalization.batch_normalization import BatchNormalization
from ktorch.layers.normalization.group_normalization import GroupNormalization
from ktorch.layers.normalization.layer_normalization import LayerNormalization
from ktorch.layers.normalization.unit_normalization import UnitNormalization

__all__ = [
    "BatchNormalization",
    "GroupNormalization",
    "LayerNormalization",
    "UnitNormalization",
]
