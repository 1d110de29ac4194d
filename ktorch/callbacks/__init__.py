"""Callbacks: hooks into `fit`, `evaluate` and `predict`."""

from ktorch.callbacks.callback import Callback
from ktorch.callbacks.callback_list import CallbackList
from ktorch.callbacks.history import History
from ktorch.callbacks.progbar_logger import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
