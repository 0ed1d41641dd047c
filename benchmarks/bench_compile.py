"""Does ``torch.compile`` pay on this machine? One VICReg training step, eager against compiled, same run.

The step is the course's own: N1 (or ResNet-18) + projector + VICReg loss, two views drawn on the
device by ``course_lib.augment``, forward + backward + Adam, at 32 px. Both models start from the same
weights; they take turns, one timed block of ``--steps`` steps each per repeat, and each number is the
median over ``--repeats``. The compile time (the first compiled steps) is measured separately and set
against the time it saves over one CIFAR-10 epoch, so a preset can decide whether to switch it on.

    python benchmarks/bench_compile.py                   # N1, batch 256, the CPU
    python benchmarks/bench_compile.py --encoder ResNet-18 --device cuda
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.augment import build_views  # noqa: E402
from course_lib.config import resolve  # noqa: E402
from course_lib.methods import build_method  # noqa: E402
from course_lib.models import build_encoder  # noqa: E402
from course_lib.runtime import autocast, memory_format  # noqa: E402

CIFAR10_TRAIN = 50_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", default="N1")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--augmentation", default="ssl-cifar")
    ap.add_argument("--precision", default="auto", help="auto (the course's default), fp32, bf16 or fp16")
    ap.add_argument("--out", default=None, help="append the JSON record here")
    args = ap.parse_args(argv)

    cfg = resolve("cpu", device=args.device, batch_size=args.batch_size, image_size=32,
                  augmentation=args.augmentation, crop_scale=(0.2, 1.0), dataset_b="none",
                  precision=args.precision)
    device = cfg.torch_device
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8, device=device)
    views = build_views(cfg.augmentation, 32, cfg.crop_scale)
    eager = build_method("vicreg", build_encoder(args.encoder), cfg).to(device)
    compiled_model = copy.deepcopy(eager)
    memory = memory_format(cfg, eager.encoder if hasattr(eager, "encoder") else eager)
    eager = eager.to(memory_format=memory)
    compiled_model = compiled_model.to(memory_format=memory)
    models = {"eager": (eager, eager), "compiled": (compiled_model, torch.compile(compiled_model))}
    optims = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, (m, _) in models.items()}
    gen = torch.Generator(device=device).manual_seed(1)

    def step(name: str) -> None:
        _, forward = models[name]
        idx = torch.randint(0, len(x), (args.batch_size,), device=device, generator=gen)
        x_a, x_b = views(x[idx], gen)
        with autocast(cfg):
            loss = forward(x_a.contiguous(memory_format=memory), x_b.contiguous(memory_format=memory))["loss"]
        optims[name].zero_grad(set_to_none=True)
        loss.backward()
        optims[name].step()

    t0 = time.perf_counter()
    for _ in range(2):  # compilation happens here (forward and backward graphs)
        step("compiled")
    _sync(device)
    compile_s = time.perf_counter() - t0
    step("eager")
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.repeats):
        for name in times:
            _sync(device)
            t = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            _sync(device)
            times[name].append(args.batch_size * args.steps / (time.perf_counter() - t))
    eager_pps, compiled_pps = (statistics.median(times[k]) for k in ("eager", "compiled"))
    epoch_eager, epoch_compiled = CIFAR10_TRAIN / eager_pps, CIFAR10_TRAIN / compiled_pps
    record = {
        "encoder": args.encoder, "device": str(device), "batch_size": args.batch_size,
        "threads": torch.get_num_threads(), "precision": str(cfg.amp_dtype), "layout": str(memory),
        "eager_pairs_per_s": round(eager_pps, 1), "compiled_pairs_per_s": round(compiled_pps, 1),
        "ratio": round(compiled_pps / eager_pps, 3), "compile_s": round(compile_s, 1),
        "cifar10_epoch_s_eager": round(epoch_eager, 1), "cifar10_epoch_s_compiled": round(epoch_compiled, 1),
        "epochs_to_repay_compile": round(compile_s / max(1e-9, epoch_eager - epoch_compiled), 2)
        if epoch_eager > epoch_compiled else None,
        "repeats": {k: [round(v, 1) for v in vs] for k, vs in times.items()},
    }
    print(json.dumps(record), flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
    return record


if __name__ == "__main__":
    main()
