from ktorch.layers.merging.add import Add, add
from ktorch.layers.merging.average import Average, average
from ktorch.layers.merging.concatenate import Concatenate, concatenate
from ktorch.layers.merging.dot import Dot, dot
from ktorch.layers.merging.maximum import Maximum, maximum
from ktorch.layers.merging.minimum import Minimum, minimum
from ktorch.layers.merging.multiply import Multiply, multiply
from ktorch.layers.merging.subtract import Subtract, subtract

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]
