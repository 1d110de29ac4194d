"""ktorch: the Keras API, implemented natively on PyTorch."""

__version__ = "0.1.0"

from ktorch import config  # noqa: E402
