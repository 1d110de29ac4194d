"""Confusion-matrix metrics: counters, `Precision`, `Recall` and `AUC`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ktorch import config
from ktorch.losses.loss import to_tensor
from ktorch.metrics import metrics_utils
from ktorch.metrics.metric import Metric, divide_no_nan
from ktorch.utils.dtypes import torch_dtype


class _ThresholdMetric(Metric):
    """Holds Python thresholds and their tensor on the state's device."""

    def _thresholds_on(self, device: torch.device) -> torch.Tensor:
        cached = getattr(self, "_thresholds_tensor", None)
        if cached is None or cached.device != device:
            cached = torch.tensor(
                [float(t) for t in self._threshold_list], dtype=torch_dtype(self.dtype)
            ).to(device)
            self._thresholds_tensor = cached
        return cached


class _ConfusionMatrixConditionCount(_ThresholdMetric):
    """Counts one confusion-matrix condition at each threshold."""

    def __init__(
        self, confusion_matrix_cond: str, thresholds: Any = None, name: Any = None, dtype=None
    ):
        super().__init__(name=name, dtype=dtype)
        self._confusion_matrix_cond = confusion_matrix_cond
        self.init_thresholds = thresholds
        self.thresholds = metrics_utils.parse_init_thresholds(thresholds, default_threshold=0.5)
        self._threshold_list = self.thresholds
        self._thresholds_distributed_evenly = metrics_utils.is_evenly_distributed_thresholds(
            self.thresholds
        )
        self.accumulator = self.add_variable(shape=(len(self.thresholds),), name="accumulator")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the (weighted) count of the condition."""
        device = self._place(y_pred, y_true, sample_weight)
        metrics_utils.update_confusion_matrix_variables(
            {self._confusion_matrix_cond: self.accumulator},
            y_true,
            y_pred,
            thresholds=self.thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight,
            thresholds_tensor=self._thresholds_on(device),
        )

    def result(self) -> torch.Tensor:
        if len(self.thresholds) == 1:
            return self.accumulator[0].clone()
        return self.accumulator.clone()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Counts (the weights of) true positives: label 1 and prediction above the threshold.

    Args:
        thresholds: a float or list of floats in `[0, 1]` (default 0.5); one value per
            threshold. Use 0 when predictions are logits.
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(metrics_utils.TRUE_POSITIVES, thresholds, name=name, dtype=dtype)


class FalsePositives(_ConfusionMatrixConditionCount):
    """Counts (the weights of) false positives: label 0 and prediction above the threshold.

    Args:
        thresholds: a float or list of floats in `[0, 1]` (default 0.5).
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(metrics_utils.FALSE_POSITIVES, thresholds, name=name, dtype=dtype)


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Counts (the weights of) true negatives: label 0 and prediction at most the threshold.

    Args:
        thresholds: a float or list of floats in `[0, 1]` (default 0.5).
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(metrics_utils.TRUE_NEGATIVES, thresholds, name=name, dtype=dtype)


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Counts (the weights of) false negatives: label 1 and prediction at most the threshold.

    Args:
        thresholds: a float or list of floats in `[0, 1]` (default 0.5).
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(metrics_utils.FALSE_NEGATIVES, thresholds, name=name, dtype=dtype)


class _PrecisionRecall(_ThresholdMetric):
    _second = ""

    def __init__(
        self,
        thresholds: Any = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default_threshold = 0.5 if top_k is None else metrics_utils.NEG_INF
        self.thresholds = metrics_utils.parse_init_thresholds(
            thresholds, default_threshold=default_threshold
        )
        self._threshold_list = self.thresholds
        self._thresholds_distributed_evenly = metrics_utils.is_evenly_distributed_thresholds(
            self.thresholds
        )
        self.true_positives = self.add_variable(
            shape=(len(self.thresholds),), name="true_positives"
        )
        self._other = self.add_variable(shape=(len(self.thresholds),), name=self._second)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates true positives and the second count at each threshold."""
        device = self._place(y_pred, y_true, sample_weight)
        key = (
            metrics_utils.FALSE_POSITIVES
            if self._second == "false_positives"
            else metrics_utils.FALSE_NEGATIVES
        )
        metrics_utils.update_confusion_matrix_variables(
            {metrics_utils.TRUE_POSITIVES: self.true_positives, key: self._other},
            y_true,
            y_pred,
            thresholds=self.thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            top_k=self.top_k,
            class_id=self.class_id,
            sample_weight=sample_weight,
            thresholds_tensor=self._thresholds_on(device),
        )

    def result(self) -> torch.Tensor:
        value = divide_no_nan(self.true_positives, self.true_positives + self._other)
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_PrecisionRecall):
    """Computes `true_positives / (true_positives + false_positives)`.

    Args:
        thresholds: a float or list of floats in `[0, 1]`; predictions above a threshold are
            positive. Defaults to 0.5 (or to all top-k predictions when `top_k` is set).
        top_k: consider only the `k` highest predictions of each sample.
        class_id: compute the metric for this class only.
        name: name of the metric instance.
        dtype: dtype of the metric result.

    Example:
        ```python
        m = Precision()
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        m.result()  # tensor(0.6667)
        ```
    """

    _direction = "up"

    _second = "false_positives"

    @property
    def false_positives(self) -> torch.Tensor:
        """The false positive counts, one per threshold."""
        return self._other


class Recall(_PrecisionRecall):
    """Computes `true_positives / (true_positives + false_negatives)`.

    Args:
        thresholds: a float or list of floats in `[0, 1]`; predictions above a threshold are
            positive. Defaults to 0.5 (or to all top-k predictions when `top_k` is set).
        top_k: consider only the `k` highest predictions of each sample.
        class_id: compute the metric for this class only.
        name: name of the metric instance.
        dtype: dtype of the metric result.
    """

    _direction = "up"

    _second = "false_negatives"

    @property
    def false_negatives(self) -> torch.Tensor:
        """The false negative counts, one per threshold."""
        return self._other


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(_ThresholdMetric):
    """Approximates the area under the ROC or precision-recall curve with a Riemann sum.

    Predictions are counted in buckets between thresholds; the curve is interpolated between
    them. `num_thresholds` controls the discretization.

    Args:
        num_thresholds: number of thresholds (> 1) used when `thresholds` is not given.
        curve: `"ROC"` (default), `"PR"` or `"PRGAIN"`.
        summation_method: `"interpolation"` (default), `"minoring"` or `"majoring"`.
        name: name of the metric instance.
        dtype: dtype of the metric result.
        thresholds: explicit thresholds in `[0, 1]`; `-epsilon` and `1 + epsilon` are added.
        multi_label: compute one AUC per label (last axis) and average them.
        num_labels: number of labels when `multi_label=True`; otherwise found on first use.
        label_weights: non-negative weights of the labels (averaging weights when
            `multi_label=True`, per-entry weights otherwise).
        from_logits: whether predictions are logits (a sigmoid is applied).
    """

    _direction = "up"

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: list[float] | None = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ):
        if str(curve).lower() not in _CURVES:
            raise ValueError(
                f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]'
            )
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". Expected values '
                'are ["interpolation", "majoring", "minoring"]'
            )
        super().__init__(name=name, dtype=dtype)
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            thresholds = sorted(thresholds)
            self._thresholds_distributed_evenly = metrics_utils.is_evenly_distributed_thresholds(
                np.array([0.0] + thresholds + [1.0])
            )
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    "Argument `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = num_thresholds
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        eps = config.epsilon()
        self._threshold_list = [0.0 - eps] + list(thresholds) + [1.0 + eps]
        self.curve = _CURVES[str(curve).lower()]
        self.summation_method = str(summation_method).lower()
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = (
            None if label_weights is None else to_tensor(label_weights, torch_dtype(self.dtype))
        )
        self._from_logits = from_logits
        self._built = False
        if multi_label:
            if num_labels:
                self._build([None, num_labels])
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self) -> list[float]:
        """The thresholds used for evaluating AUC, endpoints included."""
        return list(self._threshold_list)

    def _build(self, shape: Any) -> None:
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(
                    "`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                    f"{len(shape)}. Full shape received for `y_pred`: {tuple(shape)}"
                )
            self._num_labels = shape[1]
            variable_shape = (self.num_thresholds, self._num_labels)
        else:
            variable_shape = (self.num_thresholds,)
        self.true_positives = self.add_variable(variable_shape, name="true_positives")
        self.false_positives = self.add_variable(variable_shape, name="false_positives")
        self.true_negatives = self.add_variable(variable_shape, name="true_negatives")
        self.false_negatives = self.add_variable(variable_shape, name="false_negatives")
        self._built = True

    def _build_like(self, other: Metric) -> None:
        if self._built:
            super()._build_like(other)
        self._build((None, other.true_positives.shape[1]) if self.multi_label else None)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the confusion matrix at every threshold."""
        device = self._place(y_pred, y_true, sample_weight)
        y_pred = to_tensor(y_pred, None, device)
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = torch.sigmoid(y_pred)
        label_weights = None
        if self.label_weights is not None and not self.multi_label:
            label_weights = self.label_weights.to(device)
        metrics_utils.update_confusion_matrix_variables(
            {
                metrics_utils.TRUE_POSITIVES: self.true_positives,
                metrics_utils.TRUE_NEGATIVES: self.true_negatives,
                metrics_utils.FALSE_POSITIVES: self.false_positives,
                metrics_utils.FALSE_NEGATIVES: self.false_negatives,
            },
            y_true,
            y_pred,
            self._threshold_list,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight,
            multi_label=self.multi_label,
            label_weights=label_weights,
            thresholds_tensor=self._thresholds_on(device),
        )

    def _average_labels(self, by_label_auc: torch.Tensor) -> torch.Tensor:
        if self.label_weights is None:
            return torch.mean(by_label_auc)
        weights = self.label_weights.to(by_label_auc.device)
        return divide_no_nan(torch.sum(by_label_auc * weights), torch.sum(weights))

    def interpolate_pr_auc(self) -> torch.Tensor:
        """PR-AUC interpolated as in Davis & Goadrich (2006), from the accumulated counts."""
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        prec_slope = divide_no_nan(dtp, torch.clamp(dp, min=0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = torch.where(
            (p[: n - 1] > 0) & (p[1:] > 0),
            divide_no_nan(p[: n - 1], torch.clamp(p[1:], min=0)),
            torch.ones_like(p[1:]),
        )
        increments = divide_no_nan(
            prec_slope * (dtp + intercept * torch.log(safe_p_ratio)),
            torch.clamp(tp[1:] + fn[1:], min=0),
        )
        if self.multi_label:
            return self._average_labels(torch.sum(increments, dim=0))
        return torch.sum(increments)

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=torch_dtype(self.dtype), device=self._device)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        tp, fp, tn, fn = (
            self.true_positives,
            self.false_positives,
            self.true_negatives,
            self.false_negatives,
        )
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:
            scaling = divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scaling * divide_no_nan(fn, tp)
            precision_gain = 1.0 - scaling * divide_no_nan(fp, tp)
            no_tp = tp == 0.0
            recall_gain = torch.where(no_tp, torch.zeros_like(recall_gain), recall_gain)
            precision_gain = torch.where(no_tp, torch.ones_like(precision_gain), precision_gain)
            x, y = torch.clamp(recall_gain, min=0.0), precision_gain
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = torch.minimum(y[: n - 1], y[1:])
        else:
            heights = torch.maximum(y[: n - 1], y[1:])
        riemann_terms = (x[: n - 1] - x[1:]) * heights
        if self.multi_label:
            return self._average_labels(torch.sum(riemann_terms, dim=0))
        return torch.sum(riemann_terms)

    def get_config(self) -> dict[str, Any]:
        config_ = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config_["thresholds"] = self.thresholds[1:-1]
        return config_
