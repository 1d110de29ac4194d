"""ktorch's fused dropout against `torch.nn.functional.dropout`, forward and forward+backward.

Both run in the same process, alternating: every repeat times a loop of ktorch calls, then a
loop of `F.dropout` calls, on the same tensor; the tables show medians over the repeats and the
ratio ktorch time / PyTorch time (below 1: ktorch is faster).

- `fwd`: one training-mode call on an input that does not require grad.
- `fwd+bwd`: the call on an input that requires grad, then `torch.autograd.grad` with a fixed
  upstream gradient (no reduction kernel, so only dropout is timed).

With `--device cuda` the script also times `y.copy_(x)` and prints each fwd+bwd as a bandwidth
in % of that copy bandwidth. ktorch's fwd+bwd moves `16.25 * n` bytes in float32 (x read and
out written forward, grad read and grad_x written backward, plus the 1-bit mask written once
and read once); PyTorch's moves `18 * n` (its mask is one byte per element).

`--residual` adds the measurement behind the decision not to fuse the residual add: how much
`residual + dropout(x)` costs over `dropout(x)` alone, i.e. the most a fused kernel could save.

Examples:
    python benchmarks/bench_dropout.py --threads 1
    python benchmarks/bench_dropout.py --threads 2 --repeats 15
    python benchmarks/bench_dropout.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ktorch.ops  # noqa: E402

SHAPES = ((64, 128), (64, 1024), (256, 4096), (32, 512, 768))
RATE = 0.5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _loop_time(fn: Callable[[], object], iters: int, device: torch.device) -> float:
    """Seconds per call of `fn`, over a loop of `iters` calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def _iters_for(numel: int, device: torch.device) -> int:
    if device.type == "cuda":
        return 200
    # About 20 ms of work per loop on one CPU core.
    return max(3, min(2000, int(2e6 / max(numel, 1))))


def _compare(
    fns: dict[str, Callable[[], object]], iters: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved loops."""
    for fn in fns.values():
        _loop_time(fn, max(1, iters // 4), device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_loop_time(fn, iters, device))
    return {name: statistics.median(t) for name, t in times.items()}


def _cases(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype):
    x = torch.randn(shape, device=device, dtype=dtype)
    xg = x.clone().requires_grad_()
    grad = torch.randn_like(x)

    def k_fwd():
        return ktorch.ops.fused_dropout(x, RATE)

    def t_fwd():
        return F.dropout(x, RATE, training=True)

    def k_fwd_bwd():
        return torch.autograd.grad(ktorch.ops.fused_dropout(xg, RATE), xg, grad)

    def t_fwd_bwd():
        return torch.autograd.grad(F.dropout(xg, RATE, training=True), xg, grad)

    return {"fwd": (k_fwd, t_fwd), "fwd+bwd": (k_fwd_bwd, t_fwd_bwd)}


def _copy_seconds(shape, device, dtype, iters, repeats) -> float:
    x = torch.randn(shape, device=device, dtype=dtype)
    y = torch.empty_like(x)
    return _compare({"copy": lambda: y.copy_(x)}, iters, repeats, device)["copy"]


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(args.threads)
    if device.type == "cpu" and not ktorch.ops.available()["cpu"]:
        print("warning: ktorch._C has no CPU kernel; timing the pure-PyTorch reference")
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), device {device}, {args.dtype}, "
        f"rate {RATE}, {args.repeats} repeats; {platform.processor() or platform.machine()}"
    )
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    header = f"{'shape':>16} {'pass':>8} {'ktorch us':>11} {'torch us':>11} {'ratio':>7}"
    if device.type == "cuda":
        header += f" {'ktorch %copy':>13} {'torch %copy':>12}"
    print(header)
    elem = torch.empty((), dtype=dtype).element_size()
    for shape in SHAPES:
        numel = 1
        for d in shape:
            numel *= d
        iters = _iters_for(numel, device)
        copy_bw = None
        if device.type == "cuda":
            copy_bw = 2 * elem * numel / _copy_seconds(shape, device, dtype, iters, args.repeats)
        for name, (k_fn, t_fn) in _cases(shape, device, dtype).items():
            t = _compare({"ktorch": k_fn, "torch": t_fn}, iters, args.repeats, device)
            line = (
                f"{'x'.join(map(str, shape)):>16} {name:>8} {t['ktorch'] * 1e6:11.1f} "
                f"{t['torch'] * 1e6:11.1f} {t['ktorch'] / t['torch']:7.2f}"
            )
            if copy_bw is not None and name == "fwd+bwd":
                # Bytes each implementation must move (see the module docstring).
                k_bytes = 4 * elem * numel + 2 * numel / 8
                t_bytes = 4 * elem * numel + 2 * numel
                k_pct = 100 * k_bytes / t["ktorch"] / copy_bw
                t_pct = 100 * t_bytes / t["torch"] / copy_bw
                line += f" {k_pct:12.1f}% {t_pct:11.1f}%"
            print(line, flush=True)
    if args.residual:
        _residual(device, dtype, args.repeats)


def _residual_cases(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype):
    x = torch.randn(shape, device=device, dtype=dtype)
    residual = torch.randn_like(x)
    xg = x.clone().requires_grad_()
    grad = torch.randn_like(x)

    def fwd_alone():
        return ktorch.ops.fused_dropout(x, RATE)

    def fwd_add():
        return residual + ktorch.ops.fused_dropout(x, RATE)

    def fwd_bwd_alone():
        return torch.autograd.grad(ktorch.ops.fused_dropout(xg, RATE), xg, grad)

    def fwd_bwd_add():
        return torch.autograd.grad(residual + ktorch.ops.fused_dropout(xg, RATE), xg, grad)

    return {"fwd": (fwd_alone, fwd_add), "fwd+bwd": (fwd_bwd_alone, fwd_bwd_add)}


def _residual(device: torch.device, dtype: torch.dtype, repeats: int) -> None:
    print("\nresidual + dropout(x) against dropout(x) alone (ktorch)")
    print(f"{'shape':>16} {'pass':>8} {'dropout us':>11} {'+ add us':>11} {'add share':>10}")
    for shape in SHAPES:
        numel = 1
        for d in shape:
            numel *= d
        iters = _iters_for(numel, device)
        for name, (alone, with_add) in _residual_cases(shape, device, dtype).items():
            t = _compare({"alone": alone, "add": with_add}, iters, repeats, device)
            share = 1 - t["alone"] / t["add"]
            print(
                f"{'x'.join(map(str, shape)):>16} {name:>8} {t['alone'] * 1e6:11.1f} "
                f"{t['add'] * 1e6:11.1f} {100 * share:9.1f}%",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--residual", action="store_true", help="also time residual + dropout(x)")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
