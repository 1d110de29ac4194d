"""Deterministic initializers: zeros, ones, constants, identity and STFT kernels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ktorch.initializers.initializer import Initializer, standardize_dtype


def _shape(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


class Zeros(Initializer):
    """Initializer that generates tensors filled with 0.

    Example:
        ```python
        values = Zeros()(shape=(2, 2))
        ```
    """

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        return torch.zeros(_shape(shape), dtype=standardize_dtype(dtype))


class Ones(Initializer):
    """Initializer that generates tensors filled with 1.

    Example:
        ```python
        values = Ones()(shape=(2, 2))
        ```
    """

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        return torch.ones(_shape(shape), dtype=standardize_dtype(dtype))


def _value_from_config(value: Any) -> Any:
    """Reads a constant saved either as a plain value or as a Keras array record."""
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        inner = value.get("config", {})
        return np.asarray(inner.get("value"), dtype=inner.get("dtype"))
    return value


class Constant(Initializer):
    """Initializer that generates tensors with a constant value.

    Args:
        value: a Python scalar (or an array broadcastable to the requested shape).

    Example:
        ```python
        values = Constant(10.0)(shape=(2, 2))
        ```
    """

    def __init__(self, value: Any = 0.0):
        self.value = value

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        dtype = standardize_dtype(dtype)
        shape = _shape(shape)
        if isinstance(self.value, (bool, int, float)):
            return torch.full(shape, self.value, dtype=dtype)
        value = torch.as_tensor(np.asarray(self.value)).to(dtype)
        return value.expand(shape).clone()

    def get_config(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, (np.ndarray, np.generic, torch.Tensor)):
            value = value.tolist()
        return {"value": value}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constant:
        return cls(_value_from_config(config["value"]))


class Identity(Initializer):
    """Initializer that generates the identity matrix (2D shapes only).

    Args:
        gain: multiplicative factor applied to the identity matrix.

    Example:
        ```python
        values = Identity()(shape=(3, 3))
        ```
    """

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        return self.gain * torch.eye(*shape, dtype=standardize_dtype(dtype))

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


class STFT(Initializer):
    """Initializer of convolution kernels computing a short-time Fourier transform.

    Produces either the real or the imaginary part of the DFT basis, optionally windowed,
    for a kernel of shape `(frame_length, 1, fft_length // 2 + 1)`.

    Args:
        side: `"real"` or `"imag"`, which part of the transform the kernel computes.
        window: name of a `scipy.signal.windows` window (e.g. `"hann"`), an array of
            `frame_length` values, or None for no window.
        scaling: `"density"` (L2), `"spectrum"` (L1) normalization of the window, or None.
        periodic: whether the window is periodic rather than symmetric.
    """

    def __init__(
        self,
        side: str = "real",
        window: str | Any | None = "hann",
        scaling: str | None = "density",
        periodic: bool = False,
    ):
        if side not in ("real", "imag"):
            raise ValueError(
                "Invalid value for argument side. Expected 'real' or 'imag'. "
                f"Received: side={side!r}"
            )
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError(
                "Invalid value for argument scaling. Expected None, 'density' or 'spectrum'. "
                f"Received: scaling={scaling!r}"
            )
        if isinstance(window, str):
            from scipy import signal

            signal.get_window(window, 1)
        self.side = side
        self.window = window
        self.scaling = scaling
        self.periodic = periodic

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        dtype = standardize_dtype(dtype)
        frame_length, _, fft_bins = _shape(shape)
        time = torch.arange(frame_length, dtype=torch.float64).reshape(frame_length, 1, 1)
        freq = torch.arange(fft_bins, dtype=torch.float64).reshape(1, 1, fft_bins)
        angle = -2.0 * math.pi * time * freq / ((fft_bins - 1) * 2)
        kernel = torch.cos(angle) if self.side == "real" else torch.sin(angle)
        if self.window is not None:
            window = self.window
            if isinstance(window, str):
                from scipy import signal

                window = signal.get_window(window, frame_length, self.periodic)
            window = torch.as_tensor(np.asarray(window, dtype=np.float64))
            if window.shape != (frame_length,):
                raise ValueError(
                    f"The shape of `window` must be ({frame_length},) (the frame length). "
                    f"Received: window shape={tuple(window.shape)}"
                )
            window = window.reshape(frame_length, 1, 1)
            kernel = kernel * window
            if self.scaling == "density":
                kernel = kernel / torch.sqrt(torch.sum(window**2))
            elif self.scaling == "spectrum":
                kernel = kernel / torch.sum(torch.abs(window))
        return kernel.to(dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "window": self.window,
            "periodic": self.periodic,
            "scaling": self.scaling,
        }
