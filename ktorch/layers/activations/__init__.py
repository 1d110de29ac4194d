from ktorch.layers.activations.elu import ELU
from ktorch.layers.activations.leaky_relu import LeakyReLU
from ktorch.layers.activations.prelu import PReLU
from ktorch.layers.activations.relu import ReLU
from ktorch.layers.activations.softmax import Softmax

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]
