"""Utilities: seeding, custom-object scopes, summaries."""

from ktorch.saving.object_registration import CustomObjectScope, custom_object_scope
from ktorch.utils.batch_utils import pack_x_y_sample_weight, unpack_x_y_sample_weight
from ktorch.utils.file_utils import get_file
from ktorch.utils.io_utils import HDF5Matrix
from ktorch.utils.model_visualization import model_to_dot, plot_model
from ktorch.utils.py_dataset import PyDataset, Sequence
from ktorch.utils.random import set_random_seed

__all__ = [
    "HDF5Matrix",
    "PyDataset",
    "Sequence",
    "CustomObjectScope",
    "custom_object_scope",
    "get_file",
    "model_to_dot",
    "pack_x_y_sample_weight",
    "plot_model",
    "set_random_seed",
    "unpack_x_y_sample_weight",
]
