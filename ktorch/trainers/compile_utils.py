"""What `compile()` builds: the per-output loss and the per-output metrics."""

from __future__ import annotations

import torch

from ktorch import losses as losses_module
from ktorch import metrics as metrics_module
from ktorch.utils import tree


def _output_structure(y_pred, output_names):
    """Returns (names, flat predictions) for single, list or dict model outputs."""
    if isinstance(y_pred, dict):
        names = list(y_pred)
        return names, [y_pred[k] for k in names]
    if isinstance(y_pred, (list, tuple)):
        names = list(output_names or [])
        if len(names) != len(y_pred):
            names = [f"output_{i}" for i in range(len(y_pred))]
        return names, list(y_pred)
    return [output_names[0] if output_names else "output"], [y_pred]


def _align_targets(y_true, names, what="y"):
    if isinstance(y_true, dict):
        missing = [n for n in names if n not in y_true]
        if missing:
            raise ValueError(
                f"The model has outputs {names}, but `{what}` has no entry for {missing}. "
                f"Received keys: {sorted(y_true)}"
            )
        return [y_true[n] for n in names]
    if isinstance(y_true, (list, tuple)):
        if len(y_true) != len(names):
            raise ValueError(
                f"The model has {len(names)} outputs, but `{what}` has {len(y_true)} entries."
            )
        return list(y_true)
    if len(names) != 1:
        raise ValueError(
            f"The model has {len(names)} outputs {names}: pass `{what}` as a list or dict with "
            "one entry per output."
        )
    return [y_true]


def _per_output(spec, names, what):
    """Expands a compile argument (single, list or dict) to one entry per output."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ValueError(
                f"Argument `{what}` has keys {unknown} that are not model outputs {names}."
            )
        return [spec.get(n) for n in names]
    if (
        what == "metrics"
        and isinstance(spec, (list, tuple))
        and len(names) > 1
        and len(spec) == len(names)
        and all(entry is None or isinstance(entry, (list, tuple)) for entry in spec)
    ):
        # Keras's per-output form: one list of metrics for each output, in order.
        return list(spec)
    if isinstance(spec, (list, tuple)) and len(names) > 1 and what != "metrics":
        if len(spec) != len(names):
            raise ValueError(
                f"Argument `{what}` has {len(spec)} entries but the model has {len(names)} "
                f"outputs {names}."
            )
        return list(spec)
    return [spec] * len(names)


def _as_loss(identifier):
    """A reducing loss object for a loss spec (functions get wrapped, as Keras does)."""
    loss = losses_module.get(identifier)
    if isinstance(loss, losses_module.Loss):
        return loss
    if not callable(loss):
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
    return losses_module.LossFunctionWrapper(loss, name=getattr(loss, "__name__", None))


class CompileLoss:
    """The compiled loss: one loss per output, weighted and summed.

    Args:
        loss: a loss (name, object, callable, torch loss module), or a list/dict per output.
        loss_weights: float, list or dict of per-output weights.
        output_names: the model's output names, for dict specs and log names.
    """

    def __init__(self, loss, loss_weights=None, output_names=None):
        self.loss = loss
        self.loss_weights = loss_weights
        self.output_names = output_names
        self.built = False
        self.names = []
        self._fns = []
        self._weights = []
        self._single = None
        self.trackers = []

    def build(self, y_true, y_pred) -> None:
        names, _ = _output_structure(y_pred, self.output_names)
        self.names = names
        specs = _per_output(self.loss, names, "loss")
        weights = (
            _per_output(self.loss_weights, names, "loss_weights")
            if (self.loss_weights is not None)
            else [None] * len(names)
        )
        self._fns = [_as_loss(s) if s is not None else None for s in specs]
        self._weights = [1.0 if w is None else float(w) for w in weights]
        if len(names) == 1 and self._weights[0] == 1.0:
            self._single = self._fns[0]
        if len(names) > 1:
            self.trackers = [metrics_module.Mean(name=f"{n}_loss") for n in names]
        self.built = True

    def __call__(self, y_true, y_pred, sample_weight=None, regularization_losses=None):
        if regularization_losses:
            # Keras 2's `self.compiled_loss(y, y_pred, regularization_losses=self.losses)`.
            total = self(y_true, y_pred, sample_weight)
            return total + sum(regularization_losses)
        if not self.built:
            self.build(y_true, y_pred)
        if self._single is not None:
            return self._single(y_true, y_pred, sample_weight)
        _, preds = _output_structure(y_pred, self.names)
        targets = _align_targets(y_true, self.names)
        if sample_weight is not None and tree.is_nested(sample_weight):
            weights = _align_targets(sample_weight, self.names, "sample_weight")
        else:
            weights = [sample_weight] * len(preds)
        total = None
        for i, (fn, w) in enumerate(zip(self._fns, self._weights, strict=False)):
            if fn is None:
                continue
            value = fn(targets[i], preds[i], weights[i])
            if self.trackers:
                self.trackers[i].update_state(value.detach())
            value = value * w if w != 1.0 else value
            total = value if total is None else total + value
        return total


class CompileMetrics:
    """The compiled metrics of all outputs, behaving as one metric whose result is a dict.

    Args:
        metrics: metric specs (names, objects, callables), a list, or a dict per output.
        weighted_metrics: the same, computed with sample weights.
        output_names: the model's output names.
        loss: the compile loss spec, used to resolve `"accuracy"` like Keras.
    """

    name = "compile_metrics"

    def __init__(self, metrics, weighted_metrics, output_names=None, loss=None):
        self._metrics_spec = metrics
        self._weighted_spec = weighted_metrics
        self.output_names = output_names
        self.loss = loss
        self.built = False
        self._entries: list[tuple[int, object, bool]] = []
        self.names: list[str] = []

    @property
    def metrics(self) -> list:
        return [metric for _, metric, _ in self._entries]

    @property
    def variables(self) -> list[torch.Tensor]:
        return [v for metric in self.metrics for v in metric.variables]

    def build(self, y_true, y_pred) -> None:
        names, preds = _output_structure(y_pred, self.output_names)
        targets = _align_targets(y_true, names) if y_true is not None else [None] * len(names)
        multi = len(names) > 1
        for spec, weighted in ((self._metrics_spec, False), (self._weighted_spec, True)):
            if not spec:
                continue
            per_output = _per_output(spec, names, "metrics")
            for index, entry in enumerate(per_output):
                if entry is None:
                    continue
                entries = entry if isinstance(entry, (list, tuple)) else [entry]
                for identifier in entries:
                    metric = metrics_module.resolve(
                        identifier, targets[index], preds[index], loss=self.loss
                    )
                    if multi:
                        metric.name = f"{names[index]}_{metric.name}"
                    if weighted and not multi and metric.name in self.names:
                        metric.name = f"weighted_{metric.name}"
                    self._entries.append((index, metric, weighted))
                    self.names.append(metric.name)
        self._names = names
        self.built = True

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if not self.built:
            self.build(y_true, y_pred)
        if not self._entries:
            return
        _, preds = _output_structure(y_pred, self._names)
        targets = _align_targets(y_true, self._names)
        if sample_weight is not None and tree.is_nested(sample_weight):
            weights = _align_targets(sample_weight, self._names, "sample_weight")
        else:
            weights = [sample_weight] * len(preds)
        for index, metric, weighted in self._entries:
            metric.update_state(
                targets[index], preds[index], sample_weight=weights[index] if weighted else None
            )

    def result(self) -> dict:
        return {metric.name: metric.result() for _, metric, _ in self._entries}

    def reset_state(self) -> None:
        for _, metric, _ in self._entries:
            metric.reset_state()
