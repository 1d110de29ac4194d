"""Models: `Model` (functional and subclassed), `Sequential`, and the loaders."""

from ktorch.models.functional import Functional
from ktorch.models.model import Model
from ktorch.models.sequential import Sequential


# The loaders live in ktorch.saving (which sits above models): imported on use.
def load_model(filepath, custom_objects=None, compile: bool = True, safe_mode: bool = True):
    """Loads a model saved with `model.save` (`.keras` or legacy `.h5`); see `ktorch.saving`."""
    from ktorch.saving import saving_api

    return saving_api.load_model(
        filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
    )


def model_from_json(json_string: str, custom_objects=None):
    """Builds a model (without weights) from `model.to_json()`."""
    from ktorch.saving import saving_api

    return saving_api.model_from_json(json_string, custom_objects=custom_objects)


def model_from_yaml(yaml_string: str, custom_objects=None):
    """Builds a model (without weights) from `model.to_yaml()`; only safe YAML is read."""
    from ktorch.saving import saving_api

    return saving_api.model_from_yaml(yaml_string, custom_objects=custom_objects)


def clone_model(model, input_tensors=None, clone_function=None):
    """Returns a new model with the same architecture and freshly initialized weights."""
    from ktorch.saving import saving_api

    return saving_api.clone_model(model, input_tensors=input_tensors, clone_function=clone_function)


__all__ = [
    "Functional",
    "Model",
    "Sequential",
    "clone_model",
    "load_model",
    "model_from_json",
    "model_from_yaml",
]
