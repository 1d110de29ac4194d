"""Global configuration: `$KTORCH_HOME/ktorch.json`, floatx, epsilon, image data format.

The file is read on first use, not at import. `KTORCH_HOME` defaults to `~/.ktorch` and falls
back to `/tmp/.ktorch` when the home directory is not writable. Environment variables
`KTORCH_FLOATX`, `KTORCH_EPSILON` and `KTORCH_IMAGE_DATA_FORMAT` override the file.
"""

from __future__ import annotations

import json
import os
import tempfile

_FLOATX_VALUES = ("float16", "bfloat16", "float32", "float64")
_FORMAT_VALUES = ("channels_last", "channels_first")
_DEFAULTS = {
    "floatx": "float32",
    "epsilon": 1e-7,
    "backend": "torch",
    "image_data_format": "channels_last",
}

_settings: dict | None = None


def ktorch_home() -> str:
    """Returns the directory that holds `ktorch.json`, datasets and models, creating it."""
    home = os.environ.get("KTORCH_HOME")
    if home:
        candidates = [os.path.expanduser(home)]
    else:
        candidates = [os.path.join(os.path.expanduser("~"), ".ktorch")]
    candidates.append(os.path.join(tempfile.gettempdir(), ".ktorch"))
    for path in candidates:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise OSError(f"No writable ktorch home directory among {candidates}.")


def _load() -> dict:
    global _settings
    if _settings is not None:
        return _settings
    settings = dict(_DEFAULTS)
    home = ktorch_home()
    path = os.path.join(home, "ktorch.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                stored = json.load(f)
        except (OSError, ValueError):
            stored = {}
        if isinstance(stored, dict):
            settings.update({k: v for k, v in stored.items() if k in _DEFAULTS})
    else:
        try:
            tmp = path + f".tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(settings, f, indent=4)
            os.replace(tmp, path)
        except OSError:
            pass
    env = {
        "floatx": os.environ.get("KTORCH_FLOATX"),
        "epsilon": os.environ.get("KTORCH_EPSILON"),
        "image_data_format": os.environ.get("KTORCH_IMAGE_DATA_FORMAT"),
    }
    for key, value in env.items():
        if value is not None:
            settings[key] = float(value) if key == "epsilon" else value
    _check_floatx(settings["floatx"])
    _check_format(settings["image_data_format"])
    settings["epsilon"] = float(settings["epsilon"])
    _settings = settings
    return settings


def _check_floatx(value: str) -> None:
    if value not in _FLOATX_VALUES:
        raise ValueError(
            f"Unknown floatx type. Expected one of {_FLOATX_VALUES}. Received: {value!r}"
        )


def _check_format(value: str) -> None:
    if value not in _FORMAT_VALUES:
        raise ValueError(
            f"Invalid image_data_format. Expected one of {_FORMAT_VALUES}. Received: {value!r}"
        )


def floatx() -> str:
    """Returns the default float type as a string, e.g. `"float32"`."""
    return _load()["floatx"]


def set_floatx(value: str) -> None:
    """Sets the default float type (`"float16"`, `"bfloat16"`, `"float32"`, `"float64"`)."""
    _check_floatx(value)
    _load()["floatx"] = value


def epsilon() -> float:
    """Returns the fuzz factor used in numeric expressions (default `1e-7`)."""
    return _load()["epsilon"]


def set_epsilon(value: float) -> None:
    """Sets the fuzz factor used in numeric expressions."""
    _load()["epsilon"] = float(value)


def image_data_format() -> str:
    """Returns the default image data format, `"channels_last"` or `"channels_first"`."""
    return _load()["image_data_format"]


def set_image_data_format(value: str) -> None:
    """Sets the default image data format."""
    _check_format(value)
    _load()["image_data_format"] = value


def backend() -> str:
    """Returns the backend name; always `"torch"`."""
    return "torch"


def standardize_data_format(data_format: str | None) -> str:
    """Resolves `None` to the configured format and validates the value."""
    if data_format is None:
        return image_data_format()
    data_format = data_format.lower()
    _check_format(data_format)
    return data_format


def enable_op_determinism() -> None:
    """Makes CPU and CUDA ops deterministic (at some cost in speed)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
