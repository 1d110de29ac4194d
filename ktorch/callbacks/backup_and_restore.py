"""`BackupAndRestore`: resume an interrupted `fit` exactly where it stopped."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import torch

from ktorch.callbacks.callback import Callback
from ktorch.saving.file_utils import atomic_write
from ktorch.trainers import distributed
from ktorch.utils.random import get_rng_state

_FILE = "backup.safetensors"
_PREVIOUS = "backup.previous.safetensors"
_FORMAT = "ktorch.backup/1"


class BackupAndRestore(Callback):
    """Backs up the whole training state regularly; a restarted `fit` resumes from it.

    The backup holds the model's weights and buffers, the optimizer state, the epoch and the
    step within it, the random streams (the epoch's shuffling and the dropout draws, including
    seeded layers' own generators), the running metric values of the epoch, the history so far
    and the state of the other callbacks that have one (`EarlyStopping`'s wait and best,
    `ReduceLROnPlateau`, `ModelCheckpoint`'s best). A run killed at any point and started again
    with the same command therefore ends with the same weights as an uninterrupted run (on the
    CPU; on CUDA up to the nondeterminism of the kernels). Each backup replaces the previous one
    atomically: a crash while writing leaves the previous backup usable. The backup is deleted
    when `fit` completes, unless `delete_checkpoint=False`.

    The model must be built before `fit` (give it an `Input` or call `build`). Mid-epoch
    resumption skips the batches already trained on, so the data must come in the same order
    on the restart: arrays, tensors, datasets and `DataLoader`s shuffled from the global torch
    seed do; a one-shot generator yields from wherever it is.

    Args:
        backup_dir: the folder holding the backup (created when missing). Use one folder per
            training run.
        save_freq: `"epoch"` to back up after every epoch, or an integer to back up every that
            many batches (resumption then restarts inside the epoch).
        double_checkpoint: also keep the backup before the latest one, and fall back to it when
            the latest cannot be read.
        delete_checkpoint: delete the backup when training completes.

    Example:
        ```python
        callback = ktorch.callbacks.BackupAndRestore(backup_dir="/tmp/backup")
        model.fit(x, y, epochs=10, callbacks=[callback])  # killed at epoch 4...
        model.fit(x, y, epochs=10, callbacks=[callback])  # ...resumes at epoch 4
        ```
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"Empty `backup_dir` argument passed. Received: {backup_dir!r}")
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument `save_freq`. Expected 'epoch' or a positive "
                f"integer. Received: save_freq={save_freq!r}"
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._path = os.path.join(self.backup_dir, _FILE)
        self._previous = os.path.join(self.backup_dir, _PREVIOUS)
        self._callback_list = None
        self._epoch = 0
        self._batches_done = 0
        self._saved_at = -1
        self._saved_epoch = None
        self._first_epoch = None
        self._pending = None

    def _attach(self, callback_list) -> None:
        """Called by `CallbackList`: the other callbacks, whose state the backup holds."""
        self._callback_list = callback_list

    def _peers(self) -> list:
        callbacks = self._callback_list.callbacks if self._callback_list is not None else []
        return [
            c
            for c in callbacks
            if c is not self
            and callable(getattr(c, "get_state", None))
            and callable(getattr(c, "set_state", None))
        ]

    # ------------------------------------------------------------------ hooks

    def on_train_begin(self, logs=None):
        model = self.model
        self._batches_done = 0
        self._saved_at = -1
        self._saved_epoch = None
        self._first_epoch = None
        self._pending = None
        self._remove_stale_temporaries()
        state = self._read()
        if state is None:
            return
        if not model.built:
            # Built by fit on its first batch the first time: rebuild it the same way.
            _build_from_specs(model, state.get("input_specs"), self.backup_dir)
        model._prepare_training()
        self._restore(state)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._first_epoch is None:
            self._first_epoch = epoch
            if self._pending is not None:
                # After every callback's on_train_begin, which may reset its own state.
                self._restore_callbacks(self._pending)
                self._pending = None

    def on_train_batch_begin(self, batch, logs=None):
        # A backup is taken before a batch, not after one: by then every callback has finished
        # with the previous batch (and epoch), and the epoch's shuffling is drawn.
        if self.save_freq == "epoch":
            due = self._saved_epoch != self._epoch and self._epoch != self._first_epoch
        else:
            due = self._batches_done != self._saved_at and (
                self._batches_done % self.save_freq == 0 and self._batches_done > 0
            )
        if due:
            self._save(self._epoch, batch)
            self._saved_at = self._batches_done
            self._saved_epoch = self._epoch

    def on_train_batch_end(self, batch, logs=None):
        self._batches_done += 1

    def on_train_end(self, logs=None):
        if self._pending is not None:
            # The backup was taken after the last epoch: nothing was left to train.
            self._restore_callbacks(self._pending)
            self._pending = None
        if not distributed.is_main_process():
            return
        if self.delete_checkpoint:
            for path in (self._path, self._previous):
                if os.path.exists(path):
                    os.remove(path)
        elif self._first_epoch is not None:
            # Training is complete up to here: a longer run continues from this point.
            self._save(self._epoch + 1, 0, epoch_rng=get_rng_state())

    def _remove_stale_temporaries(self) -> None:
        # Left by a process killed while writing a backup (atomic_write's naming).
        if not distributed.is_main_process() or not os.path.isdir(self.backup_dir):
            return
        for name in os.listdir(self.backup_dir):
            if name.endswith(".tmp") and name.startswith((f".{_FILE}.", f".{_PREVIOUS}.")):
                os.remove(os.path.join(self.backup_dir, name))

    # ------------------------------------------------------------------ state

    def _state(self, epoch: int, step: int, epoch_rng=None) -> dict:
        model = self.model
        optimizer = model.optimizer
        return {
            "format": _FORMAT,
            "epoch": epoch,
            "step": step,
            "model": {k: v.detach() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "metrics": [
                [v.detach() for v in getattr(metric, "variables", [])] for metric in model.metrics
            ],
            "epoch_rng": epoch_rng if epoch_rng is not None else model._epoch_rng_state,
            "rng": get_rng_state(),
            "seed_generators": _seed_generator_states(model),
            "callbacks": {type(c).__name__ + f"#{i}": c.get_state() for i, c in _indexed(self)},
            "history": _history_state(model),
            "input_specs": model._first_input_specs,
        }

    def _save(self, epoch: int, step: int, epoch_rng=None) -> None:
        if not distributed.is_main_process():
            return
        tensors: dict[str, torch.Tensor] = {}
        skeleton = _pack(self._state(epoch, step, epoch_rng), tensors)
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._path):
            os.replace(self._path, self._previous)
        from safetensors.torch import save_file

        with atomic_write(self._path) as tmp:
            save_file(tensors, tmp, metadata={"ktorch_backup": json.dumps(skeleton)})

    def _read(self) -> dict | None:
        for path in (self._path, self._previous) if self.double_checkpoint else (self._path,):
            if not os.path.exists(path):
                continue
            try:
                return _load(path)
            except (OSError, ValueError) as error:
                if path == self._path and self.double_checkpoint and os.path.exists(self._previous):
                    warnings.warn(
                        f"The latest backup {path} could not be read ({error}); falling back "
                        "to the previous one.",
                        stacklevel=2,
                    )
                    continue
                raise
        return None

    def _restore(self, state: dict) -> None:
        model = self.model
        if state.get("format") != _FORMAT:
            raise ValueError(
                f"The backup in {self.backup_dir} is not a ktorch backup of format {_FORMAT}. "
                f"Received format: {state.get('format')!r}"
            )
        own = model.state_dict()
        saved = state["model"]
        if set(own) != set(saved):
            raise ValueError(
                f"The backup in {self.backup_dir} does not match model '{model.name}': "
                f"missing {sorted(set(own) - set(saved))}, unexpected "
                f"{sorted(set(saved) - set(own))}. Use a new backup_dir for a new model."
            )
        for key, value in saved.items():
            if tuple(own[key].shape) != tuple(value.shape):
                raise ValueError(
                    f"The backup in {self.backup_dir} does not match model '{model.name}': "
                    f"{key} has shape {tuple(value.shape)} in the backup and "
                    f"{tuple(own[key].shape)} in the model."
                )
        if len(model.metrics) != len(state["metrics"]):
            raise ValueError(
                f"The backup in {self.backup_dir} has {len(state['metrics'])} metric states; "
                f"model '{model.name}' is compiled with {len(model.metrics)} metrics."
            )
        model.load_state_dict(saved)
        if state["optimizer"] is not None and model.optimizer is not None:
            model.optimizer.load_state_dict(state["optimizer"])
        _set_seed_generator_states(model, state["seed_generators"])
        self._pending = state
        model._resume_point = {
            "epoch": int(state["epoch"]),
            "step": int(state["step"]),
            "epoch_rng": state["epoch_rng"],
            "rng": state["rng"],
            "metrics": state["metrics"],
        }

    def _restore_callbacks(self, state: dict) -> None:
        for key, callback in _indexed(self):
            name = type(callback).__name__ + f"#{key}"
            if name in state["callbacks"]:
                callback.set_state(state["callbacks"][name])
        _set_history_state(self.model, state["history"])


def _build_from_specs(model, specs, backup_dir: str) -> None:
    if specs is None:
        raise ValueError(
            f"The backup in {backup_dir} does not record the model's input shapes, and model "
            f"'{model.name}' is unbuilt: build it before calling `fit()`."
        )

    def zeros(spec):
        shape, dtype = spec
        return torch.zeros([1, *shape[1:]], dtype=getattr(torch, dtype))

    inputs = _map_specs(specs, zeros)
    with torch.no_grad():
        model(inputs, training=False)


def _map_specs(specs, fn):
    # A spec is a `[shape, dtype]` pair; containers of specs are lists, tuples and dicts.
    if isinstance(specs, dict):
        return {k: _map_specs(v, fn) for k, v in specs.items()}
    if isinstance(specs, (list, tuple)) and len(specs) == 2 and isinstance(specs[1], str):
        return fn(specs)
    if isinstance(specs, (list, tuple)):
        return type(specs)(_map_specs(v, fn) for v in specs)
    return None


def _indexed(backup: BackupAndRestore):
    # Callbacks are matched by their position among those with a state, and their class.
    return list(enumerate(backup._peers()))


def _history_state(model) -> dict:
    history = getattr(model, "history", None)
    if history is None:
        return {"history": {}, "epoch": []}
    return {"history": history.history, "epoch": history.epoch}


def _set_history_state(model, state: dict) -> None:
    history = getattr(model, "history", None)
    if history is not None:
        history.history = {k: list(v) for k, v in state["history"].items()}
        history.epoch = list(state["epoch"])


def _seed_generators(model):
    from ktorch.layers.regularization.seed_generator import SeedGenerator

    for path, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, SeedGenerator):
                yield f"{path}.{attr}", value


def _seed_generator_states(model) -> dict:
    return {
        name: {str(device): gen.get_state() for device, gen in generator._generators.items()}
        for name, generator in _seed_generators(model)
    }


def _set_seed_generator_states(model, states: dict) -> None:
    for name, generator in _seed_generators(model):
        for device, value in states.get(name, {}).items():
            generator.generator(torch.device(device)).set_state(value)


# A backup is one safetensors file: the tensors, plus a JSON skeleton of everything else
# (kept in the file's metadata) in which each tensor or array is replaced by a reference.


def _pack(value, tensors: dict):
    if torch.is_tensor(value):
        key = str(len(tensors))
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        key = str(len(tensors))
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"__array__": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: _pack(v, tensors) for k, v in value.items()}}
        return {"__items__": [[_pack(k, tensors), _pack(v, tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_pack(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_pack(v, tensors) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"Cannot store a value of type {type(value).__name__} in a backup: {value!r}")


def _unpack(value, tensors: dict):
    if isinstance(value, list):
        return [_unpack(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__array__" in value:
        return tensors[value["__array__"]].numpy()
    if "__dict__" in value:
        return {k: _unpack(v, tensors) for k, v in value["__dict__"].items()}
    if "__items__" in value:
        return {_unpack(k, tensors): _unpack(v, tensors) for k, v in value["__items__"]}
    if "__tuple__" in value:
        return tuple(_unpack(v, tensors) for v in value["__tuple__"])
    raise ValueError(f"Unknown entry in the backup's skeleton: {sorted(value)}")


def _load(path: str) -> dict:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise ValueError(f"The backup file {path} is corrupt or truncated: {error}") from error
    if "ktorch_backup" not in metadata:
        raise ValueError(f"The file {path} is not a ktorch backup (no backup metadata).")
    try:
        skeleton = json.loads(metadata["ktorch_backup"])
        return _unpack(skeleton, tensors)
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"The backup file {path} is corrupt: {error}") from error
