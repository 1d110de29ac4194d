"""`Trainer`: `compile`, `fit`, `evaluate`, `predict` and the `*_on_batch` methods of `Model`.

The step (forward, loss, backward, optimizer) is one method, `train_step`, which users may
override as in the Keras torch-backend guide. Per-step host work is kept minimal: metrics
accumulate on the device and are read (one host sync) only when a callback or the progress
bar needs a value.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import MutableMapping

import numpy as np
import torch

from ktorch import metrics as metrics_module
from ktorch import optimizers as optimizers_module
from ktorch.callbacks.callback_list import CallbackList
from ktorch.layers.layer import _context, new_call
from ktorch.trainers import distributed
from ktorch.trainers.compile_utils import CompileLoss, CompileMetrics
from ktorch.trainers.data_adapters import (
    get_data_adapter,
    is_array_data,
    train_validation_split,
    unpack_x_y_sample_weight,
)
from ktorch.utils import random as random_utils
from ktorch.utils import tree


class LazyLogs(MutableMapping):
    """Logs whose values are computed (one host sync) on first access."""

    def __init__(self, compute):
        self._compute = compute
        self._data = None

    def _materialize(self) -> dict:
        if self._data is None:
            self._data = self._compute()
        return self._data

    def __getitem__(self, key):
        return self._materialize()[key]

    def __setitem__(self, key, value):
        self._materialize()[key] = value

    def __delitem__(self, key):
        del self._materialize()[key]

    def __iter__(self):
        return iter(self._materialize())

    def __len__(self):
        return len(self._materialize())

    def copy(self) -> dict:
        return dict(self._materialize())

    def __repr__(self) -> str:
        return repr(self._materialize())


def _to_floats(logs: dict) -> dict:
    """Converts a dict of scalars (tensors or numbers) to floats, one host sync per device."""
    flat = {}
    for key, value in logs.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    result = {k: v for k, v in flat.items() if not torch.is_tensor(v)}
    by_device: dict[torch.device, list] = {}
    for key, value in flat.items():
        if torch.is_tensor(value):
            by_device.setdefault(value.device, []).append((key, value))
    for items in by_device.values():
        # Stacked on their device first: one transfer (one sync) per device, not per value.
        values = torch.stack([v.detach().reshape(()).float() for _, v in items]).tolist()
        result.update({k: float(v) for (k, _), v in zip(items, values, strict=True)})
    return {
        k: (float(v) if isinstance(v, (int, float, np.floating)) else v)
        for k, v in ((k, result[k]) for k in flat)
    }


def _batch_size_of(x) -> int:
    for leaf in tree.flatten(x):
        if leaf is not None and hasattr(leaf, "shape"):
            return int(leaf.shape[0])
    return 1


def _move(structure, device, non_blocking):
    def move(v):
        if torch.is_tensor(v) and v.device != device:
            if non_blocking and device.type == "cuda" and not v.is_pinned():
                v = v.pin_memory()
            return v.to(device, non_blocking=non_blocking)
        return v

    return tree.map_structure(move, structure)


class LossTracker(metrics_module.Mean):
    """The `loss` metric: a `Mean` with a two-op path for the per-step scalar loss."""

    def update_state(self, values, sample_weight=None) -> None:
        if (
            isinstance(sample_weight, int)
            and torch.is_tensor(values)
            and values.ndim == 0
            and values.dtype == self.total.dtype
            and values.device == self.total.device
        ):
            # Two in-place ops instead of the general weighting path; no host sync.
            self.total.add_(values.detach(), alpha=sample_weight)
            self.count.add_(sample_weight)
            return
        super().update_state(values, sample_weight)


class Trainer:
    """Training methods mixed into `ktorch.Model`."""

    def __init__(self):
        d = self.__dict__
        d["compiled"] = False
        d["optimizer"] = None
        d["loss"] = None
        d["_compile_loss"] = None
        d["_compile_metrics"] = None
        d["_loss_tracker"] = None
        d["stop_training"] = False
        d["history"] = None
        d["_run_eagerly"] = False
        d["_jit_compile"] = False
        d["_compiled_forward"] = None
        d["steps_per_execution"] = 1
        d["_trained_weights"] = None
        d["_constrained"] = None
        d["_regularized"] = None
        # Random state at the start of the current epoch, and where a restored backup
        # resumes (set by BackupAndRestore): see `fit`.
        d["_epoch_rng_state"] = None
        d["_resume_point"] = None
        d["_first_input_specs"] = None
        d["_compile_args"] = None

    # ------------------------------------------------------------------ compile

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        metrics=None,
        loss_weights=None,
        weighted_metrics=None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile="auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configures the model for training.

        Args:
            optimizer: name, `ktorch.optimizers` object, or any `torch.optim.Optimizer`.
            loss: name, `ktorch.losses` object, callable `fn(y_true, y_pred)`, `torch.nn` loss
                module, or a list/dict with one per output.
            metrics: list of names (`"accuracy"` resolved from the targets as Keras does),
                metric objects or callables; or a dict/list per output.
            loss_weights: per-output loss weights.
            weighted_metrics: metrics computed with `sample_weight`/`class_weight`.
            run_eagerly: accepted for compatibility; the step always runs eagerly unless
                `jit_compile=True`.
            steps_per_execution: per-batch callbacks run every this many steps.
            jit_compile: True runs the forward pass and loss through `torch.compile`;
                "auto" and False run eagerly.

        The trainable weights are captured now: changing `trainable` afterwards takes effect
        at the next `compile()`.
        """
        d = self.__dict__
        d["optimizer"] = optimizers_module.get(optimizer)
        d["loss"] = loss
        output_names = self._output_names_or_none()
        d["_compile_loss"] = (
            CompileLoss(loss, loss_weights, output_names) if loss is not None else None
        )
        d["_compile_metrics"] = (
            CompileMetrics(metrics, weighted_metrics, output_names, loss)
            if metrics or weighted_metrics
            else None
        )
        d["_loss_tracker"] = LossTracker(name="loss")
        d["_run_eagerly"] = bool(run_eagerly)
        if jit_compile not in (True, False, "auto"):
            raise ValueError(
                f"Argument `jit_compile` must be True, False or 'auto'. Received: {jit_compile!r}"
            )
        d["_jit_compile"] = jit_compile is True and not run_eagerly
        d["_compiled_forward"] = None
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(
                "Argument `steps_per_execution` must be a positive integer. "
                f"Received: {steps_per_execution!r}"
            )
        d["steps_per_execution"] = steps_per_execution
        d["_compile_args"] = {
            "optimizer": self.optimizer,
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
            "run_eagerly": bool(run_eagerly),
            "steps_per_execution": steps_per_execution,
            "jit_compile": self._jit_compile,
        }
        d["_trained_weights"] = None
        d["_constrained"] = None
        d["_regularized"] = None
        if isinstance(self.optimizer, optimizers_module.TorchOptimizer):
            d["_trained_weights"] = [
                p for group in self.optimizer.torch_optimizer.param_groups for p in group["params"]
            ]
        elif self.built:
            d["_trained_weights"] = list(self.trainable_weights)
        d["compiled"] = True

    def get_compile_config(self) -> dict | None:
        """The arguments of `compile()`, serialized as Keras writes them (None if uncompiled).

        Raises:
            TypeError: an argument cannot be serialized (a torch optimizer, a plain callable
                that is not registered).
        """
        if not self.compiled:
            return None
        # Saving sits above the trainer: imported on use.
        from ktorch.saving.serialization_lib import serialize_keras_object

        return {k: serialize_keras_object(v) for k, v in self._compile_args.items()}

    def compile_from_config(self, config: dict) -> None:
        """Compiles the model from `get_compile_config()`'s output (custom objects in scope)."""
        from ktorch.saving.saving_lib import compile_from_config

        compile_from_config(self, config)

    @property
    def compiled_loss(self):
        return self._compile_loss

    @property
    def compiled_metrics(self):
        return self._compile_metrics

    @property
    def run_eagerly(self) -> bool:
        return self._run_eagerly

    @property
    def jit_compile(self) -> bool:
        return self._jit_compile

    def _output_names_or_none(self):
        try:
            return self.output_names
        except AttributeError:
            return None

    def _assert_compiled(self, method: str) -> None:
        if not self.compiled:
            raise RuntimeError(
                f"You must call `compile()` before using the model (`{method}` was called on "
                f"model '{self.name}' before `compile()`)."
            )

    # ------------------------------------------------------------------ metrics

    @property
    def metrics(self) -> list:
        """The loss tracker, per-output loss trackers and compiled metrics (as in Keras 3)."""
        found = []
        if self._loss_tracker is not None:
            found.append(self._loss_tracker)
        if self._compile_loss is not None:
            found.extend(self._compile_loss.trackers)
        if self._compile_metrics is not None:
            found.append(self._compile_metrics)
        return found

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def _metric_results(self) -> dict:
        results = {}
        for metric in self.metrics:
            if metric is self._compile_metrics and not metric.built:
                continue
            results[metric.name] = metric.result()
        return results

    def _pull_logs(self, reduce: bool = False) -> dict:
        results = self._metric_results()
        if reduce and distributed.world_size() > 1:
            results = distributed.reduce_metric_results(self.metrics, results)
        return _to_floats(results)

    def get_metrics_result(self) -> dict:
        """Returns the current metric values as a dict of floats."""
        return self._pull_logs()

    # ------------------------------------------------------------------ losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Compiled loss plus, in training, the regularization losses.

        Override it in a subclass to customize the loss; the default train and test steps
        call it.
        """
        total = None
        if self._compile_loss is not None:
            total = self._compile_loss(y, y_pred, sample_weight)
        if training:
            for extra in self._regularization_losses():
                total = extra if total is None else total + extra
        if total is None:
            if self._compile_loss is None:
                raise ValueError(
                    "No loss to compute: provide a `loss` to `compile()` or override "
                    "`compute_loss()`/`train_step()`."
                )
            total = torch.zeros(())
        return total

    def _regularization_losses(self) -> list[torch.Tensor]:
        if self._regularized is None:
            self.__dict__["_regularized"] = [
                w for w in self.weights if getattr(w, "regularizer", None) is not None
            ]
        losses = [w.regularizer(w) for w in self._regularized]
        if _context.depth == 0 and _context.call_losses:
            # Losses added (activity regularizers, add_loss) during the last forward pass.
            losses.extend(_context.call_losses)
        return losses

    # -------------------------------------------------------------------- steps

    def _prepare_training(self) -> None:
        """Captures trained weights (if not done at compile), builds the optimizer."""
        d = self.__dict__
        if d["_trained_weights"] is None:
            d["_trained_weights"] = list(self.trainable_weights)
        if d["_constrained"] is None:
            d["_constrained"] = [
                w for w in self._trained_weights if getattr(w, "constraint", None) is not None
            ]
        if (
            self.optimizer is not None
            and self._trained_weights
            and not getattr(self.optimizer, "built", True)
        ):
            self.optimizer.build(self._trained_weights)

    def _set_requires_grad(self) -> list:
        """Makes exactly the compile-time trainable weights require grad; returns the undo."""
        trained = {id(w) for w in self._trained_weights}
        changed = []
        for param in self.parameters():
            want = id(param) in trained
            if param.requires_grad != want:
                changed.append((param, param.requires_grad))
                param.requires_grad_(want)
        return changed

    @staticmethod
    def _restore_requires_grad(changed) -> None:
        for param, value in changed:
            param.requires_grad_(value)

    def _forward(self, x, training):
        if self._jit_compile:
            if self._compiled_forward is None:
                self.__dict__["_compiled_forward"] = torch.compile(self.__call__)
            # Start the call eagerly: the graph then always sees an empty per-call loss list,
            # so it does not recompile when other models ran in between.
            new_call()
            return self._compiled_forward(x, training=training)
        return self(x, training=training)

    def train_step(self, data):
        """One optimization step on a batch `(x, y, sample_weight)`; override to customize.

        Returns:
            None (the default: logs come from `self.metrics`), or a dict of logs.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        if self._trained_weights:
            self.optimizer.zero_grad()
        y_pred = self._forward(x, True)
        loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
        self._loss_tracker.update_state(loss.detach(), sample_weight=_batch_size_of(x))
        if not self._trained_weights:
            warnings.warn(
                f"The model '{self.name}' has no trainable weights to update.", stacklevel=2
            )
        else:
            loss.backward()
            self.optimizer.step()
        if self._constrained:
            with torch.no_grad():
                for weight in self._constrained:
                    weight.copy_(weight.constraint(weight))
        if self._compile_metrics is not None:
            with torch.no_grad():
                self._compile_metrics.update_state(
                    y, y_pred.detach() if torch.is_tensor(y_pred) else y_pred, sample_weight
                )
        return None

    def test_step(self, data):
        """One evaluation step on a batch; override to customize."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self._forward(x, False)
        loss = self.compute_loss(x, y, y_pred, sample_weight, training=False)
        self._loss_tracker.update_state(loss, sample_weight=_batch_size_of(x))
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
        return None

    def predict_step(self, data):
        """Returns the model's predictions for a batch; override to customize."""
        x, _, _ = unpack_x_y_sample_weight(data)
        return self._forward(x, False)

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Updates the compiled metrics and returns all metric results (Keras API)."""
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
        return self._metric_results()

    # --------------------------------------------------------------- data & loops

    def _device(self) -> torch.device:
        for param in self.parameters():
            return param.device
        for buffer in self.buffers():
            return buffer.device
        return torch.device("cpu")

    def _batches(self, adapter, device):
        non_blocking = device.type == "cuda"
        for batch in adapter:
            if device.type != "cpu":
                batch = _move(batch, device, non_blocking)
            yield batch

    @staticmethod
    def _pack(batch):
        x, y, sw = batch
        if sw is not None:
            return (x, y, sw)
        if y is not None:
            return (x, y)
        return (x,)

    def _resolve_verbose(self, verbose) -> int:
        if not distributed.is_main_process():
            return 0
        if verbose == "auto":
            return 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"Argument `verbose` must be 0, 1, 2 or 'auto'. Received: {verbose!r}")
        return int(verbose)

    def _set_mode(self, training: bool) -> None:
        if self.training != training:
            self.train(training)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq: int = 1,
    ):
        """Trains the model for a fixed number of epochs.

        Args:
            x, y: inputs and targets: NumPy arrays, tensors, lists/dicts of them; or a
                DataLoader, Dataset or generator yielding `(x, y[, sample_weight])` (then no `y`).
            batch_size: samples per step (32 by default) for array inputs.
            epochs: index of the final epoch (training runs from `initial_epoch`).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, "auto".
            callbacks: list of `ktorch.callbacks.Callback`.
            validation_split: fraction of array data held out for validation: the **last**
                samples, taken before shuffling.
            validation_data: `(x_val, y_val[, sw_val])` or a dataset, evaluated each epoch.
            shuffle: True reshuffles array data every epoch; "batch" shuffles batch order.
            class_weight: dict class index -> loss weight.
            sample_weight: per-sample loss weights.
            initial_epoch: epoch to start from (for resuming).
            steps_per_epoch: batches per epoch (required for endless generators).
            validation_steps, validation_batch_size, validation_freq: validation settings.

        Returns:
            A `History` whose `.history` maps metric names to per-epoch values.
        """
        self._assert_compiled("fit")
        if validation_split and validation_data is None:
            if not is_array_data(x):
                raise ValueError(
                    "`validation_split` is only supported for NumPy arrays and torch tensors; "
                    "with datasets, generators or DataLoaders, pass `validation_data` instead. "
                    f"Received: x of type {type(x).__name__}"
                )
            (x, y, sample_weight), validation_data = train_validation_split(
                (x, y, sample_weight), validation_split
            )
        rank, world = distributed.rank(), distributed.world_size()
        adapter = get_data_adapter(
            x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight, rank, world
        )
        val_adapter = None
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                vx, vy, vsw = unpack_x_y_sample_weight(tuple(validation_data))
            else:
                vx, vy, vsw = validation_data, None, None
            val_adapter = get_data_adapter(
                vx,
                vy,
                vsw,
                validation_batch_size or batch_size,
                validation_steps,
                False,
                None,
                rank,
                world,
            )
        verbose = self._resolve_verbose(verbose)
        callback_list = CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=adapter.num_batches,
        )
        self.stop_training = False
        device = self._device()
        first_batch = True
        undo = []
        every = self.steps_per_execution
        batch_begin = callback_list.needs_batch("train_begin")
        batch_end = callback_list.needs_batch("train_end")
        self._set_mode(True)
        callback_list.on_train_begin()
        resume, self._resume_point = self._resume_point, None
        if resume is not None:
            initial_epoch = resume["epoch"]
        logs = {}
        try:
            for epoch in range(initial_epoch, epochs):
                skip = 0
                if resume is not None:
                    # Replay the epoch's shuffling, skip the batches already trained on, then
                    # continue the random streams from the backup (BackupAndRestore).
                    random_utils.set_rng_state(resume["epoch_rng"])
                    skip = resume["step"]
                else:
                    self.reset_metrics()
                self.__dict__["_epoch_rng_state"] = random_utils.get_rng_state()
                callback_list.on_epoch_begin(epoch)
                step = -1
                for step, batch in enumerate(self._batches(adapter, device)):
                    if step < skip:
                        continue
                    if first_batch:
                        # Builds an unbuilt model on this batch, on the batch's own device.
                        undo = self._first_train_batch(batch)
                        first_batch = False
                    if resume is not None and "rng" in resume:
                        # The random streams as they were when the backup was taken.
                        random_utils.set_rng_state(resume.pop("rng"))
                    report = (step + 1) % every == 0
                    if batch_begin and report:
                        callback_list.on_train_batch_begin(step)
                    step_logs = self.train_step(self._pack(batch))
                    if resume is not None:
                        self._add_metric_states(resume.pop("metrics", None))
                    if batch_end and report:
                        callback_list.on_train_batch_end(step, self._lazy_logs(step_logs))
                    if self.stop_training:
                        break
                if resume is not None:
                    self._add_metric_states(resume.pop("metrics", None))
                resume = None
                if step < 0:
                    raise ValueError(
                        "The training data produced no batch in this epoch: it is empty or "
                        "exhausted (use `steps_per_epoch` with generators)."
                    )
                logs = self._pull_logs(reduce=True)
                if val_adapter is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_loop(val_adapter, callback_list, device)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                    self._set_mode(True)
                callback_list.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            self._restore_requires_grad(undo)
            self._set_mode(False)
        callback_list.on_train_end(logs)
        return self.history

    def _add_metric_states(self, states) -> None:
        """Adds saved metric states (sums and counts) to the current ones when resuming.

        Metric states are additive (data-parallel training sums them across processes too);
        adding after the first step lets compiled metrics build themselves on real data first.
        """
        if states is None:
            return
        for metric, values in zip(self.metrics, states, strict=True):
            variables = getattr(metric, "variables", [])
            if len(variables) != len(values):
                raise ValueError(
                    f"Cannot restore the state of metric '{metric.name}': the backup has "
                    f"{len(values)} variables, the metric {len(variables)}."
                )
            for variable, value in zip(variables, values, strict=True):
                variable.add_(value.to(variable.device, variable.dtype))

    def _first_train_batch(self, batch) -> list:
        """Builds the model on the first batch if needed and captures the trained weights."""
        x = batch[0]
        # Shapes and dtypes of the inputs (BackupAndRestore rebuilds an unbuilt model from them).
        self.__dict__["_first_input_specs"] = tree.map_structure(
            lambda t: (
                [[None, *t.shape[1:]], str(t.dtype).removeprefix("torch.")]
                if torch.is_tensor(t)
                else None
            ),
            x,
        )
        if not self.built:
            with torch.no_grad():
                self(x, training=False)
        self._prepare_training()
        return self._set_requires_grad()

    def _lazy_logs(self, step_logs):
        if step_logs is None:
            return LazyLogs(self._pull_logs)
        return LazyLogs(lambda: _to_floats(step_logs))

    def _evaluate_loop(self, adapter, callback_list, device) -> dict:
        self._set_mode(False)
        self.reset_metrics()
        callback_list.on_test_begin()
        batch_end = callback_list.needs_batch("test_end")
        with torch.no_grad():
            step = -1
            for step, batch in enumerate(self._batches(adapter, device)):
                callback_list.on_test_batch_begin(step)
                step_logs = self.test_step(self._pack(batch))
                if batch_end:
                    callback_list.on_test_batch_end(step, self._lazy_logs(step_logs))
        if step < 0:
            raise ValueError("The evaluation data produced no batch: it is empty.")
        logs = self._pull_logs(reduce=True)
        callback_list.on_test_end(logs)
        return logs

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict: bool = False,
        **kwargs,
    ):
        """Returns the loss and metric values of the model on the given data.

        Returns:
            The scalar loss when there are no metrics, else the list `[loss, *metrics]` in
            `metrics_names` order; a dict with `return_dict=True`.
        """
        self._assert_compiled("evaluate")
        unknown = set(kwargs) - {"use_multiprocessing", "workers", "max_queue_size"}
        if unknown:
            raise ValueError(f"Invalid keyword arguments for `evaluate`: {sorted(unknown)}")
        adapter = get_data_adapter(
            x,
            y,
            sample_weight,
            batch_size,
            steps,
            False,
            None,
            distributed.rank(),
            distributed.world_size(),
        )
        verbose = self._resolve_verbose(verbose)
        callback_list = CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=adapter.num_batches,
        )
        # An unbuilt model builds itself on the first batch (on that batch's device).
        logs = self._evaluate_loop(adapter, callback_list, self._device())
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        """Generates predictions batch by batch; returns NumPy arrays (list/dict if multiple)."""
        unknown = set(kwargs) - {"use_multiprocessing", "workers", "max_queue_size"}
        if unknown:
            raise ValueError(f"Invalid keyword arguments for `predict`: {sorted(unknown)}")
        adapter = get_data_adapter(x, None, None, batch_size, steps, False)
        verbose = self._resolve_verbose(verbose)
        callback_list = CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=adapter.num_batches,
        )
        device = self._device()
        self._set_mode(False)
        callback_list.on_predict_begin()
        outputs = []
        batch_begin = callback_list.needs_batch("predict_begin")
        batch_end = callback_list.needs_batch("predict_end")
        with torch.no_grad():
            for step, batch in enumerate(self._batches(adapter, device)):
                if batch_begin:
                    callback_list.on_predict_batch_begin(step)
                # Results stay on the device (no grad, so nothing to detach); one transfer at
                # the end avoids a sync per batch.
                result = self.predict_step((batch[0],))
                outputs.append(result)
                if batch_end:
                    callback_list.on_predict_batch_end(step, {"outputs": result})
        callback_list.on_predict_end()
        if not outputs:
            raise ValueError("The prediction data produced no batch: it is empty.")
        return _concat_outputs(outputs)

    # ---------------------------------------------------------------- on_batch

    def train_on_batch(
        self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False
    ):
        """Runs one optimization step on one batch; returns the loss (and metrics)."""
        self._assert_compiled("train_on_batch")
        adapter = get_data_adapter(
            x, y, sample_weight, _batch_size_of(x) or 1, None, False, class_weight
        )
        batch = next(iter(adapter))
        device = self._device()
        if device.type != "cpu":
            batch = _move(batch, device, False)
        # An unbuilt model builds on the CPU batch, so the batch is already where the model is.
        undo = self._first_train_batch(batch)
        self._set_mode(True)
        try:
            self.reset_metrics()
            step_logs = self.train_step(self._pack(batch))
        finally:
            self._restore_requires_grad(undo)
            self._set_mode(False)
        logs = self._pull_logs() if step_logs is None else _to_floats(step_logs)
        return self._format_batch_logs(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """Evaluates the model on one batch; returns the loss (and metrics)."""
        self._assert_compiled("test_on_batch")
        adapter = get_data_adapter(x, y, sample_weight, _batch_size_of(x) or 1, None, False)
        batch = _move(next(iter(adapter)), self._device(), False)
        self._set_mode(False)
        self.reset_metrics()
        with torch.no_grad():
            step_logs = self.test_step(self._pack(batch))
        logs = self._pull_logs() if step_logs is None else _to_floats(step_logs)
        return self._format_batch_logs(logs, return_dict)

    def predict_on_batch(self, x):
        """Returns predictions for one batch as NumPy array(s)."""
        adapter = get_data_adapter(x, None, None, _batch_size_of(x) or 1, None, False)
        batch = _move(next(iter(adapter)), self._device(), False)
        self._set_mode(False)
        with torch.no_grad():
            result = self.predict_step((batch[0],))
        return _concat_outputs([result])

    @staticmethod
    def _format_batch_logs(logs: dict, return_dict: bool):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # ------------------------------------------------------- deprecated aliases

    # Keras 2's generator methods, with their positional order. `max_queue_size`, `workers`
    # and `use_multiprocessing` belong to the data source in ktorch (`PyDataset(workers=...)`):
    # accepted here for old code, they do not change how a generator is read.

    def fit_generator(
        self,
        generator,
        steps_per_epoch=None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_data=None,
        validation_steps=None,
        validation_freq: int = 1,
        class_weight=None,
        max_queue_size: int = 10,
        workers: int = 1,
        use_multiprocessing: bool = False,
        shuffle=True,
        initial_epoch: int = 0,
    ):
        """Deprecated: `fit` accepts generators; this calls it with Keras 2's arguments."""
        warnings.warn(
            "`fit_generator` is deprecated: use `fit`, which accepts generators.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.fit(
            generator,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_data=validation_data,
            validation_steps=validation_steps,
            validation_freq=validation_freq,
            class_weight=class_weight,
            shuffle=shuffle,
            initial_epoch=initial_epoch,
        )

    def evaluate_generator(
        self,
        generator,
        steps=None,
        callbacks=None,
        max_queue_size: int = 10,
        workers: int = 1,
        use_multiprocessing: bool = False,
        verbose=0,
    ):
        """Deprecated: `evaluate` accepts generators."""
        warnings.warn(
            "`evaluate_generator` is deprecated: use `evaluate`.", DeprecationWarning, stacklevel=2
        )
        return self.evaluate(generator, steps=steps, callbacks=callbacks, verbose=verbose)

    def predict_generator(
        self,
        generator,
        steps=None,
        callbacks=None,
        max_queue_size: int = 10,
        workers: int = 1,
        use_multiprocessing: bool = False,
        verbose=0,
    ):
        """Deprecated: `predict` accepts generators."""
        warnings.warn(
            "`predict_generator` is deprecated: use `predict`.", DeprecationWarning, stacklevel=2
        )
        return self.predict(generator, steps=steps, callbacks=callbacks, verbose=verbose)


def _concat_outputs(outputs: list):
    first = outputs[0]

    def cat(*parts):
        return torch.cat(parts).cpu().numpy()

    if isinstance(first, dict):
        return {k: cat(*[o[k] for o in outputs]) for k in first}
    if isinstance(first, (list, tuple)):
        return [cat(*[o[i] for o in outputs]) for i in range(len(first))]
    return cat(*outputs)
