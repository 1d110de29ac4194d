"""ktorch: the Keras API, implemented natively on PyTorch.

`import ktorch as keras` runs Keras code on PyTorch: every layer is a `torch.nn.Module`,
every optimizer can be a `torch.optim` one.
"""

__version__ = "0.1.0"

from ktorch import (  # noqa: E402
    activations,
    backend,
    callbacks,
    config,  # noqa: E402
    constraints,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    regularizers,
    saving,
    utils,
)
from ktorch.layers import Input, InputLayer, Layer  # noqa: E402
from ktorch.models import Model, Sequential  # noqa: E402

__all__ = [
    "Input",
    "InputLayer",
    "Layer",
    "Model",
    "Sequential",
    "__version__",
    "activations",
    "backend",
    "callbacks",
    "config",
    "constraints",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "regularizers",
    "saving",
    "utils",
]
