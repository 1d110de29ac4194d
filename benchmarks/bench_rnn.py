"""Speed of ktorch's recurrent layers (their fused whole-sequence ops) against torch's own.

One training step of a layer alone: forward over the whole sequence, a loss, and the gradients
of the loss with respect to the weights (`torch.autograd.grad`, so no `.grad` accumulates on
either side). The torch baseline gets the same weights converted to its layout and
`batch_first=True`; the two agree to float32 rounding (checked before timing).

Cells (`--cell`), each one function below returning its cases (adding a cell is one function
and one entry in `CELLS`):

- `lstm`: `ktorch.layers.LSTM` against `torch.nn.LSTM` (oneDNN's fused RNN on CPU, cuDNN on
  CUDA), plus ktorch's pure-PyTorch path (`ktorch.ops.set_backend("reference")`: the unfused
  per-step loop, one autograd op per gate per step). On CPU, 64 sequences of 50 steps, 32
  features to 64 units; on CUDA, 64 sequences of 100 steps, 512 to 512.
- `gru`: `ktorch.layers.GRU` against `torch.nn.GRU` (torch's GRU is Keras's `reset_after=True`
  variant; the weights are converted to its gate order r, z, n), the unfused path, and
  `reset_after=False` (torch has no such layer: against the same baseline). Same shapes.

On CUDA each cell adds its op against the same math as a per-step loop of torch ops.

Timing: the contenders of a case alternate in one process, `--rounds` rounds of `--steps` steps
each, their order rotating every round; a time is the median over rounds of the per-step wall
time (CUDA synchronized), a ratio the median of the per-round ratios ktorch / baseline, with
its interquartile range. On a shared machine `--clock cpu` times the CPU time of the process
instead of the wall time: other processes then inflate it much less, but it also counts the
time threads spend spinning while they wait for each other.

Usage:
    python benchmarks/bench_rnn.py --cell lstm --threads 1
    python benchmarks/bench_rnn.py --cell all --threads 2
    python benchmarks/bench_rnn.py --cell gru --threads 1
    python benchmarks/bench_rnn.py --cell all --device cuda
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from _machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, str(ROOT))

import ktorch  # noqa: E402
from ktorch.ops import gru as gru_ops  # noqa: E402
from ktorch.ops import lstm as lstm_ops  # noqa: E402

# (batch, timesteps, features, units) per device.
SHAPES = {"cpu": (64, 50, 32, 64), "cuda": (64, 100, 512, 512)}


@dataclass
class Case:
    """One benchmark row: named training-step closures, timed against `baseline`."""

    name: str
    steps: dict[str, Callable[[], None]]
    baseline: str
    # Target for the ratio of the first contender that is not the baseline.
    target: float | None = None


def _grad_step(forward: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable:
    def step() -> None:
        torch.autograd.grad(forward(), params)

    return step


def _with_backend(backend: str, step: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        previous = ktorch.ops.get_backend()
        ktorch.ops.set_backend(backend)
        try:
            step()
        finally:
            ktorch.ops.set_backend(previous)

    return run


# ----------------------------------------------------------------------------------- LSTM


def _lstm_pair(shape, device, return_sequences):
    batch, steps, features, units = shape
    torch.manual_seed(0)
    layer = ktorch.layers.LSTM(units, return_sequences=return_sequences)
    layer(torch.zeros(1, steps, features))
    layer.to(device)
    x = torch.randn(batch, steps, features, device=device)
    baseline = torch.nn.LSTM(features, units, batch_first=True).to(device)
    with torch.no_grad():
        # Same gate order (i, f, c/g, o); torch keeps (4u, in) matrices and two biases.
        baseline.weight_ih_l0.copy_(layer.cell.kernel.t())
        baseline.weight_hh_l0.copy_(layer.cell.recurrent_kernel.t())
        baseline.bias_ih_l0.copy_(layer.cell.bias)
        baseline.bias_hh_l0.zero_()
    return layer, baseline, x


def _check_lstm(layer, baseline, x, return_sequences) -> None:
    ours = layer(x)
    theirs = baseline(x)[0]
    theirs = theirs if return_sequences else theirs[:, -1]
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)
    grads = torch.autograd.grad(ours.sum(), layer.trainable_weights)
    expected = torch.autograd.grad(theirs.sum(), list(baseline.parameters()))
    torch.testing.assert_close(grads[0], expected[0].t(), atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(grads[1], expected[1].t(), atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(grads[2], expected[2], atol=2e-4, rtol=1e-3)


def lstm_cases(device: str) -> list[Case]:
    """`ktorch.layers.LSTM` vs `torch.nn.LSTM` (and ktorch's unfused reference path)."""

    def pair(shape, return_sequences):
        layer, baseline, x = _lstm_pair(shape, device, return_sequences)
        _check_lstm(layer, baseline, x, return_sequences)
        return layer, baseline, x

    cases = _layer_cases("LSTM", device, pair)
    if device == "cuda":
        cases.append(
            _unfused_case("lstm_sequence", SHAPES[device], 4, (lstm_ops.lstm_sequence,
                          lstm_ops.lstm_sequence_reference), bias_shape=(4,), states=2)
        )  # fmt: skip
    return cases


# ------------------------------------------------------------------------------------ GRU


def _torch_gru_layout(matrix: torch.Tensor, units: int) -> torch.Tensor:
    """Keras `(n, 3u)` with gates z, r, h to torch `(3u, n)` with gates r, z, n."""
    z, r, h = matrix.split(units, dim=-1)
    return torch.cat([r, z, h], dim=-1).t().contiguous()


def _gru_pair(shape, device, return_sequences, reset_after=True):
    batch, steps, features, units = shape
    torch.manual_seed(0)
    layer = ktorch.layers.GRU(units, return_sequences=return_sequences, reset_after=reset_after)
    layer(torch.zeros(1, steps, features))
    # Keras initializes the biases to zero; random ones make the parity check meaningful.
    with torch.no_grad():
        layer.cell.bias.normal_(0.0, 0.1)
    layer.to(device)
    x = torch.randn(batch, steps, features, device=device)
    if not reset_after:
        return layer, None, x
    # torch.nn.GRU computes Keras's reset_after=True GRU.
    baseline = torch.nn.GRU(features, units, batch_first=True).to(device)
    cell = layer.cell
    with torch.no_grad():
        baseline.weight_ih_l0.copy_(_torch_gru_layout(cell.kernel, units))
        baseline.weight_hh_l0.copy_(_torch_gru_layout(cell.recurrent_kernel, units))
        baseline.bias_ih_l0.copy_(_torch_gru_layout(cell.bias[0:1], units).flatten())
        baseline.bias_hh_l0.copy_(_torch_gru_layout(cell.bias[1:2], units).flatten())
    return layer, baseline, x


def _check_gru(layer, baseline, x, return_sequences) -> None:
    ours = layer(x)
    theirs = baseline(x)[0]
    theirs = theirs if return_sequences else theirs[:, -1]
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)
    grads = torch.autograd.grad(ours.sum(), [layer.cell.kernel])
    expected = torch.autograd.grad(theirs.sum(), [baseline.weight_ih_l0])
    units = layer.cell.units
    torch.testing.assert_close(
        _torch_gru_layout(grads[0], units), expected[0], atol=2e-4, rtol=1e-3
    )


def gru_cases(device: str) -> list[Case]:
    """`ktorch.layers.GRU` vs `torch.nn.GRU` (and the unfused path, and `reset_after=False`)."""

    def pair(shape, return_sequences):
        layer, baseline, x = _gru_pair(shape, device, return_sequences)
        _check_gru(layer, baseline, x, return_sequences)
        return layer, baseline, x

    def reset_before(shape, return_sequences, x, extra):
        # torch has no reset_after=False GRU: against the same baseline, one more GEMM a step.
        layer, _, _ = _gru_pair(shape, device, return_sequences, reset_after=False)
        step = _grad_step(lambda: layer(x).sum(), list(layer.trainable_weights) + extra)
        return {"ktorch reset_after=False": step}

    cases = _layer_cases("GRU", device, pair, reset_before)
    if device == "cuda":
        cases.append(
            _unfused_case("gru_sequence", SHAPES[device], 3, (gru_ops.gru_sequence,
                          gru_ops.gru_sequence_reference), bias_shape=(2, 3), states=1)
        )  # fmt: skip
    return cases


# ------------------------------------------------------------------------ shared case builders


def _layer_cases(name: str, device: str, pair, more=None) -> list[Case]:
    """The layer-vs-torch cases of one cell: `pair(shape, return_sequences)` gives a checked
    `(layer, baseline, x)`; `more(shape, return_sequences, x, extra)` adds contenders."""
    shape = SHAPES[device]
    variants = [
        ("outputs of all steps", True, False),
        ("outputs of all steps, input grad", True, True),
        ("last output", False, False),
    ]
    if device == "cuda":
        variants = variants[:2]
    cases = []
    for label, return_sequences, input_grad in variants:
        layer, baseline, x = pair(shape, return_sequences)
        x.requires_grad_(input_grad)
        extra = [x] if input_grad else []
        ours_params = list(layer.trainable_weights) + extra

        def ours(layer=layer, x=x) -> torch.Tensor:
            return layer(x).sum()

        def theirs(baseline=baseline, x=x, seq=return_sequences) -> torch.Tensor:
            out = baseline(x)[0]
            return (out if seq else out[:, -1]).sum()

        steps = {
            "ktorch": _grad_step(ours, ours_params),
            "torch": _grad_step(theirs, list(baseline.parameters()) + extra),
            "ktorch torch-ops": _with_backend("reference", _grad_step(ours, ours_params)),
        }
        if more is not None:
            steps.update(more(shape, return_sequences, x, extra))
        cases.append(
            Case(
                f"{name} {'x'.join(map(str, shape[:3]))}->{shape[3]}, {label}",
                steps,
                baseline="torch",
                target=1.0 if device == "cpu" else None,
            )
        )
    return cases


def _unfused_case(op_name: str, shape, gates: int, ops, bias_shape, states: int) -> Case:
    # The op against the same math as a per-step loop of torch ops (no layer around either).
    op, reference = ops
    batch, steps, features, units = shape
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, steps, features, generator=g).cuda()
    kernel = (torch.randn(features, gates * units, generator=g) / features**0.5).cuda()
    recurrent = (torch.randn(units, gates * units, generator=g) / units**0.5).cuda()
    bias = torch.zeros(*bias_shape[:-1], bias_shape[-1] * units).cuda()
    h0 = torch.zeros(batch, units).cuda()
    params = [p.requires_grad_() for p in (kernel, recurrent, bias)]
    args = (x, kernel, recurrent, bias, *([h0] * states))
    return Case(
        f"{op_name} op {'x'.join(map(str, shape[:3]))}->{units}",
        {
            "ktorch": _grad_step(lambda: op(*args)[0].sum(), params),
            "unfused loop": _grad_step(lambda: reference(*args)[0].sum(), params),
        },
        baseline="unfused loop",
    )


CELLS: dict[str, Callable[[str], list[Case]]] = {"lstm": lstm_cases, "gru": gru_cases}


# --------------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_case(
    case: Case, device: str, rounds: int, steps: int, warmup: int, clock: Callable[[], float]
) -> dict:
    names = list(case.steps)
    for name in names:
        for _ in range(warmup):
            case.steps[name]()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            gc.collect()
            _sync(device)
            start = clock()
            for _ in range(steps):
                case.steps[name]()
            _sync(device)
            times[name].append((clock() - start) / steps)
    return times


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


TABLE_HEADER = [
    "| case | contender | ms / step | ratio to baseline (IQR) | target |",
    "|---|---|---:|---:|---|",
]


def report(case: Case, times: dict[str, list[float]]) -> list[str]:
    """Table rows of one case: the baseline first, then each contender with its ratio."""
    base = times[case.baseline]
    rows = [
        f"| {case.name} | {case.baseline} (baseline) | {statistics.median(base) * 1e3:.3f} | 1 | |"
    ]
    first = True
    for name, values in times.items():
        if name == case.baseline:
            continue
        ratios = [a / b for a, b in zip(values, base, strict=True)]
        ratio = statistics.median(ratios)
        lo, hi = _quartiles(ratios)
        target = ""
        if first and case.target is not None:
            target = f"≤ {case.target:.2f}×: {'met' if ratio <= case.target else 'missed'}"
        first = False
        rows.append(
            f"| | {name} | {statistics.median(values) * 1e3:.3f} | {ratio:.3f} "
            f"({lo:.2f}-{hi:.2f}) | {target} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=[*CELLS, "all"], default="all")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA device")
    torch.set_num_threads(args.threads)
    cells = list(CELLS) if args.cell == "all" else [args.cell]
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_model()
    print(
        f"# bench_rnn {datetime.date.today()} torch {torch.__version__} device {args.device} "
        f"({device_name}) threads {torch.get_num_threads()} clock {args.clock} "
        f"kernels {ktorch.ops.available()} load {load[0]:.2f}"
    )
    print("\n".join(TABLE_HEADER))
    for cell in cells:
        for case in CELLS[cell](args.device):
            times = run_case(case, args.device, args.rounds, args.steps, args.warmup, clock)
            print("\n".join(report(case, times)), flush=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"# load after: {load[0]:.2f}")


if __name__ == "__main__":
    main()
