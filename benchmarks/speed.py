"""How fast the LARNN scan runs, beside nn.LSTM and the per-step reference (larnn.reference).

    python benchmarks/speed.py [--device cpu|cuda] [--threads 2] [--repeats N] [--quick]

Prints, at the UCI HAR shape (B=256, T=128, C=9):
  1. ms per batch and sequences/s, forward (eval, no_grad) and forward+backward (train mode,
     backward of output.sum()), for the paper's best configuration (a) and a smaller (b),
     each beside nn.LSTM of the same hidden size and depth, and beside the slow per-step
     reference of larnn/reference.py, "naive" (forward only, measured once: it is slow);
  2. a forward sweep over T and the window k at B=32, in ms and ms per step;
  3. the app's use: one 128-step sequence (B=1), config (a), with return_attention=True.
Candidates compared in a ratio run interleaved, round after round, and each keeps its best
time, so that a loaded machine slows both sides of a ratio alike. On the CPU the LARNN runs
its compiled loops (larnn.scan.compiled) unless LARNN_COMPILED_SCAN=0.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from larnn.model import LARNN, LARNNConfig
from larnn.reference import reference_stack
from larnn.scan import compiled as compiled_scan

B, T, C = 256, 128, 9  # UCI HAR: 128 steps of 9 inertial channels
CONFIGS = {
    # The paper's best on UCI HAR: residual mode, ELU + batch norm on keys/values, no pe.
    "a": dict(
        hidden_size=81,
        num_layers=3,
        heads=27,
        window=38,
        mode="residual",
        kv_activation="elu",
        kv_norm="batch",
        positional_encoding=False,
    ),
    "b": dict(hidden_size=64, num_layers=2, heads=8, window=16),
}
SWEEP_BATCH = 32
SWEEP_STEPS = (128, 512, 2048)
SWEEP_WINDOWS = (8, 16, 38, 64, 128)
APP_BUDGET_MS = 100.0
# Caps on the instructions of nn.LSTM's libraries (oneDNN, MKL): with ATEN_CPU_CAPABILITY=avx2
# they run an AVX-512 CPU as an AVX2 one (benchmarks/README.md, "Issue 30 on AVX2").
LIBRARY_CAPS = ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float:
    """The 1-minute load average (0 where unknown): timings on a shared machine depend on it."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def vector_units(device: torch.device) -> str:
    """What the numbers depend on besides the cores: on the CPU, the vector instructions
    ATen's kernels chose and those the LARNN's compiled loops were built with."""
    if device.type != "cpu":
        return f"device {device.type}"
    flags = " ".join(compiled_scan.vector_flags()) or "none"
    loops = f"compiled loops {flags}" if compiled_scan.enabled() else "Python loops"
    caps = "".join(f", {name}={os.environ[name]}" for name in LIBRARY_CAPS if name in os.environ)
    return f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}, LARNN {loops}{caps}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_times(
    candidates: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Best wall time in ms of each candidate: one warm-up call, then `repeats` rounds."""
    best = {name: float("inf") for name in candidates}
    for round_ in range(repeats + 1):
        for name, run in candidates.items():
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            if round_:  # round 0 warms up caches, allocator and kernels
                best[name] = min(best[name], (time.perf_counter() - start) * 1e3)
    return best


def time_once(run: Callable[[], Tensor], device: torch.device) -> tuple[float, Tensor]:
    """Wall time in ms of one call, and its result."""
    synchronize(device)
    start = time.perf_counter()
    result = run()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3, result


def forward(model: nn.Module, x: Tensor) -> Callable[[], Tensor]:
    def run() -> Tensor:
        model.eval()
        with torch.no_grad():
            return model(x)[0]

    return run


def forward_backward(model: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        model(x)[0].sum().backward()

    return run


def larnn(config: dict, device: torch.device, **overrides) -> LARNN:
    torch.manual_seed(0)
    return LARNN(LARNNConfig(input_size=C, **{**config, **overrides})).to(device)


def lstm(config: dict, device: torch.device) -> nn.LSTM:
    torch.manual_seed(0)
    return nn.LSTM(C, config["hidden_size"], config["num_layers"]).to(device)


def describe(config: dict) -> str:
    text = (
        f"H={config['hidden_size']} NH={config['heads']} k={config['window']} "
        f"L={config['num_layers']}"
    )
    extras = [
        f"{key}={config[key]}" for key in ("mode", "kv_activation", "kv_norm") if key in config
    ]
    return text + (" " + " ".join(extras) if extras else "")


def main_table(args: argparse.Namespace, device: torch.device) -> None:
    print(f"\n1. UCI HAR shape B={B} T={T} C={C}: ms per batch (best of {args.repeats})")
    print(vector_units(device))
    header = (
        f"{'config':<6} {'pass':<8} {'LSTM ms':>9} {'LARNN ms':>9} {'LARNN/LSTM':>10} "
        f"{'LSTM seq/s':>10} {'LARNN seq/s':>11} {'naive ms':>9} {'naive/LARNN':>11}"
    )
    print(header)
    print("-" * len(header))
    x = torch.randn(T, B, C, device=device)
    for name, config in CONFIGS.items():
        model, baseline = larnn(config, device), lstm(config, device)
        fwd = best_times(
            {"lstm": forward(baseline, x), "larnn": forward(model, x)}, args.repeats, device
        )
        naive_ms, naive_output = time_once(lambda m=model: naive_forward(m, x), device)
        difference = (naive_output - forward(model, x)()).abs().max().item()
        fwd_bwd = best_times(
            {"lstm": forward_backward(baseline, x), "larnn": forward_backward(model, x)},
            args.repeats,
            device,
        )
        for label, times, naive in (("forward", fwd, naive_ms), ("fwd+bwd", fwd_bwd, None)):
            naive_cells = (
                f"{naive:>9.0f} {naive / times['larnn']:>10.1f}x"
                if naive is not None
                else f"{'-':>9} {'-':>11}"
            )
            print(
                f"{'(' + name + ')':<6} {label:<8} {times['lstm']:>9.1f} {times['larnn']:>9.1f} "
                f"{times['larnn'] / times['lstm']:>9.2f}x {B / times['lstm'] * 1e3:>10.0f} "
                f"{B / times['larnn'] * 1e3:>11.0f} {naive_cells}"
            )
        print(f"{'':<6} {describe(config)}; max |naive - LARNN| = {difference:.1e}")


def naive_forward(model: LARNN, x: Tensor) -> Tensor:
    model.eval()
    with torch.no_grad():
        return reference_stack(model, x)[0]


def sweep(args: argparse.Namespace, device: torch.device) -> None:
    steps = SWEEP_STEPS[:2] if args.quick else SWEEP_STEPS
    config = CONFIGS["b"]
    print(
        f"\n2. Forward over T and window k: B={SWEEP_BATCH}, {describe(config)} but k; "
        f"ms per call (ms per step), best of {args.sweep_repeats}"
    )
    print(vector_units(device))
    print(f"{'T':>6} " + " ".join(f"{'k=' + str(k):>16}" for k in SWEEP_WINDOWS))
    models = {k: larnn(config, device, window=k) for k in SWEEP_WINDOWS}
    for length in steps:
        x = torch.randn(length, SWEEP_BATCH, C, device=device)
        times = best_times(
            {k: forward(model, x) for k, model in models.items()}, args.sweep_repeats, device
        )
        cells = " ".join(f"{times[k]:>8.1f} ({times[k] / length:.3f})" for k in SWEEP_WINDOWS)
        print(f"{length:>6} {cells}")


def app_case(args: argparse.Namespace, device: torch.device) -> None:
    model = larnn(CONFIGS["a"], device).eval()
    x = torch.randn(T, 1, C, device=device)

    def run() -> None:
        with torch.no_grad():
            model(x, return_attention=True)

    ms = best_times({"app": run}, max(args.repeats, 5), device)["app"]
    verdict = "within" if ms < APP_BUDGET_MS else "OVER"
    print(
        f"\n3. App: one {T}-step sequence (B=1), config (a), eval, return_attention=True: "
        f"{ms:.1f} ms per call ({verdict} the {APP_BUDGET_MS:.0f} ms budget); "
        f"{vector_units(device)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter sweep")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.sweep_repeats = 1 if args.quick else 2
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    load = load_average()
    print(
        f"torch {torch.__version__}, device {args.device} ({name}), "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
        f"load average {load:.1f}"
    )
    compiled = device.type == "cpu" and compiled_scan.enabled()
    print(
        "LARNN scan: "
        + ("compiled loops (larnn/scan/csrc)" if compiled else "Python loops (ATen calls per step)")
    )
    if load >= 1 and args.threads > 1 and os.environ.get("OMP_WAIT_POLICY") is None:
        print(
            "note: if other processes are using the cores, OpenMP's active waiting makes "
            "many-op models like the LARNN scan far slower than their work; for stable numbers "
            "rerun with --threads 1 or OMP_WAIT_POLICY=PASSIVE (see benchmarks/README.md)."
        )
    started = time.perf_counter()
    main_table(args, device)
    sweep(args, device)
    app_case(args, device)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average {load_average():.1f}")


if __name__ == "__main__":
    main()
