"""Time per epoch of pretraining: the plain process against torchrun with 1 and with N processes.

    python benchmarks/bench_ddp.py                                    # CPU: plain, torchrun x1, torchrun x2
    python benchmarks/bench_ddp.py --device cuda --nprocs 1,2 --encoder ResNet-18 --epochs 4

Every job is ``course_lib.pretrain`` (the documented entry point) on the same settings, in
runs folders of its own; the time per epoch is the run's own training time
(``metrics.json``: the loop, not the start-up, the data loading or the monitor) over its
epochs (the first epoch's warm-up included, alike for every job). The jobs take turns for
``--repeats`` rounds and each number is the median over the rounds; ``ratio`` is a job's
time per epoch over the plain process's, measured in the same round. A one-process
torchrun job runs the plain code path (nothing is wrapped when there is one process), so
its ratio should be 1 within the machine's noise; the issue's check asks for 5 %.

The global batch stays ``batch_size``: N processes share it (each takes 1/N), so the N-process
time per epoch shows how well the machine splits one batch, not a larger batch's speed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def job(nproc: int | None, runs: Path, args) -> tuple[float, int]:
    """Training seconds and steps per epoch of one pretraining job; ``nproc`` None: the plain process."""
    shutil.rmtree(runs, ignore_errors=True)
    settings = ["--preset", args.preset, "--encoder", args.encoder, "--method", args.method, "--no-probe",
                "-p", f"runs_dir={runs}", "-p", f"device={args.device}", "-p", f"pretrain_epochs={args.epochs}",
                "-p", "monitor_every=0", "-p", "checkpoint_every_s=1e9", *sum((["-p", p] for p in args.param), [])]
    launcher = [sys.executable, "-m", "course_lib.pretrain"] if nproc is None else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m",
        "course_lib.pretrain"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if nproc and args.device == "cpu":  # share the cores: torchrun would give each process one thread
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    done = subprocess.run(launcher + settings, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"job failed ({nproc or 'plain'}):\n{done.stderr[-3000:]}")
    (log,) = runs.glob("*/log.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    seconds = json.loads((log.parent / "metrics.json").read_text())["seconds"]
    return seconds, len(rows) // args.epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--encoder", default="N1")
    ap.add_argument("--method", default="vicreg")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--nprocs", default="1,2", help="torchrun process counts to time beside the plain process")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=None, help="append the result as one JSON line to this file")
    args = ap.parse_args()
    nprocs = [int(n) for n in args.nprocs.split(",")]
    jobs = [None, *nprocs]
    per_epoch: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = jobs[r % len(jobs):] + jobs[: r % len(jobs)]  # rotate, so load bursts hit all alike
            got = {}
            for n in order:
                t0 = time.perf_counter()
                seconds, steps = job(n, Path(tmp) / f"runs-{n}", args)
                got[n] = seconds / args.epochs
                label = "plain" if n is None else f"torchrun x{n}"
                per_epoch.setdefault(label, []).append(got[n])
                print(f"round {r + 1}: {label:12s} {got[n]:.3f} s per epoch ({steps} steps; job "
                      f"{time.perf_counter() - t0:.1f} s with start-up)", flush=True)
            for n in nprocs:
                ratios.setdefault(f"torchrun x{n}", []).append(got[n] / got[None])
    result = {
        "host": platform.node(), "device": args.device, "preset": args.preset, "encoder": args.encoder,
        "method": args.method, "epochs": args.epochs, "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "seconds_per_epoch": {k: statistics.median(v) for k, v in per_epoch.items()},
        "ratio_to_plain": {k: statistics.median(v) for k, v in ratios.items()},
        "samples": per_epoch,
    }
    for k, v in result["ratio_to_plain"].items():
        print(f"{k}: {result['seconds_per_epoch'][k]:.3f} s per epoch, {v:.3f} x the plain process "
              f"({result['seconds_per_epoch']['plain']:.3f} s)")
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
