"""Dtype names shared by layers, losses and metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ktorch import config
from ktorch.layers import node
from ktorch.utils.dtypes import standardize_dtype, torch_dtype


@pytest.mark.parametrize(
    "dtype,expected",
    [
        ("float16", "float16"),
        (torch.bfloat16, "bfloat16"),
        (np.dtype("int32"), "int32"),
        ("float", "float32"),
        ("int", "int64"),
        ("double", "float64"),
        ("bool", "bool"),
    ],
)
def test_standardize_dtype(dtype, expected):
    assert standardize_dtype(dtype) == expected
    assert torch_dtype(dtype) is getattr(torch, expected)


def test_none_means_floatx():
    assert standardize_dtype(None) == config.floatx()
    assert torch_dtype(None) is getattr(torch, config.floatx())


def test_invalid_dtype_names_the_argument():
    with pytest.raises(ValueError, match="Received: dtype='float31'"):
        standardize_dtype("float31")
    with pytest.raises(ValueError, match="dtype"):
        torch_dtype("mixed_float16")


def test_layers_node_reexports_the_helpers():
    assert node.standardize_dtype is standardize_dtype
    assert node.torch_dtype is torch_dtype
