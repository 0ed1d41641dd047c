"""The GPU check: one command, one table, what a first GPU session must confirm (about 5-10 min on one GPU).

    python benchmarks/gpu_check.py                       # on a GPU: CIFAR-10-sized synthetic data, notebook 02 too
    python benchmarks/gpu_check.py                       # on a CPU: a smoke run of the same checks on 256 images
    python benchmarks/gpu_check.py --out benchmarks/results/gpu-check-$(hostname).json

Rows, each measured on this machine (nothing is estimated here):

1. the device, its compute capability, and the precision the course picks for it (``config.choose_precision``),
   with TF32 / cuDNN autotuning as ``runtime.configure_backends`` leaves them;
2. one fp16 + GradScaler VICReg step (the T4 path, forced with ``precision="fp16"`` on any device): finite loss;
3. N1 and ResNet-18 VICReg epoch times (``train.pretrain``, the course's defaults, batch 256, projector 3 x 1024,
   no monitor) on ``--images`` random 32 px CIFAR-sized images: the first epoch (cuDNN autotuning, allocator
   warm-up) and the second, and the second scaled to CIFAR-10's 50,000 images;
4. on CUDA only, the run folder travelling CPU -> GPU: an fp32 run stopped after epoch 1 on the CPU resumes on
   the GPU (re-seeded views, one line) and a finished CPU run loads on the GPU;
5. notebook 02 with the ``colab-t4`` preset for one epoch (``course_lib.run --only 02_``), its set A a synthetic
   CIFAR-sized image folder (no network needed), set B off: wall time and exit status. ``--no-notebook`` skips it.

The data are random pixels: the times are those of real CIFAR-10 (same shapes, same steps), the losses are not.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, no install needed

from course_lib import config, images, resolve, runtime, train  # noqa: E402
from course_lib.config import with_overrides  # noqa: E402

CIFAR_TRAIN = 50_000


def synthetic(n: int, seed: int = 0) -> images.ImageDataset:
    """``n`` random 32 px RGB training images (and n // 5 test images) in 10 classes: CIFAR-10's shapes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n + n // 5, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n + n // 5) % 10
    return images.as_dataset("synthetic CIFAR-sized", x[:n], y[:n], x[n:], y[n:], [str(c) for c in range(10)])


def epoch_times(cfg, encoder: str, ds, epochs: int = 2) -> list[float]:
    """Seconds of each of ``epochs`` VICReg epochs of ``encoder`` (train.pretrain, the course's loop)."""
    starts = []
    real = train.batches

    def timed(*args, **kwargs):
        if cfg.torch_device.type == "cuda":
            torch.cuda.synchronize()
        starts.append(time.perf_counter())
        yield from real(*args, **kwargs)

    train.batches = timed
    try:
        train.pretrain(with_overrides(cfg, pretrain_epochs=epochs), encoder, ds, "vicreg", progress=False)
    finally:
        train.batches = real
    if cfg.torch_device.type == "cuda":
        torch.cuda.synchronize()
    starts.append(time.perf_counter())
    return [b - a for a, b in zip(starts, starts[1:])]


def fp16_step(device: str, ds, runs: Path) -> str:
    """One epoch of N1 VICReg in fp16 + GradScaler (batch 256 on a GPU; 64 on a CPU, where fp16 is emulated)."""
    cfg = resolve("test", device=device, precision="fp16", runs_dir=str(runs / "fp16"), encoder="N1",
                  batch_size=256 if device == "cuda" else 64, projector=(1024, 1024, 1024), pretrain_epochs=1,
                  monitor_every=0)
    if device != "cuda":
        from dataclasses import replace

        ds = replace(ds, x_train=ds.x_train[:128], y_train=ds.y_train[:128])
    made = []
    real = train.grad_scaler
    train.grad_scaler = lambda c: made.append(real(c)) or made[-1]
    try:
        run = train.pretrain(cfg, "N1", ds, "vicreg", progress=False)
    finally:
        train.grad_scaler = real
    losses = [h["loss"] for h in run.history]
    ok = all(math.isfinite(v) for v in losses) and made[0] is not None and made[0].is_enabled()
    return (f"{'ok' if ok else 'FAILED'}: {len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
            f"scaler on {made[0]._device} at {made[0].get_scale():g}")


def travel(ds, runs: Path) -> str:
    """CPU -> CUDA: a stopped fp32 CPU run resumes on the GPU; a finished one loads there (fp32 on both: the
    precision is part of a run's fingerprint, the device is not)."""
    on_gpu = ds.to("cuda")
    base = dict(runs_dir=str(runs / "travel"), encoder="N1", batch_size=256, projector=(256, 256),
                monitor_every=0, precision="fp32", checkpoint_every_s=0)
    cpu = resolve("test", device="cpu", pretrain_epochs=2, **base)
    gpu = resolve("test", device="cuda", pretrain_epochs=2, **base)
    calls, real = [0], train.batches

    def dying(*args, **kwargs):  # stops in the middle of epoch 2
        calls[0] += 1
        for i, b in enumerate(real(*args, **kwargs)):
            if calls[0] == 2 and i == 1:
                raise KeyboardInterrupt
            yield b

    train.batches = dying
    try:
        train.pretrain(cpu, "N1", ds, "vicreg", progress=False)
    except KeyboardInterrupt:
        pass
    finally:
        train.batches = real
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        resumed = train.pretrain(gpu, "N1", on_gpu, "vicreg", progress=False)
    line = next((x for x in out.getvalue().splitlines() if "re-seeded" in x), "no re-seed line")
    done = resolve("test", device="cpu", pretrain_epochs=1, **base)
    train.pretrain(done, "N1", ds, "vicreg", progress=False)
    loaded = train.pretrain(resolve("test", device="cuda", pretrain_epochs=1, **base), "N1", on_gpu, "vicreg",
                            progress=False)
    ok = resumed.status == "resumed" and "re-seeded" in line and loaded.status == "loaded"
    return f"{'ok' if ok else 'FAILED'}: resumed on cuda ({line.split(': ', 1)[-1][:90]}...); finished run {loaded.status}"


def notebook_02(n: int, runs: Path) -> str:
    """Notebook 02 on the colab-t4 preset for one epoch, set A a synthetic CIFAR-sized image folder."""
    from PIL import Image

    folder = runs / "imagefolder"
    ds = synthetic(n, seed=1)
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        for c in range(10):
            (folder / split / str(c)).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(x, y.tolist())):
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / split / str(label) / f"{i:05d}.png")
    cmd = [sys.executable, "-m", "course_lib.run", "--preset", "colab-t4", "--only", "02_", "--no-promote",
           "-p", "dataset_a=imagefolder", "-p", f"data_root={folder}", "-p", "dataset_b=none",
           "-p", "pretrain_epochs=1", "-p", f"out_dir={runs / 'build'}", "-p", f"runs_dir={runs / 'nb-runs'}"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [""])[-1][:120]
    return f"{'ok' if done.returncode == 0 else f'FAILED (exit {done.returncode}): {tail}'} in {seconds:.0f} s " \
           f"({n:,} training images, both encoders, 1 epoch)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=None,
                    help="synthetic training images (default: 50,000 on a GPU, 256 on a CPU)")
    ap.add_argument("--no-notebook", action="store_true", help="skip notebook 02")
    ap.add_argument("--out", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    n = args.images or (CIFAR_TRAIN if cuda else 256)
    rows: list[tuple[str, str]] = []

    def row(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"{name}: {value}", flush=True)

    cfg = resolve("colab-t4", device=device, monitor_every=0)
    policy = cfg.precision_policy
    if cuda:
        cap = torch.cuda.get_device_capability()
        row("device", f"{torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]}), torch {torch.__version__}, "
                      f"is_bf16_supported() = {torch.cuda.is_bf16_supported()} (not used)")
    else:
        row("device", f"CPU, {torch.get_num_threads()} threads, native bf16 {config.cpu_has_native_bf16()}, "
                      f"torch {torch.__version__}")
    runtime.configure_backends(cfg)
    row("precision (auto)", policy.why)
    if cuda:
        row("backends", f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 "
                        f"{torch.backends.cudnn.allow_tf32}, cudnn.benchmark {torch.backends.cudnn.benchmark}, "
                        "deterministic False (deterministic=True turns them off)")
    ds = synthetic(n).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        row("fp16 + GradScaler step", fp16_step(device, ds, tmp))
        for encoder in ("N1", "ResNet-18"):
            ecfg = resolve("colab-t4", device=device, monitor_every=0, runs_dir=str(tmp / encoder), encoder=encoder)
            first, second = epoch_times(ecfg, encoder, ds)
            row(f"{encoder} VICReg epoch", f"{first:.1f} s first, {second:.1f} s second on {n:,} images "
                                           f"({policy.name}) = {second * CIFAR_TRAIN / n:.1f} s per CIFAR-10 epoch")
        if cuda:
            row("run folder CPU -> CUDA", travel(synthetic(1024), tmp))
        if not args.no_notebook:
            row("notebook 02, colab-t4, 1 epoch", notebook_02(n, tmp))
    print("\n| check | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(dict(rows), indent=2))
    return 0 if not any("FAILED" in v for _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
