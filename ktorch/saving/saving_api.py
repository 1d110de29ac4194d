"""Public saving entry points: dispatch on the file's extension to the format modules.

- `.keras` (Keras 3 zip) and `.weights.h5` (Keras 3 weights): `saving_lib`;
- `.h5` / `.hdf5` (Keras 2 layout, whole model or weights): `legacy_h5`;
- `.safetensors` (weights): `safetensors_io`;
- JSON / YAML architecture and `clone_model`: `architecture`.
"""

from __future__ import annotations

import os

from ktorch.saving.file_utils import may_write

_H5_SUFFIXES = (".h5", ".hdf5")


def _path(filepath) -> str:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(
            f"Invalid filepath. Expected a str or os.PathLike. Received: filepath={filepath!r} "
            f"of type {type(filepath).__name__}"
        )
    return os.fspath(filepath)


def save_model(model, filepath, overwrite: bool = True, include_optimizer: bool = True, **kwargs):
    """Saves `model` whole to `.keras` (Keras 3 zip) or `.h5`/`.hdf5` (Keras 2 layout).

    Args:
        model: the model to save.
        filepath: the destination; its extension picks the format.
        overwrite: replace an existing file without asking.
        include_optimizer: store the optimizer state (and the compile config).
    """
    filepath = _path(filepath)
    unknown = set(kwargs) - {"save_format", "zipped"}
    if unknown:
        raise TypeError(f"save_model() got unexpected keyword arguments: {sorted(unknown)}")
    if not may_write(filepath, overwrite):
        return
    lower = filepath.lower()
    if lower.endswith(".keras"):
        from ktorch.saving import saving_lib

        saving_lib.save_model(model, filepath, include_optimizer=include_optimizer)
    elif lower.endswith(_H5_SUFFIXES):
        from ktorch.saving import legacy_h5

        legacy_h5.save_model_to_hdf5(model, filepath, include_optimizer=include_optimizer)
    else:
        raise ValueError(
            "Invalid filepath extension for saving. Please add either a `.keras` extension "
            "for the native Keras format (recommended) or a `.h5` extension for the legacy "
            f"HDF5 format. Received: filepath={filepath}"
        )


def load_model(filepath, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """Loads a model saved whole (`.keras` or `.h5`/`.hdf5`), compiled when it was saved so.

    Args:
        filepath: the saved file.
        custom_objects: a dict name → class/function for custom objects in the file.
        compile: compile the loaded model with the saved compile config (when present).
        safe_mode: refuse code in the file (such as `Lambda` bytecode).

    Returns:
        The model.
    """
    filepath = _path(filepath)
    if not os.path.isfile(filepath):
        raise OSError(f"No file found at filepath={filepath}")
    lower = filepath.lower()
    if lower.endswith(".keras"):
        from ktorch.saving import saving_lib

        return saving_lib.load_model(
            filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    if lower.endswith(_H5_SUFFIXES):
        from ktorch.saving import legacy_h5

        return legacy_h5.load_model_from_hdf5(
            filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
        )
    raise ValueError(
        "File format not supported: filepath="
        f"{filepath}. ktorch loads `.keras` files and legacy `.h5`/`.hdf5` files."
    )


def save_weights(model, filepath, overwrite: bool = True, **kwargs) -> None:
    """Saves `model`'s weights to `.weights.h5`, legacy `.h5`/`.hdf5` or `.safetensors`."""
    filepath = _path(filepath)
    if kwargs:
        raise TypeError(f"save_weights() got unexpected keyword arguments: {sorted(kwargs)}")
    if not may_write(filepath, overwrite):
        return
    lower = filepath.lower()
    if lower.endswith(".weights.h5"):
        from ktorch.saving import saving_lib

        saving_lib.save_weights_only(model, filepath)
    elif lower.endswith(_H5_SUFFIXES):
        from ktorch.saving import legacy_h5

        legacy_h5.save_weights_to_hdf5(model, filepath)
    elif lower.endswith(".safetensors"):
        from ktorch.saving import safetensors_io

        safetensors_io.save_weights(model, filepath)
    else:
        raise ValueError(
            "The filename must end in `.weights.h5` (Keras 3), `.h5` (legacy Keras 2 layout) "
            f"or `.safetensors`. Received: filepath={filepath}"
        )


def load_weights(
    model, filepath, skip_mismatch: bool = False, by_name: bool = False, **kwargs
) -> None:
    """Loads weights into `model` from `.weights.h5`, `.keras`, `.h5`/`.hdf5` or `.safetensors`.

    An `.h5` file in the Keras 3 weights layout is read as such, one in the Keras 2 layout by
    the legacy reader.
    """
    filepath = _path(filepath)
    if kwargs:
        raise TypeError(f"load_weights() got unexpected keyword arguments: {sorted(kwargs)}")
    if not os.path.isfile(filepath):
        raise OSError(f"No file found at filepath={filepath}")
    lower = filepath.lower()
    if lower.endswith(".safetensors"):
        from ktorch.saving import safetensors_io

        safetensors_io.load_weights(model, filepath, skip_mismatch=skip_mismatch, by_name=by_name)
        return
    if lower.endswith(".keras") or lower.endswith(_H5_SUFFIXES):
        from ktorch.saving import legacy_h5, saving_lib

        if lower.endswith(_H5_SUFFIXES) and legacy_h5.is_legacy_weights_file(filepath):
            legacy_h5.load_weights_from_hdf5(
                model, filepath, skip_mismatch=skip_mismatch, by_name=by_name
            )
        else:
            saving_lib.load_weights_only(
                model, filepath, skip_mismatch=skip_mismatch, by_name=by_name
            )
        return
    raise ValueError(
        "File format not supported: filepath="
        f"{filepath}. Weights load from `.weights.h5`, `.keras`, `.h5`/`.hdf5` and "
        "`.safetensors` files."
    )


def model_to_json(model, **kwargs) -> str:
    """The architecture of `model` as a JSON string."""
    from ktorch.saving import architecture

    return architecture.model_to_json(model, **kwargs)


def model_from_json(json_string: str, custom_objects=None):
    """Builds a model from `model_to_json`'s output."""
    from ktorch.saving import architecture

    return architecture.model_from_json(json_string, custom_objects=custom_objects)


def model_to_yaml(model, **kwargs) -> str:
    """The architecture of `model` as a YAML string."""
    from ktorch.saving import architecture

    return architecture.model_to_yaml(model, **kwargs)


def model_from_yaml(yaml_string: str, custom_objects=None):
    """Builds a model from `model_to_yaml`'s output (safe YAML only)."""
    from ktorch.saving import architecture

    return architecture.model_from_yaml(yaml_string, custom_objects=custom_objects)


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with `model`'s architecture and fresh weights."""
    from ktorch.saving import architecture

    return architecture.clone_model(
        model, input_tensors=input_tensors, clone_function=clone_function
    )
