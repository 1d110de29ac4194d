"""Layers: the `Layer` base and the built-in layers, re-exported under Keras's names."""

from ktorch.layers.activations import *  # noqa: F403
from ktorch.layers.attention import *  # noqa: F403
from ktorch.layers.convolutional import *  # noqa: F403
from ktorch.layers.core import *  # noqa: F403
from ktorch.layers.input_spec import InputSpec as InputSpec
from ktorch.layers.layer import Layer as Layer
from ktorch.layers.merging import *  # noqa: F403
from ktorch.layers.node import KerasTensor as KerasTensor
from ktorch.layers.normalization import *  # noqa: F403
from ktorch.layers.pooling import *  # noqa: F403
from ktorch.layers.preprocessing import *  # noqa: F403
from ktorch.layers.regularization import *  # noqa: F403
from ktorch.layers.reshaping import *  # noqa: F403
from ktorch.layers.rnn import *  # noqa: F403
from ktorch.layers.serialization import deserialize as deserialize
from ktorch.layers.serialization import serialize as serialize
from ktorch.layers.variable import Variable as Variable
