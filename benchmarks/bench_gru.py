"""Speed of `ktorch.layers.GRU` (the fused `ktorch::gru_sequence` op) against `torch.nn.GRU`.

One training step of the layer alone: forward over the whole sequence, a sum of the last output,
backward into the weights (the inputs do not require grad, as for a first layer). `torch.nn.GRU`
gets the same weights, converted to its layout (gate order r, z, n; `(3u, in)` matrices),
`batch_first=True`; it computes Keras's `reset_after=True` GRU, so the two agree to float32
rounding (checked before timing). Other rows: the same layer on ktorch's pure-PyTorch
reference (`ktorch.ops.set_backend("reference")`: an unfused per-step loop, one autograd op per
gate per step), and the fused op for `reset_after=False` (torch has no such layer; its ratio is
against the same baseline).

Timing: the contenders alternate in one process, `--rounds` rounds of `--steps` steps each,
rotating their order every round; a figure is the median over rounds of the per-step time, a
ratio the median of the per-round ratios ktorch / torch.

Usage:
    python benchmarks/bench_gru.py --threads 1
    python benchmarks/bench_gru.py --threads 2
    python benchmarks/bench_gru.py --device cuda     # batch 64, 100 steps, 512 -> 512
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, str(ROOT))

import ktorch  # noqa: E402
from ktorch.ops import gru as gru_ops  # noqa: E402

# (batch, timesteps, features, units) per device.
SHAPES = {"cpu": (64, 50, 32, 64), "cuda": (64, 100, 512, 512)}
TARGET_CPU = 1.0


def _torch_layout(matrix: torch.Tensor, units: int) -> torch.Tensor:
    """Keras `(n, 3u)` with gates z, r, h to torch `(3u, n)` with gates r, z, n."""
    z, r, h = matrix.split(units, dim=-1)
    return torch.cat([r, z, h], dim=-1).t().contiguous()


def torch_gru_like(layer: ktorch.layers.GRU) -> torch.nn.GRU:
    """A `torch.nn.GRU(batch_first=True)` holding the weights of a built `reset_after` GRU."""
    cell = layer.cell
    units = cell.units
    features = cell.kernel.shape[0]
    module = torch.nn.GRU(features, units, batch_first=True).to(cell.kernel.device)
    with torch.no_grad():
        module.weight_ih_l0.copy_(_torch_layout(cell.kernel, units))
        module.weight_hh_l0.copy_(_torch_layout(cell.recurrent_kernel, units))
        module.bias_ih_l0.copy_(_torch_layout(cell.bias[0:1], units).flatten())
        module.bias_hh_l0.copy_(_torch_layout(cell.bias[1:2], units).flatten())
    return module


def make_contenders(device: str) -> tuple[dict[str, Callable[[], None]], float]:
    """The timed steps, and the largest difference between ktorch's and torch's outputs."""
    batch, steps, features, units = SHAPES[device]
    torch.manual_seed(0)
    x = torch.randn(batch, steps, features, device=device)
    layer = ktorch.layers.GRU(units)
    layer(x[:1].cpu())
    layer.to(device)
    # Keras initializes the biases to zero; random ones make the parity check meaningful.
    with torch.no_grad():
        layer.cell.bias.normal_(0.0, 0.1)
    layer_before = ktorch.layers.GRU(units, reset_after=False)
    layer_before(x[:1].cpu())
    layer_before.to(device)
    baseline = torch_gru_like(layer)

    with torch.no_grad():
        difference = float((layer(x) - baseline(x)[0][:, -1]).abs().max())

    def ktorch_step(module=layer) -> None:
        module(x, training=True).sum().backward()

    def torch_step() -> None:
        _, h = baseline(x)
        h[-1].sum().backward()

    def reference_step() -> None:
        previous = ktorch.ops.get_backend()
        ktorch.ops.set_backend("reference")
        try:
            ktorch_step()
        finally:
            ktorch.ops.set_backend(previous)

    contenders = {
        "torch.nn.GRU": torch_step,
        "ktorch GRU": ktorch_step,
        "per-step torch loop (ktorch reference)": reference_step,
        "ktorch GRU, reset_after=False": lambda: ktorch_step(layer_before),
    }
    return contenders, difference


def alternate(
    contenders: dict[str, Callable[[], None]], rounds: int, steps: int, device: str
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process CPU seconds per step of each contender, one entry per round.

    The order of the contenders rotates from round to round. CPU time counts every thread of
    the process, so with several threads it includes their waiting; on a shared machine it is
    the steadier figure for one thread.
    """
    names = list(contenders)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            run = contenders[name]
            gc.collect()
            if device == "cuda":
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                run()
            if device == "cuda":
                torch.cuda.synchronize()
            wall[name].append((time.perf_counter() - start) / steps)
            cpu[name].append((time.process_time() - start_cpu) / steps)
    return wall, cpu


def _ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, default=15, help="alternating repetitions")
    parser.add_argument("--steps", type=int, default=None, help="training steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per contender")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA device")
    torch.set_num_threads(args.threads)
    steps = args.steps or (10 if args.device == "cpu" else 20)
    batch, timesteps, features, units = SHAPES[args.device]

    contenders, difference = make_contenders(args.device)
    kernel_built = gru_ops._library.has_kernel("gru_sequence", args.device)
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {_cpu_model()}, torch {torch.__version__}, {args.threads} thread(s)")
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}")
    print(f"load average before: {_load()}")
    print(
        f"GRU forward + backward, batch {batch}, {timesteps} steps, {features} -> {units}, "
        f"{args.device}; fused kernel built: {kernel_built}"
    )
    print(f"max |ktorch - torch.nn.GRU| on the output: {difference:.2e}")
    for run in contenders.values():
        for _ in range(args.warmup):
            run()
    wall, cpu = alternate(contenders, args.rounds, steps, args.device)
    print(f"load average after: {_load()}")
    print(f"{args.rounds} rounds x {steps} steps\n")

    print(
        "| contender | wall ms/step | ratio | ratio range | CPU ms/step | CPU ratio | "
        "CPU ratio range |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in contenders:
        cells = [name]
        for times in (wall, cpu):
            ratios = _ratios(times[name], times["torch.nn.GRU"])
            cells += [
                f"{statistics.median(times[name]) * 1e3:.3f}",
                f"{statistics.median(ratios):.3f}",
                f"{min(ratios):.2f}-{max(ratios):.2f}",
            ]
        print("| " + " | ".join(cells) + " |")
    print("\nratio: time / torch.nn.GRU's time, the median of the per-round ratios")
    if args.device == "cpu":
        ratio = statistics.median(_ratios(wall["ktorch GRU"], wall["torch.nn.GRU"]))
        met = "met" if ratio <= TARGET_CPU else "missed"
        print(f"target ktorch GRU <= {TARGET_CPU:.1f}x torch.nn.GRU (wall): {met} ({ratio:.3f}x)")


if __name__ == "__main__":
    main()
