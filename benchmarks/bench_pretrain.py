"""Pretraining throughput: course_lib's on-device pipeline against the usual DataLoader pipeline.

Image pairs per second of VICReg pretraining (batch 256, 32 px, two "ssl" views,
forward + backward + Adam step) for N1 and ResNet-18, measured side by side in one run:

* ours: uint8 images held on the device, batches as slices of an on-device
  permutation, both views augmented for the whole batch with tensor ops
  (``course_lib.augment``, "ssl"), ``course_lib``'s VICReg loss; once with the
  course's defaults (``Config.amp_dtype`` for ``precision="auto"``, ``config.choose_precision``: bf16
  autocast where the hardware has native bf16, fp16 + GradScaler on GPUs below sm_80;
  ``runtime.memory_format``: channels_last where the config puts it, per encoder) and once in fp32 (same layout). Where the defaults already are
  fp32 (a CPU without native bf16) the two are the same configuration, measured once
  and reported in both columns.
* reference: what most people write today: a CIFAR-like array served as PIL images
  by a ``Dataset``, torchvision ``transforms.v2`` for the same two views
  (RandomResizedCrop, flip, ColorJitter p=0.8, RandomGrayscale 0.2, GaussianBlur,
  RandomSolarize), a ``DataLoader`` with worker processes, lightly's ``VICRegLoss``,
  fp32.

It also times each pipeline's augmentation alone, with no model (pairs/s), and with
``--kornia`` the same views written with kornia.augmentation.

Timing: the pipelines take turns, one timed run of ``--steps`` steps each per repeat
(``--repeats``), so load from other processes hits them alike; each number is the
median over the repeats. Untimed warm-up steps come first, and the reference's every
run starts fresh DataLoader workers (as each epoch does) and settles them with the
warm-up steps. ResNet-18 costs 10-30 s per step on a 2-core CPU, so by default it gets
one step per repeat (``DEFAULT_STEPS``); the whole run then takes about 5 minutes on an
otherwise idle 2-core CPU. The CPU time other processes used meanwhile is recorded
beside the numbers. See benchmarks/README.md.

Run from the project root::

    python benchmarks/bench_pretrain.py --out benchmarks/results/cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, no install needed

from course_lib.augment import blur_kernel_size, build_views  # noqa: E402
from course_lib.config import Config  # noqa: E402
from course_lib.data import batches  # noqa: E402
from course_lib.losses import vicreg_loss  # noqa: E402
from course_lib.models import Projector, build_encoder  # noqa: E402
from course_lib.runtime import grad_scaler, memory_format  # noqa: E402

# ----------------------------------------------------------------------------- settings
CIFAR10_TRAIN = 50_000  # images in CIFAR-10's training split: one epoch of pairs
BATCH_SIZE = 256  # image pairs per step
IMAGE_SIZE = 32  # pixels, CIFAR-sized
CROP_SCALE = (0.08, 1.0)  # RandomResizedCrop's area fraction, both pipelines
PROJECTOR = (1024, 1024, 1024)  # the coursework's expander
LR = 1e-3  # Adam, both pipelines (throughput does not depend on it)
# Timed steps per repeat and untimed warm-up steps (allocator, oneDNN kernels, DataLoader
# workers). ResNet-18 takes 10-30 s per step on a 2-core CPU, so it gets one step per repeat.
DEFAULT_STEPS = {"N1": 6, "ResNet-18": 1}  # N1's are even, as AUG_STEPS below
DEFAULT_WARMUP = {"N1": 2, "ResNet-18": 1}
# Augmentation alone: batches per repeat, repeats, warm-up. Even counts: the two workers
# deliver their batches in pairs, so an odd count would skew the reference's rate.
AUG_STEPS, AUG_REPEATS, AUG_WARMUP = 6, 5, 2


# ----------------------------------------------------------------------------- data
def cifar_like(n: int, seed: int) -> np.ndarray:
    """Random uint8 images, N x 32 x 32 x 3 (HWC, the layout torchvision's CIFAR10 keeps)."""
    return np.random.default_rng(seed).integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)


class PILPairs(torch.utils.data.Dataset):
    """Like ``torchvision.datasets.CIFAR10``: an array in memory, one PIL image per item, two views."""

    def __init__(self, images: np.ndarray, views: tuple[Callable, Callable]):
        self.images, self.views = images, views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i])
        return self.views[0](img), self.views[1](img)


def reference_views(size: int, scale: tuple[float, float]) -> tuple[Callable, Callable]:
    """The "ssl" pair in torchvision.transforms.v2 on PIL images (as in lightly's VICRegTransform)."""
    from torchvision.transforms import v2

    def view(blur_p: float, solarize_p: float) -> v2.Compose:
        return v2.Compose([
            v2.RandomResizedCrop(size, scale=scale, antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))], p=blur_p),
            v2.RandomSolarize(threshold=128, p=solarize_p),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5] * 3, [0.5] * 3),
        ])

    return view(blur_p=1.0, solarize_p=0.0), view(blur_p=0.1, solarize_p=0.2)


def reference_loader(images: np.ndarray, num_workers: int, device: torch.device, seed: int):
    """The DataLoader as people write it (workers restart each epoch: ``persistent_workers`` off by default)."""
    return torch.utils.data.DataLoader(
        PILPairs(images, reference_views(IMAGE_SIZE, CROP_SCALE)),
        batch_size=BATCH_SIZE, shuffle=True, drop_last=True, num_workers=num_workers,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
    )


# ----------------------------------------------------------------------------- the two pipelines
def _model(encoder_name: str, device: torch.device, memory: torch.memory_format, seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    encoder = build_encoder(encoder_name).to(device, memory_format=memory).train()
    projector = Projector(encoder.out_dim, PROJECTOR).to(device).train()
    return encoder, projector


class Ours:
    """course_lib's pretraining step (what ``train.pretrain_vicreg`` does per batch); no encoder: augmentation alone."""

    restarts = False  # nothing to start: the data sit on the device

    def __init__(self, x_uint8: torch.Tensor, cfg: Config, encoder_name: str | None = None):
        self.x, self.cfg, self.device = x_uint8, cfg, cfg.torch_device
        self.views = build_views("ssl", IMAGE_SIZE, CROP_SCALE)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.idx_gen = torch.Generator().manual_seed(cfg.seed)
        self.index_batches = iter(())
        self.model = None
        if encoder_name is not None:
            self.memory = memory_format(cfg, encoder_name)  # once, not in every timed step
            self.model = _model(encoder_name, self.device, self.memory, cfg.seed)
            params = [p for m in self.model for p in m.parameters()]
            self.optimizer = torch.optim.Adam(params, lr=LR)
            self.scaler = grad_scaler(cfg)  # fp16 (a T4, V100) steps through a GradScaler, as the course's loop does

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _batch(self) -> torch.Tensor:
        """The next batch of uint8 images: a slice of the on-device permutation."""
        idx = next(self.index_batches, None)
        if idx is None:  # a new epoch: a new on-device permutation
            self.index_batches = batches(len(self.x), BATCH_SIZE, self.idx_gen, self.device)
            idx = next(self.index_batches)
        return self.x[idx]

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.views(self._batch(), self.aug_gen)

    def step(self) -> None:
        x_a, x_b = self._views()
        if self.model is None:
            return
        encoder, projector = self.model
        memory = self.memory
        dtype = self.cfg.amp_dtype
        with torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext():
            z_a = projector(encoder(x_a.contiguous(memory_format=memory)))
            z_b = projector(encoder(x_b.contiguous(memory_format=memory)))
        loss = vicreg_loss(z_a, z_b)["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()


class Reference:
    """The usual loop: DataLoader batch -> device -> fp32 model -> lightly's VICRegLoss; no encoder: the loader alone.

    ``start()`` starts fresh workers, as each epoch does; ``stop()`` drops the iterator,
    which stops them (idle workers would keep prefetching and steal the CPU from the
    next measurement).
    """

    restarts = True  # fresh workers at each start: settle them before timing

    def __init__(self, loader, device: torch.device, encoder_name: str | None = None, seed: int = 0):
        self.loader, self.device, self.pairs = loader, device, None
        self.model = None
        if encoder_name is not None:
            from lightly.loss import VICRegLoss

            self.model = _model(encoder_name, device, torch.contiguous_format, seed=seed)
            self.optimizer = torch.optim.Adam([p for m in self.model for p in m.parameters()], lr=LR)
            self.criterion = VICRegLoss()

    def start(self) -> None:
        self.pairs = iter(self.loader)

    def stop(self) -> None:
        self.pairs = None

    def step(self) -> None:
        batch = next(self.pairs, None)
        if batch is None:  # end of the epoch
            self.start()
            batch = next(self.pairs)
        x_a, x_b = (t.to(self.device, non_blocking=True) for t in batch)
        if self.model is None:
            return
        encoder, projector = self.model
        loss = self.criterion(projector(encoder(x_a)), projector(encoder(x_b)))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class KorniaViews(Ours):
    """The "ssl" pair with kornia.augmentation on the same on-device batches (``--kornia``; augmentation alone)."""

    def __init__(self, x_uint8: torch.Tensor, cfg: Config):
        super().__init__(x_uint8, cfg)
        import kornia.augmentation as K

        def view(blur_p: float, solarize_p: float) -> nn.Module:
            k = blur_kernel_size(IMAGE_SIZE)
            return nn.Sequential(
                K.RandomResizedCrop((IMAGE_SIZE, IMAGE_SIZE), scale=CROP_SCALE),
                K.RandomHorizontalFlip(p=0.5),
                K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8),
                K.RandomGrayscale(p=0.2),
                K.RandomGaussianBlur((k, k), (0.1, 2.0), p=blur_p),
                K.RandomSolarize(thresholds=0.0, additions=0.0, p=solarize_p),  # threshold exactly 0.5
                K.Normalize(torch.tensor([0.5] * 3), torch.tensor([0.5] * 3)),
            ).to(self.device)

        self.kornia_views = view(blur_p=1.0, solarize_p=0.0), view(blur_p=0.1, solarize_p=0.2)

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._batch().float().div_(255)
        return self.kornia_views[0](x), self.kornia_views[1](x)


# ----------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def race(pipelines: dict, steps: int, repeats: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Pairs/s of each pipeline in each of ``repeats`` timed runs of ``steps`` steps.

    The pipelines take turns, one timed run each per repeat (the order rotates), so a
    burst of load from other processes hits them alike. Untimed first: ``warmup + steps``
    steps at each pipeline's first use (oneDNN kernels, the allocator's pools and Adam's
    state settle over the first few steps), and ``warmup`` steps after every later start
    of a pipeline that ``restarts`` (fresh DataLoader workers), so that the timed steps
    see each pipeline's steady state.
    """
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    names = list(pipelines)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            pipe = pipelines[name]
            pipe.start()
            for _ in range(warmup + steps if r == 0 else warmup if pipe.restarts else 0):
                pipe.step()
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                pipe.step()
            _sync(device)
            rates[name].append(steps * BATCH_SIZE / (time.perf_counter() - t0))
            pipe.stop()
    return rates


class OtherLoad:
    """CPU cores that other processes kept busy while this one ran (Linux; None elsewhere).

    This benchmark's numbers on a shared CPU depend on what else runs: recorded beside them.
    """

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy() -> float | None:
        try:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
        except (OSError, ValueError):
            return None
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        import resource

        me, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + workers.ru_utime + workers.ru_stime

    def cores(self) -> float | None:
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        others = (busy - self.busy0) - (self._own() - self.own0)
        return round(max(0.0, others) / (time.perf_counter() - self.t0), 2)


# ----------------------------------------------------------------------------- main
def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}"


def _layout(cfg: Config, encoder_name: str) -> str:
    return "channels_last" if memory_format(cfg, encoder_name) == torch.channels_last else "contiguous"


def _precision(cfg: Config) -> str:
    dtype = cfg.amp_dtype
    return "fp32" if dtype is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", default="N1,ResNet-18", help="comma list (default: both)")
    parser.add_argument("--steps", type=int, default=None, help=f"timed steps per repeat (default: {DEFAULT_STEPS})")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed steps first (default: {DEFAULT_WARMUP})")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    parser.add_argument("--num-workers", type=int, default=2, help="reference DataLoader workers")
    parser.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"],
                        help="ours' image layout (auto: Config's default per encoder and device)")
    parser.add_argument("--num-images", type=int, default=10_000, help="random CIFAR-like images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kornia", action="store_true", help="also time kornia's augmentation (alone)")
    parser.add_argument("--out", default=None, help="write the JSON records here")
    args = parser.parse_args(argv)

    common = dict(preset="benchmark", device=args.device, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
                  seed=args.seed, channels_last=args.channels_last)
    defaults, fp32 = Config.from_flat(**common), Config.from_flat(**common, precision="fp32")
    device = defaults.torch_device
    same = defaults.amp_dtype is None  # the defaults already are fp32: one configuration, measured once
    images = cifar_like(args.num_images, args.seed)
    x_uint8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)  # N x 3 x H x W on the device
    print(f"device: {describe_device(device)}; torch {torch.__version__}; ours: {_precision(defaults)}"
          f"{' (auto)' if same else ''}, N1 {_layout(defaults, 'N1')}, ResNet-18 {_layout(defaults, 'ResNet-18')}; reference: fp32, {args.num_workers} workers", flush=True)

    loader = reference_loader(images, args.num_workers, device, args.seed)

    # augmentation alone, no model
    aug_load = OtherLoad()
    contenders = {"ours": Ours(x_uint8, defaults), "reference": Reference(loader, device)}
    if args.kornia:
        contenders["kornia"] = KorniaViews(x_uint8, defaults)
    aug = race(contenders, AUG_STEPS, AUG_REPEATS, AUG_WARMUP, device)
    aug_ours, aug_reference = aug["ours"], aug["reference"]
    aug_other_cores = aug_load.cores()
    print(f"augmentation alone: ours {statistics.median(aug_ours):.0f} pairs/s, "
          f"reference {statistics.median(aug_reference):.0f} pairs/s"
          + (f", kornia {statistics.median(aug['kornia']):.0f} pairs/s" if args.kornia else "")
          + f" (other processes: {aug_other_cores} cores busy)", flush=True)

    records = []
    for name in [e.strip() for e in args.encoders.split(",") if e.strip()]:
        steps = args.steps or DEFAULT_STEPS.get(name, 2)
        warmup = args.warmup if args.warmup is not None else DEFAULT_WARMUP.get(name, 1)
        pipelines = {"ours": Ours(x_uint8, defaults, name)}
        if not same:
            pipelines["ours_fp32"] = Ours(x_uint8, fp32, name)
        pipelines["reference"] = Reference(loader, device, name, args.seed)
        other_load = OtherLoad()
        rates = race(pipelines, steps, args.repeats, warmup, device)
        del pipelines
        ours, reference = rates["ours"], rates["reference"]
        ours_fp32 = rates.get("ours_fp32", ours)
        med = {k: statistics.median(v) for k, v in
               dict(ours=ours, ours_fp32=ours_fp32, reference=reference, aug_ours=aug_ours,
                    aug_reference=aug_reference).items()}
        record = {
            "encoder": name,
            "ours_pairs_per_s": round(med["ours"], 1),
            "ours_fp32_pairs_per_s": round(med["ours_fp32"], 1),
            "reference_pairs_per_s": round(med["reference"], 1),
            "ratio": round(med["ours"] / med["reference"], 2),
            "ratio_same_precision": round(med["ours_fp32"] / med["reference"], 2),
            "aug_ours_pairs_per_s": round(med["aug_ours"], 1),
            "aug_reference_pairs_per_s": round(med["aug_reference"], 1),
            "aug_ratio": round(med["aug_ours"] / med["aug_reference"], 2),
            "cifar10_epoch_s": round(CIFAR10_TRAIN / med["ours"], 1),
            "device": describe_device(device),
            "torch": torch.__version__,
            "precision": {"ours": _precision(defaults), "ours_fp32": "fp32", "reference": "fp32",
                          "ours_fp32_same_run_as_ours": same, "ours_memory_format": _layout(defaults, name),
                          "reference_memory_format": "contiguous"},
            "batch_size": BATCH_SIZE,
            "image_size": IMAGE_SIZE,
            "steps": steps,
            "warmup": warmup,
            "repeats": args.repeats,
            "num_workers": args.num_workers,
            **({"aug_kornia_pairs_per_s": round(statistics.median(aug["kornia"]), 1)} if args.kornia else {}),
            "other_processes_cpu_cores": {"training": other_load.cores(), "augmentation": aug_other_cores},
            "samples_pairs_per_s": {k: [round(r, 1) for r in v] for k, v in
                                    dict(ours=ours, ours_fp32=ours_fp32, reference=reference).items()},
        }
        records.append(record)
        print(f"{name}: ours {med['ours']:.1f}, ours fp32 {med['ours_fp32']:.1f}, "
              f"reference {med['reference']:.1f} pairs/s (other processes: {other_load.cores()} cores busy)",
              flush=True)

    header = ("encoder", "ours", "ours fp32", "reference", "ratio", "ratio fp32", "aug ours", "aug ref", "aug ratio")
    print("\npairs/s (median of repeats); ratios = ours / reference")
    print(" | ".join(f"{h:>10}" for h in header))
    for r in records:
        row = (r["encoder"], r["ours_pairs_per_s"], r["ours_fp32_pairs_per_s"], r["reference_pairs_per_s"],
               r["ratio"], r["ratio_same_precision"], r["aug_ours_pairs_per_s"], r["aug_reference_pairs_per_s"],
               r["aug_ratio"])
        print(" | ".join(f"{v:>10}" for v in row))
    for r in records:  # what a reader plans with: one VICReg epoch over CIFAR-10's 50,000 training images
        print(f"{r['encoder']}: one VICReg epoch on CIFAR-10 (50,000 pairs) takes about "
              f"{CIFAR10_TRAIN / r['ours_pairs_per_s'] / 60:.1f} min with ours, "
              f"{CIFAR10_TRAIN / r['reference_pairs_per_s'] / 60:.1f} min with the reference")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records, indent=2) + "\n")
        print(f"wrote {out}")
    return records


if __name__ == "__main__":
    main()
