"""Callbacks: hooks into `fit`, `evaluate` and `predict`."""

from ktorch.callbacks import experimental
from ktorch.callbacks.backup_and_restore import BackupAndRestore
from ktorch.callbacks.callback import Callback
from ktorch.callbacks.callback_list import CallbackList
from ktorch.callbacks.csv_logger import CSVLogger
from ktorch.callbacks.early_stopping import EarlyStopping
from ktorch.callbacks.history import History
from ktorch.callbacks.lambda_callback import LambdaCallback
from ktorch.callbacks.learning_rate_scheduler import LearningRateScheduler
from ktorch.callbacks.model_checkpoint import ModelCheckpoint
from ktorch.callbacks.progbar_logger import ProgbarLogger
from ktorch.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from ktorch.callbacks.remote_monitor import RemoteMonitor
from ktorch.callbacks.tensorboard import TensorBoard
from ktorch.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "RemoteMonitor",
    "TensorBoard",
    "TerminateOnNaN",
    "experimental",
]
