"""Process-group helpers used by the trainer: rank, world size, metric reduction.

They read `torch.distributed` when a process group is initialized (e.g. under `torchrun`)
and describe a single process otherwise.
"""

from __future__ import annotations

import torch


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if _initialized() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if _initialized() else 1


def is_main_process() -> bool:
    return rank() == 0


def reduce_metric_results(metrics, results: dict) -> dict:
    """Sums every additive metric's state across processes, then recomputes the results."""
    for metric in metrics:
        for variable in getattr(metric, "variables", []):
            torch.distributed.all_reduce(variable)
    reduced = {}
    for metric in metrics:
        if metric.name in results:
            reduced[metric.name] = metric.result()
    return reduced
