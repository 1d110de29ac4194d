"""Fused kernels: `torch.library` custom ops under `torch.ops.ktorch`, built from `csrc/`.

Each op has CPU (C++) and CUDA kernels in the native extension `ktorch._C`, autograd and fake
kernels registered here (so it composes with autograd and `torch.compile`), and a pure-PyTorch
reference that gives the same results and runs wherever the extension has no kernel.
`available()` says which backends are built; `set_backend("reference")` forces the references.
"""

from __future__ import annotations

from ktorch.ops._library import available, get_backend, set_backend
from ktorch.ops.batch_norm import fused_batch_norm
from ktorch.ops.dropout import fused_dropout
from ktorch.ops.gru import gru_sequence
from ktorch.ops.lstm import lstm_sequence

__all__ = [
    "available",
    "fused_batch_norm",
    "fused_dropout",
    "get_backend",
    "gru_sequence",
    "lstm_sequence",
    "set_backend",
]
