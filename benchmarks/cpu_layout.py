"""channels_last against the default memory layout, per encoder, on this machine's device and precision.

The same VICReg step and supervised step as ``bench_encoders.py`` (batch 256 pairs, 32 px, crop + flip, projector
3 x 1024, forward + backward + Adam; batch 256, cross-entropy, SGD), built twice per encoder: once with
``channels_last="on"``, once with ``"off"``. The two layouts take turns in every repeat, so load from other
processes hits them alike; the ratio is default time / channels_last time (above 1: channels_last is faster).
``runtime.memory_format``'s "auto" rule for a CPU follows these numbers (README, "Speed").

    python benchmarks/cpu_layout.py                  # ~4 min on 2 CPU cores
    python benchmarks/cpu_layout.py --precision fp32 # the rule for a CPU without native bf16
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, no install needed

from bench_encoders import make_steps  # noqa: E402
from course_lib.config import resolve  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", default="N1,N2,ResNet-18")
    ap.add_argument("--precision", default="auto", help="auto (the machine's: bf16 where native), bf16 or fp32")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per layout per repeat")
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args(argv)
    cfgs = {layout: resolve("cpu", device="cpu", precision=args.precision, channels_last=layout)
            for layout in ("off", "on")}
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (4096,), generator=g)
    print(f"cpu, precision {cfgs['on'].amp_dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {args.repeats} repeats x {args.steps} steps; images/s count both views")
    print(f"{'encoder':<10} {'step':<11} {'default img/s':>14} {'channels_last':>14} {'ratio':>6}")
    for name in [n.strip() for n in args.encoders.split(",")]:
        steps = {layout: make_steps(name, cfg, x, y)[0] for layout, cfg in cfgs.items()}
        for layout in steps:  # warm-up: kernels, allocator pools, optimizer state
            for fn in steps[layout].values():
                fn(0)
        for kind in ("vicreg", "supervised"):
            times = {"off": [], "on": []}
            for _ in range(args.repeats):
                for layout in ("off", "on"):
                    t0 = time.perf_counter()
                    for i in range(args.steps):
                        steps[layout][kind](i + 1)
                    times[layout].append((time.perf_counter() - t0) / args.steps)
            per = 256 * (2 if kind == "vicreg" else 1)
            off, on = statistics.median(times["off"]), statistics.median(times["on"])
            print(f"{name:<10} {kind:<11} {per / off:>14.0f} {per / on:>14.0f} {off / on:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
