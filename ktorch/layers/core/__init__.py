from ktorch.layers.core.activation import Activation
from ktorch.layers.core.dense import Dense
from ktorch.layers.core.embedding import Embedding
from ktorch.layers.core.identity import Identity
from ktorch.layers.core.input_layer import Input, InputLayer
from ktorch.layers.core.lambda_layer import Lambda
from ktorch.layers.core.masking import Masking

__all__ = [
    "Activation",
    "Dense",
    "Embedding",
    "Identity",
    "Input",
    "InputLayer",
    "Lambda",
    "Masking",
]
