"""A training run for the BackupAndRestore kill-and-resume tests (run as a subprocess).

Usage: python resume_job.py BACKUP_DIR OUT.npz SAVE_FREQ KILL

SAVE_FREQ is "epoch" or an integer. KILL is "none", "step:N" (SIGKILL after the N-th training
batch overall) or "write:N" (SIGKILL in the middle of writing the N-th backup, leaving a
truncated temporary file behind).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import numpy as np


def main() -> None:
    backup_dir, out, save_freq, kill = sys.argv[1:5]
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)

    import safetensors.torch

    import ktorch as keras

    if kill.startswith("write:"):
        target = int(kill.split(":")[1])
        original = safetensors.torch.save_file
        calls = [0]

        def dying_save_file(tensors, filename, metadata=None):
            calls[0] += 1
            original(tensors, filename, metadata=metadata)
            if calls[0] == target:
                with open(filename, "r+b") as f:
                    f.truncate(os.path.getsize(filename) // 2)
                os.kill(os.getpid(), signal.SIGKILL)

        safetensors.torch.save_file = dying_save_file

    class Killer(keras.callbacks.Callback):
        def __init__(self, at):
            super().__init__()
            self.at, self.seen = at, 0

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen == self.at:
                os.kill(os.getpid(), signal.SIGKILL)

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 8)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype("int64") + (x[:, 3] > 1).astype("int64")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.2, seed=7),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq)]
    if kill.startswith("step:"):
        callbacks.append(Killer(int(kill.split(":")[1])))
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=4,
        validation_split=0.2,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    np.savez(
        out,
        history=json.dumps(history.history),
        backup_left=os.path.exists(os.path.join(backup_dir, "backup.safetensors")),
        **{f"arr_{i}": w for i, w in enumerate(model.get_weights())},
    )


if __name__ == "__main__":
    main()
