"""Random initializers: normal, uniform, truncated normal, variance scaling, orthogonal.

Draws use torch's global generator when `seed` is None, so `torch.manual_seed` (or
`ktorch.utils.set_random_seed`) makes them reproducible. With an integer `seed`, each call
draws from a private `torch.Generator` seeded with it, so every call returns the same values,
as Keras does for integer seeds.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ktorch.initializers.initializer import Initializer, standardize_dtype

# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STDDEV = 0.87962566103423978


def compute_fans(
    shape, input_axes: list[int] | None = None, output_axes: list[int] | None = None
) -> tuple[int, int]:
    """Computes the numbers of input and output units of a Keras-shaped weight.

    Dense kernels are `(in, out)`; convolution kernels `(*spatial, in, out)`, whose fans are
    multiplied by the receptive field size.

    Args:
        shape: the weight shape.
        input_axes: axes counted as input units (used with `output_axes`).
        output_axes: axes counted as output units (used with `input_axes`).

    Returns:
        `(fan_in, fan_out)` as integers.
    """
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        fan_in = math.prod(shape[axis] for axis in input_axes)
        fan_out = math.prod(shape[axis] for axis in output_axes)
        return int(fan_in), int(fan_out)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _float_dtype(dtype) -> torch.dtype:
    dtype = standardize_dtype(dtype)
    if not dtype.is_floating_point:
        raise ValueError(
            "Random initializers need a floating point dtype. Expected one of float16, "
            f"bfloat16, float32, float64. Received: dtype={dtype}"
        )
    return dtype


def _sampling_dtype(dtype: torch.dtype) -> torch.dtype:
    # Half-precision draws are made in float32 and rounded, for the same distribution.
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


class RandomInitializer(Initializer):
    """Base of the random initializers: holds the seed and the generator it implies.

    Args:
        seed: None (use torch's global generator) or an integer (each call draws the same
            values from a private generator). A serialized `keras.random.SeedGenerator`
            config is read as its integer seed.
    """

    def __init__(self, seed: int | None = None):
        self._init_seed = seed
        if isinstance(seed, dict):
            seed = seed.get("config", {}).get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(
                f"Invalid value for argument seed. Expected an integer or None. Received: "
                f"seed={seed!r}"
            )
        self.seed = seed

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(self.seed)

    def _empty(self, shape, dtype) -> tuple[torch.Tensor, torch.dtype]:
        dtype = _float_dtype(dtype)
        shape = tuple(int(d) for d in shape)
        return torch.empty(shape, dtype=_sampling_dtype(dtype)), dtype

    def _normal(self, shape, dtype, mean: float, stddev: float) -> torch.Tensor:
        out, dtype = self._empty(shape, dtype)
        out.normal_(mean, stddev, generator=self._generator())
        return out.to(dtype)

    def _truncated_normal(self, shape, dtype, mean: float, stddev: float) -> torch.Tensor:
        out, dtype = self._empty(shape, dtype)
        torch.nn.init.trunc_normal_(
            out,
            mean=mean,
            std=stddev,
            a=mean - 2.0 * stddev,
            b=mean + 2.0 * stddev,
            generator=self._generator(),
        )
        return out.to(dtype)

    def _uniform(self, shape, dtype, minval: float, maxval: float) -> torch.Tensor:
        out, dtype = self._empty(shape, dtype)
        out.uniform_(minval, maxval, generator=self._generator())
        return out.to(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self._init_seed}


class RandomNormal(RandomInitializer):
    """Initializer drawing from a normal distribution.

    Args:
        mean: mean of the distribution.
        stddev: standard deviation of the distribution.
        seed: None or an integer, see `RandomInitializer`.

    Example:
        ```python
        values = RandomNormal(mean=0.0, stddev=1.0)(shape=(2, 2))
        ```
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        return self._normal(shape, dtype, self.mean, self.stddev)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomInitializer):
    """Initializer drawing from a normal distribution truncated to two standard deviations.

    Values further than `2 * stddev` from `mean` are redrawn.

    Args:
        mean: mean of the underlying normal distribution.
        stddev: standard deviation of the underlying normal distribution.
        seed: None or an integer, see `RandomInitializer`.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        return self._truncated_normal(shape, dtype, self.mean, self.stddev)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Initializer drawing from a uniform distribution on `[minval, maxval)`.

    Args:
        minval: lower bound (inclusive).
        maxval: upper bound (exclusive).
        seed: None or an integer, see `RandomInitializer`.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        return self._uniform(shape, dtype, self.minval, self.maxval)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class VarianceScaling(RandomInitializer):
    """Initializer whose scale adapts to the fans of the weight.

    With a normal distribution the standard deviation (after truncation for
    `"truncated_normal"`) is `sqrt(scale / n)`; with `"uniform"` samples lie in
    `[-limit, limit]` with `limit = sqrt(3 * scale / n)`. `n` is `fan_in`, `fan_out`, or their
    average, as chosen by `mode`.

    Args:
        scale: positive scaling factor.
        mode: `"fan_in"`, `"fan_out"` or `"fan_avg"`.
        distribution: `"truncated_normal"` (alias `"normal"`), `"untruncated_normal"` or
            `"uniform"`.
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        input_axes: list[int] | None = None,
        output_axes: list[int] | None = None,
    ):
        if scale <= 0.0:
            raise ValueError(
                f"Invalid value for argument scale. Expected a positive float. Received: "
                f"scale={scale}"
            )
        modes = ("fan_in", "fan_out", "fan_avg")
        if mode not in modes:
            raise ValueError(
                f"Invalid value for argument mode. Expected one of {modes}. Received: mode={mode!r}"
            )
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        distributions = ("uniform", "truncated_normal", "untruncated_normal")
        if distribution not in distributions:
            raise ValueError(
                f"Invalid value for argument distribution. Expected one of {distributions}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        if self.mode == "fan_in":
            n = fan_in
        elif self.mode == "fan_out":
            n = fan_out
        else:
            n = (fan_in + fan_out) / 2.0
        scale = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            return self._truncated_normal(shape, dtype, 0.0, math.sqrt(scale) / _TRUNCATED_STDDEV)
        if self.distribution == "untruncated_normal":
            return self._normal(shape, dtype, 0.0, math.sqrt(scale))
        limit = math.sqrt(3.0 * scale)
        return self._uniform(shape, dtype, -limit, limit)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """A `VarianceScaling` preset whose config holds only the seed and the axes."""

    _scale = 1.0
    _mode = "fan_in"
    _distribution = "truncated_normal"

    def __init__(
        self,
        seed: int | None = None,
        input_axes: list[int] | None = None,
        output_axes: list[int] | None = None,
    ):
        super().__init__(
            scale=self._scale,
            mode=self._mode,
            distribution=self._distribution,
            seed=seed,
            input_axes=input_axes,
            output_axes=output_axes,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "seed": self._init_seed,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class GlorotUniform(_FixedVarianceScaling):
    """Glorot (Xavier) uniform initializer.

    Draws from `U(-limit, limit)` with `limit = sqrt(6 / (fan_in + fan_out))`.

    Args:
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """

    _mode = "fan_avg"
    _distribution = "uniform"


class GlorotNormal(_FixedVarianceScaling):
    """Glorot (Xavier) normal initializer.

    Draws from a truncated normal with `stddev = sqrt(2 / (fan_in + fan_out))`.

    Args:
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """

    _mode = "fan_avg"


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal initializer.

    Draws from a truncated normal with `stddev = sqrt(1 / fan_in)`.

    Args:
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform initializer.

    Draws from `U(-limit, limit)` with `limit = sqrt(3 / fan_in)`.

    Args:
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """

    _distribution = "uniform"


class HeNormal(_FixedVarianceScaling):
    """He normal initializer.

    Draws from a truncated normal with `stddev = sqrt(2 / fan_in)`.

    Args:
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """

    _scale = 2.0


class HeUniform(_FixedVarianceScaling):
    """He uniform initializer.

    Draws from `U(-limit, limit)` with `limit = sqrt(6 / fan_in)`.

    Args:
        seed: None or an integer, see `RandomInitializer`.
        input_axes: axes counted as input units when computing the fans.
        output_axes: axes counted as output units when computing the fans.
    """

    _scale = 2.0
    _distribution = "uniform"


class Orthogonal(RandomInitializer):
    """Initializer that generates an orthogonal matrix.

    The weight is viewed as a matrix `(prod(shape[:-1]), shape[-1])`, filled from the QR
    decomposition of a normal random matrix: orthonormal rows when it has fewer rows than
    columns, orthonormal columns otherwise.

    Args:
        gain: multiplicative factor applied to the matrix.
        seed: None or an integer, see `RandomInitializer`.

    Example:
        ```python
        w = Orthogonal()(shape=(4, 4))  # w @ w.T == identity
        ```
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. Received: "
                f"shape={shape} of rank {len(shape)}."
            )
        dtype = _float_dtype(dtype)
        num_rows = math.prod(shape[:-1])
        num_cols = shape[-1]
        flat_shape = (max(num_rows, num_cols), min(num_rows, num_cols))
        a = self._normal(flat_shape, _sampling_dtype(dtype), 0.0, 1.0)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if num_rows < num_cols:
            q = q.T
        return (self.gain * q.reshape(shape)).to(dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}
