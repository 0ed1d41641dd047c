"""Training speed of the three encoders side by side: N1, N2 (the coursework's ResNet-18) and ResNet-18 (CIFAR stem).

One VICReg step (batch 256 pairs, 32 px, the coursework's crop + flip views, projector 3 x 1024, forward +
backward + Adam) and one supervised step (batch 256, cross-entropy, SGD), with the course's defaults for
precision and memory layout (``Config.amp_dtype``, ``runtime.memory_format``). The encoders take turns in
every repeat, so load from other processes hits them alike; each number is the median over the repeats,
and every ratio is against N1 measured in the same run. Also the epoch time this implies on CIFAR-10
(50,000 images, 195 steps of 256).

    python benchmarks/bench_encoders.py                      # ~3 min on 2 idle CPU cores
    python benchmarks/bench_encoders.py --device cuda --steps 20 --out benchmarks/results/encoders-gpu.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, no install needed

from course_lib.augment import build_views  # noqa: E402
from course_lib.config import resolve  # noqa: E402
from course_lib.losses import vicreg_loss  # noqa: E402
from course_lib.models import Projector, build_encoder, count_parameters  # noqa: E402
from course_lib.runtime import autocast, grad_scaler, memory_format, to_device  # noqa: E402

STEPS_PER_EPOCH = 50_000 // 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_steps(name: str, cfg, x: torch.Tensor, y: torch.Tensor):
    """Two closures, one VICReg step and one supervised step of encoder ``name``."""
    device = cfg.torch_device
    torch.manual_seed(0)
    enc = build_encoder(name)
    proj = Projector(enc.out_dim, (1024, 1024, 1024))
    model = to_device(torch.nn.ModuleDict({"enc": enc, "proj": proj}), cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    views = build_views("crop-flip", 32, (0.08, 1.0))
    gen = torch.Generator(device=device).manual_seed(1)
    fmt = memory_format(cfg, name)
    sup_enc = build_encoder(name)
    sup = to_device(torch.nn.Sequential(sup_enc, torch.nn.Linear(sup_enc.out_dim, 10)), cfg)
    sgd = torch.optim.SGD(sup.parameters(), lr=0.05, momentum=0.9)
    flip = build_views("crop-flip", 32, (0.5, 1.0)).first
    scaler = grad_scaler(cfg)  # fp16 only, on the run's device

    def backward(loss, optimizer):
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def vicreg_step(i: int) -> None:
        idx = torch.arange(i * 256, (i + 1) * 256, device=device) % len(x)
        a, b = views(x[idx], gen)
        with autocast(cfg):
            za = model["proj"](model["enc"](a.contiguous(memory_format=fmt)))
            zb = model["proj"](model["enc"](b.contiguous(memory_format=fmt)))
        backward(vicreg_loss(za.float(), zb.float())["loss"], opt)

    def supervised_step(i: int) -> None:
        idx = torch.arange(i * 256, (i + 1) * 256, device=device) % len(x)
        with autocast(cfg):
            logits = sup(flip(x[idx], gen).contiguous(memory_format=fmt))
        backward(F.cross_entropy(logits.float(), y[idx]), sgd)

    return {"vicreg": vicreg_step, "supervised": supervised_step}, count_parameters(enc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", default="N1,N2,ResNet-18")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per encoder per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = ap.parse_args(argv)
    cfg = resolve("cpu", device=args.device)
    device = cfg.torch_device
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, 10, (4096,), generator=g).to(device)
    names = [n.strip() for n in args.encoders.split(",")]
    steps, params = {}, {}
    for name in names:
        steps[name], params[name] = make_steps(name, cfg, x, y)
        for fn in steps[name].values():  # warm-up: kernels, allocator pools, Adam's state
            fn(0)
    samples = {(n, k): [] for n in names for k in ("vicreg", "supervised")}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            for kind, fn in steps[name].items():
                _sync(device)
                t0 = time.perf_counter()
                for i in range(args.steps):
                    fn(i + 1)
                _sync(device)
                samples[name, kind].append(args.steps / (time.perf_counter() - t0))
    rows = []
    for name in names:
        row = {"encoder": name, "parameters": params[name]}
        for kind in ("vicreg", "supervised"):
            rate = statistics.median(samples[name, kind])  # steps per second
            per = 256 * (2 if kind == "vicreg" else 1)
            row[f"{kind}_images_per_s"] = round(rate * per, 1)
            row[f"{kind}_epoch_min"] = round(STEPS_PER_EPOCH / rate / 60, 2)
        rows.append(row)
    base = rows[0]
    print(f"device {device}, precision {cfg.amp_dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {args.repeats} repeats x {args.steps} steps; images/s count both views")
    print(f"{'encoder':<10} {'params':>11} {'VICReg img/s':>13} {'epoch min':>10} {'x N1':>6} "
          f"{'sup. img/s':>11} {'epoch min':>10} {'x N1':>6}")
    for row in rows:
        print(f"{row['encoder']:<10} {row['parameters']:>11,} {row['vicreg_images_per_s']:>13.0f} "
              f"{row['vicreg_epoch_min']:>10.2f} {row['vicreg_images_per_s'] / base['vicreg_images_per_s']:>6.2f} "
              f"{row['supervised_images_per_s']:>11.0f} {row['supervised_epoch_min']:>10.2f} "
              f"{row['supervised_images_per_s'] / base['supervised_images_per_s']:>6.2f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"device": str(device), "precision": str(cfg.amp_dtype),
                                              "torch": torch.__version__, "machine": platform.processor(),
                                              "threads": torch.get_num_threads(), "rows": rows,
                                              "samples": {f"{n}/{k}": v for (n, k), v in samples.items()}},
                                             indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
