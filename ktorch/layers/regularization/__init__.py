from ktorch.layers.regularization.activity_regularization import ActivityRegularization
from ktorch.layers.regularization.alpha_dropout import AlphaDropout
from ktorch.layers.regularization.dropout import Dropout
from ktorch.layers.regularization.gaussian_dropout import GaussianDropout
from ktorch.layers.regularization.gaussian_noise import GaussianNoise
from ktorch.layers.regularization.spatial_dropout import (
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)

__all__ = [
    "ActivityRegularization",
    "AlphaDropout",
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]
