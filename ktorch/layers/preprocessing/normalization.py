"""`Normalization`: standardizes features with a mean and variance, set or adapted from data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ktorch import config as ktorch_config
from ktorch.layers.layer import Layer

_ADAPT_BATCH_SIZE = 4096


def _extract_batch(batch):
    if isinstance(batch, (tuple, list)) and batch and hasattr(batch[0], "shape"):
        return batch[0]
    return batch


def _as_float64(batch) -> torch.Tensor:
    if torch.is_tensor(batch):
        return batch.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(batch, dtype=np.float64))


class Normalization(Layer):
    """Feature-wise standardization: `(inputs - mean) / sqrt(variance)`.

    The mean and variance are either given, or computed from data with `adapt(data)` and
    stored as (non-trainable) weights `mean`, `variance` and `count`.

    Args:
        axis: axis or axes that keep separate statistics (e.g. -1: one mean per feature);
            the statistics are taken over all other axes. None: one scalar mean and variance.
        mean: the mean to use (broadcastable to the kept axes), or None to adapt.
        variance: the variance to use, given together with `mean`.
        invert: apply the inverse transformation, `inputs * sqrt(variance) + mean`.

    Example:
        ```python
        layer = Normalization()
        layer.adapt(np.array([[1.0], [2.0], [3.0]]))
        layer(torch.tensor([[2.0]]))  # [[0.]]
        ```
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        else:
            axis = tuple(axis)
        self.axis = axis
        self.input_mean = mean
        self.input_variance = variance
        self.invert = invert
        self.supports_masking = True
        if (mean is not None) != (variance is not None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(
                    "When setting values directly, `mean` and `variance` must have the same "
                    f"shape. Received: mean shape {np.shape(mean)} and variance shape "
                    f"{np.shape(variance)}"
                )
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError(
                    "The rank of `mean` must be less than or equal to the number of axes "
                    f"({len(self.axis)}). Received: mean shape {np.shape(mean)} for axis "
                    f"{self.axis}"
                )

    def build(self, input_shape) -> None:
        if input_shape is None:
            return
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                "All `axis` values must be in the range [-ndim, ndim). Received inputs with "
                f"ndim={ndim}, while axis={self.axis}"
            )
        self._keep_axis = tuple(sorted(d % ndim for d in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(
                    "All `axis` values to be kept must have a known shape. Received "
                    f"axis={self.axis}, inputs.shape={input_shape}, with unknown axis at "
                    f"index {d}"
                )
        self._build_shape = input_shape
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(
            input_shape[d] if d in self._keep_axis else 1 for d in range(ndim)
        )
        self._mean_and_var_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(
                shape=self._mean_and_var_shape,
                initializer="zeros",
                trainable=False,
                name="mean",
            )
            self.adapt_variance = self.add_weight(
                shape=self._mean_and_var_shape,
                initializer="ones",
                trainable=False,
                name="variance",
            )
            self.count = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False, name="count"
            )
        else:
            # Given statistics are constants, in non-persistent buffers that follow `.to()`.
            self.register_buffer("_mean_value", self._expand(self.input_mean), persistent=False)
            self.register_buffer(
                "_variance_value", self._expand(self.input_variance), persistent=False
            )
        self.built = True

    def _expand(self, value) -> torch.Tensor:
        value = torch.as_tensor(np.asarray(value), dtype=self._compute_torch_dtype)
        if value.ndim > 0:
            expanded = [1] * len(self._broadcast_shape)
            for i in range(1, value.ndim + 1):
                expanded[self._keep_axis[-i]] = value.shape[-i]
            value = value.reshape(expanded)
        return torch.broadcast_to(value, self._broadcast_shape).clone()

    def _check_built(self, attribute: str) -> None:
        # An AttributeError (not None) before build keeps `hasattr` False, so the weights
        # named "mean" and "variance" can be registered.
        if not self.built:
            raise AttributeError(
                f"Layer '{self.name}' has no `{attribute}` yet: call `adapt()` or `build()` first."
            )

    @property
    def mean(self) -> torch.Tensor:
        """The mean in the input's broadcast shape (once the layer is built or adapted)."""
        self._check_built("mean")
        if self.input_mean is not None:
            return self._mean_value
        return self.adapt_mean.reshape(self._broadcast_shape)

    @property
    def variance(self) -> torch.Tensor:
        """The variance in the input's broadcast shape (once the layer is built or adapted)."""
        self._check_built("variance")
        if self.input_mean is not None:
            return self._variance_value
        return self.adapt_variance.reshape(self._broadcast_shape)

    def adapt(self, data, batch_size: int | None = None, steps: int | None = None) -> None:
        """Computes the mean and variance of `data` and stores them in the layer's weights.

        Args:
            data: a NumPy array or tensor (read in chunks of `batch_size` samples), or an
                iterable of batches (list, generator, `DataLoader`, `PyDataset`); a batch may
                be a `(x, y)` tuple, whose `x` is used.
            batch_size: number of samples per chunk for array/tensor data.
            steps: maximum number of batches to read.
        """
        batches = self._adapt_batches(data, batch_size)
        if steps is not None:
            batches = itertools.islice(batches, steps)
        first = next(batches, None)
        if first is None:
            raise ValueError(
                "adapt() received an empty iterable (no batches). Expected at least one batch."
            )
        shape = getattr(first, "shape", None)
        if shape is None:
            raise TypeError(
                "adapt() expects arrays or tensors with a `.shape` attribute. Received an "
                f"element of type {type(first).__name__}."
            )
        if not self.built:
            self._build_with_shapes({"inputs": tuple(shape)})
        elif self.input_mean is not None:
            raise ValueError(
                "Cannot adapt a Normalization layer whose `mean` and `variance` were given."
            )
        total_mean, total_var, total_count = None, None, 0
        for batch in itertools.chain([first], batches):
            batch = _as_float64(batch)
            if batch.ndim != len(self._build_shape) or any(
                batch.shape[d] != self._build_shape[d] for d in self._keep_axis
            ):
                raise ValueError(
                    f"The layer was built with input_shape={self._build_shape}, but adapt() "
                    f"received data with an incompatible shape, data.shape={tuple(batch.shape)}"
                )
            count = math.prod(batch.shape[d] for d in self._reduce_axis)
            if count == 0:
                continue
            if self._reduce_axis:
                var, mean = torch.var_mean(batch, dim=self._reduce_axis, unbiased=False)
            else:
                mean, var = batch, torch.zeros_like(batch)
            if total_mean is None:
                total_mean, total_var, total_count = mean, var, count
                continue
            # Chan et al.'s pairwise update of mean and (biased) variance.
            new_count = total_count + count
            delta = mean - total_mean
            total_mean = total_mean + delta * (count / new_count)
            total_var = (
                total_var * total_count
                + var * count
                + delta.square() * (total_count * count / new_count)
            ) / new_count
            total_count = new_count
        if total_mean is None:
            raise ValueError("adapt() received only empty batches.")
        self.adapt_mean.assign(total_mean.reshape(self._mean_and_var_shape))
        self.adapt_variance.assign(total_var.reshape(self._mean_and_var_shape))

    def _adapt_batches(self, data, batch_size):
        if isinstance(data, np.ndarray) or torch.is_tensor(data) or _is_h5_dataset(data):
            size = batch_size or _ADAPT_BATCH_SIZE
            return (data[i : i + size] for i in range(0, len(data), size))
        if (
            hasattr(data, "__getitem__")
            and hasattr(data, "__len__")
            and hasattr(data, "on_epoch_end")
        ):
            return (_extract_batch(data[i]) for i in range(len(data)))
        if hasattr(data, "__iter__"):
            return (_extract_batch(batch) for batch in data)
        raise TypeError(
            f"Unsupported data type: {type(data)}. `adapt` supports NumPy arrays, tensors and "
            "iterables of batches (list, generator, DataLoader, PyDataset)."
        )

    def call(self, inputs):
        inputs = inputs.to(self._compute_torch_dtype)
        mean = self.mean.to(inputs.dtype)
        std = torch.clamp(torch.sqrt(self.variance.to(inputs.dtype)), min=ktorch_config.epsilon())
        if self.invert:
            return mean + inputs * std
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_build_config(self) -> dict | None:
        shape = getattr(self, "_build_shape", None)
        return {"input_shape": shape} if shape is not None else None

    def build_from_config(self, build_config: dict | None) -> None:
        if build_config and not self.built:
            self._build_with_shapes({"inputs": tuple(build_config["input_shape"])})

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "invert": self.invert,
                "mean": np.array(self.input_mean).tolist(),
                "variance": np.array(self.input_variance).tolist(),
            }
        )
        return config


def _is_h5_dataset(data) -> bool:
    return type(data).__module__.startswith("h5py") and hasattr(data, "shape")
