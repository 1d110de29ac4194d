"""Layers: the `Layer` base and the built-in layers, re-exported under Keras's names."""

from ktorch.layers.core import *  # noqa: F403
from ktorch.layers.convolutional import *  # noqa: F403
from ktorch.layers.pooling import *  # noqa: F403
from ktorch.layers.reshaping import *  # noqa: F403
from ktorch.layers.activations import *  # noqa: F403
from ktorch.layers.merging import *  # noqa: F403
from ktorch.layers.normalization import *  # noqa: F403
from ktorch.layers.regularization import *  # noqa: F403
from ktorch.layers.attention import *  # noqa: F403
from ktorch.layers.preprocessing import *  # noqa: F403
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.layer import Layer
from ktorch.layers.node import KerasTensor
from ktorch.layers.variable import Variable
from ktorch.layers.serialization import deserialize, serialize
