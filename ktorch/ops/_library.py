"""Loading of the native extension `ktorch._C` and the kernel/reference switch.

The extension is imported once, on first use (not when ktorch is imported); a failure to load
it is remembered and the ops fall back to their pure-PyTorch references. The Python side of
each op (fake kernel, autograd) is registered through `on_load` once the schemas exist.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable

import torch

# Every op declared in csrc/ops.cpp: a backend counts as built when all of them have a kernel.
OPS = (
    "fused_dropout",
    "fused_dropout_backward",
    "fused_dropout_rng",
    "lstm_sequence",
    "lstm_sequence_backward",
    "gru_sequence",
    "gru_sequence_backward",
    "fused_batch_norm",
    "fused_batch_norm_inference",
    "fused_batch_norm_backward",
)
BACKENDS = ("auto", "kernel", "reference")
_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}

_lock = threading.RLock()
_loaded: bool | None = None
_load_error: str | None = None
_hooks: list[Callable[[], None]] = []
_kernel_cache: dict[tuple[str, str], bool] = {}
_backend: str | None = None


def load() -> bool:
    """Imports `ktorch._C` on the first call and returns whether it is loaded.

    Returns:
        True when the extension loaded and its ops are registered, False otherwise (the reason
        is kept in `load_error()`).
    """
    global _loaded, _load_error
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            try:
                importlib.import_module("ktorch._C")
            except (ImportError, OSError) as e:
                _load_error = f"{type(e).__name__}: {e}"
                _loaded = False
            else:
                _loaded = True
                for hook in _hooks:
                    hook()
    return _loaded


def load_error() -> str | None:
    """Returns why `ktorch._C` failed to load, or None if it loaded or was not tried yet."""
    return _load_error


def on_load(hook: Callable[[], None]) -> None:
    """Runs `hook` once the extension is loaded: now if it already is, else on first load."""
    with _lock:
        if _loaded:
            hook()
        else:
            _hooks.append(hook)


def has_kernel(op: str, device_type: str) -> bool:
    """Whether the loaded extension has a kernel for `ktorch::<op>` on `device_type`."""
    key = (op, device_type)
    cached = _kernel_cache.get(key)
    if cached is not None:
        return cached
    dispatch_key = _DISPATCH_KEYS.get(device_type)
    found = (
        dispatch_key is not None
        and load()
        and torch._C._dispatch_has_kernel_for_dispatch_key(f"ktorch::{op}", dispatch_key)
    )
    _kernel_cache[key] = found
    return found


def available() -> dict[str, bool]:
    """Says which backends of the native extension are built and loaded.

    Returns:
        `{"cpu": bool, "cuda": bool}`. `"cuda"` says the CUDA kernels were compiled in, not that
        a GPU is present. Ops whose backend is missing run their pure-PyTorch reference.

    Example:
        >>> import ktorch
        >>> sorted(ktorch.ops.available())
        ['cpu', 'cuda']
    """
    return {device: all(has_kernel(op, device) for op in OPS) for device in _DISPATCH_KEYS}


def get_backend() -> str:
    """Returns how ops are run: `"auto"`, `"kernel"` or `"reference"` (see `set_backend`)."""
    global _backend
    if _backend is None:
        _backend = _check_backend(os.environ.get("KTORCH_OPS_BACKEND", "auto"))
    return _backend


def set_backend(backend: str) -> None:
    """Chooses how ops are run; the default comes from the `KTORCH_OPS_BACKEND` variable.

    Args:
        backend: `"auto"` (the extension's kernel where it has one for the input's device, the
            pure-PyTorch reference elsewhere), `"kernel"` (always the kernel, an error where it
            is missing) or `"reference"` (always the reference).

    Example:
        >>> import ktorch
        >>> ktorch.ops.set_backend("reference")
        >>> ktorch.ops.set_backend("auto")
    """
    global _backend
    _backend = _check_backend(backend)


def use_kernel(op: str, device: torch.device) -> bool:
    """Whether `ktorch::<op>` on `device` runs the native kernel under the current backend."""
    backend = get_backend()
    if backend == "reference":
        return False
    if has_kernel(op, device.type):
        return True
    if backend == "kernel":
        reason = _load_error or f"it was built without {device.type} kernels"
        raise RuntimeError(
            f"The ktorch backend is 'kernel' but ktorch._C has no {device.type} kernel for "
            f"ktorch::{op} ({reason}). Rebuild with `pip install --no-build-isolation -e .` "
            "or call ktorch.ops.set_backend('auto')."
        )
    return False


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(
            f"Invalid value for argument backend. Expected one of {BACKENDS}. "
            f"Received: backend={backend!r}"
        )
    return backend


def differentiable_backward(
    reference: Callable[..., tuple[torch.Tensor, ...]],
    args: tuple,
    wrt: tuple[int, ...],
    grad_outputs: tuple[torch.Tensor | None, ...],
) -> tuple[torch.Tensor | None, ...]:
    """An op's gradients, computed so that they can be differentiated again.

    A backward runs with grad mode on when its caller asked for `create_graph=True` (double
    backward: gradient penalties, Hessian-vector products). The fused backward kernels are not
    differentiable, so an op's autograd formula then calls this instead: it recomputes the
    forward with the op's pure-PyTorch reference from the saved inputs and differentiates that
    with autograd. Slower than the kernels, exact to any order.

    Args:
        reference: the op's reference function, taking the op's arguments `args`; its outputs
            line up with `grad_outputs`.
        args: the op's arguments (its saved inputs).
        wrt: the positions in `args` of the inputs that need a gradient.
        grad_outputs: the gradients of `reference`'s outputs (None: no gradient, i.e. zero).

    Returns:
        One entry per argument, as an autograd formula returns them: the gradient at the
        positions in `wrt` (None where the outputs do not depend on it), None elsewhere.
    """
    result: list[torch.Tensor | None] = [None] * len(args)
    with torch.enable_grad():
        outputs = reference(*args)
    pairs = [
        (out, grad) for out, grad in zip(outputs, grad_outputs, strict=False) if grad is not None
    ]
    if not pairs or not wrt:
        return tuple(result)
    grads = torch.autograd.grad(
        [out for out, _ in pairs],
        [args[i] for i in wrt],
        [grad for _, grad in pairs],
        create_graph=True,
        allow_unused=True,
    )
    for i, grad in zip(wrt, grads, strict=True):
        result[i] = grad
    return tuple(result)
