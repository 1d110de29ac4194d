"""`ktorch.callbacks.experimental`: the Keras 2.x home of `BackupAndRestore`."""

from ktorch.callbacks.backup_and_restore import BackupAndRestore

__all__ = ["BackupAndRestore"]
