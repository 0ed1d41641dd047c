"""Presets: every setting of a run in one place, read when a run starts.

Introduced in notebook 01. A notebook's ``parameters`` cell names the few knobs a
reader turns (``preset``, ``data_root``, ``dataset_a``, ``dataset_b``, ``encoder``,
``pretrain_epochs``, ``probe_epochs``, ``batch_size``, ``seed``, ``device``); each
left at ``None`` takes the preset's value. :func:`resolve` merges the two and
checks the result, so a typo fails at once with one line that names the fix.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

import torch

from .errors import CourseError

# The names a setting may take. The modules that implement them import this one, never the reverse
# (config is the bottom layer), so each registry's keys are listed here too; tests/test_layers.py keeps
# each list equal to its registry: models.ENCODERS, data.DATASETS, methods.METHODS.
ENCODER_NAMES = ("N1", "N2", "ResNet-18")
#: The encoders of a preset that names none: N1 and the literature's CIFAR ResNet-18 (the coursework preset: N1, N2).
DEFAULT_ENCODERS = ("N1", "ResNet-18")
DATASET_NAMES = ("digits", "digits-a", "digits-b", "digits-scattered", "digits-scattered-a", "digits-scattered-b",
                 "cifar10", "tiny-imagenet", "imagefolder")
#: Every method a results row can name, as sentences and figures write it: the self-supervised methods
#: (methods.METHODS), then the two references every table has. The one list of method names.
METHOD_TITLES = {"vicreg": "VICReg", "barlow_twins": "Barlow Twins", "wmse": "W-MSE", "simclr": "SimCLR",
                 "moco_v2": "MoCo v2", "invariance_only": "invariance only",
                 "supervised": "supervised", "random-init": "random-init"}
#: The self-supervised methods (a pretraining's ``method``); the first five are the survey's, compared in notebook 05.
METHOD_NAMES = tuple(m for m in METHOD_TITLES if m not in ("supervised", "random-init"))
SURVEYED_METHODS = METHOD_NAMES[:5]
SYNC_BATCHNORM = ("none", "projector", "all")


@dataclass(frozen=True)
class Config:
    """All settings of one study. Units are in the field comments."""

    preset: str
    dataset_a: str = "digits-scattered-a"  # pretraining + set A evaluation ("name" or "name:path")
    dataset_b: str | None = "digits-scattered-b"  # transfer set, labels disjoint from A; "none" skips B
    data_root: str | None = None  # folder holding the datasets (see course_lib.data)
    download: bool = False  # fetch missing datasets (needs network)
    image_size: int | None = None  # side of the network's input, pixels; None: set A's own (B is resized to it)
    encoders: tuple[str, ...] = DEFAULT_ENCODERS
    seed: int = 0
    device: str = "auto"  # "auto" = cuda if available, else cpu
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16" (autocast dtype; "auto": choose_precision)
    deterministic: bool = False  # True: torch.use_deterministic_algorithms, no TF32, no cuDNN autotuning (slower)
    channels_last: str = "auto"  # "auto" = on CUDA, and for N1 on a CPU (ResNet-18 is 3-5x slower so there)
    compile: bool = False  # torch.compile the encoder (GPU runs)
    sync_batchnorm: str = "projector"  # under torchrun: BatchNorm statistics over the global batch in "none" | "projector" | "all"
    batch_size: int = 256  # images per step (pairs for SSL)
    # --- VICReg pretraining (Adam) ---
    pretrain_epochs: int = 30
    pretrain_lr: float = 1e-3
    pretrain_weight_decay: float = 1e-6
    pretrain_schedule: str = "constant"  # "constant" (the coursework) | "cosine" (linear warm-up, then cosine to 0)
    pretrain_warmup_epochs: int = 10  # warm-up of the "cosine" schedule
    # epoch counts read off one VICReg run (constant lr only): it trains to max(pretrain_epochs, *epochs_study)
    # epochs and keeps the encoder after each count; the tables use the encoder after pretrain_epochs
    epochs_study: tuple[int, ...] = ()
    projector: tuple[int, ...] = (1024, 1024, 1024)
    augmentation: str = "crop-flip"  # "crop-flip" (the coursework) | "ssl" (VICReg's ImageNet views) | "ssl-cifar"
    crop_scale: tuple[float, float] = (0.08, 1.0)
    loss_weights: tuple[float, float, float] = (25.0, 25.0, 1.0)  # invariance, variance, covariance
    # --- supervised baseline (SGD + cross-entropy) ---
    supervised_epochs: int = 30
    supervised_lr: float = 0.05  # SGD, momentum 0.9, cosine decay
    # --- evaluation ---
    probe_epochs: int = 20  # linear probe on frozen embeddings (SGD)
    probe_lr: float = 0.1
    finetune_steps: int = 300  # optimizer steps of semi-supervised fine-tuning, however few the labels
    finetune_lr: float = 0.01  # SGD, momentum 0.9, cosine decay per step; the head starts as the same-label probe
    # LP-FT's starting head: "clean" = the same-label probe itself (clean images, eval mode: Kumar et al.'s LP-FT);
    # "views" = a probe fitted on the augmented crops fine-tuning feeds, BatchNorm in training mode (what its first
    # step sees). On the digits' validation split neither was ahead beyond noise (README): course_lib.evaluate.lpft_head
    finetune_head: str = "clean"
    label_fractions: tuple[float, ...] = (0.01, 0.1)
    tsne_points: int = 2000  # test images per t-SNE panel
    # --- budgets (a CPU preset gives an expensive encoder less; the report labels such rows) ---
    train_images: int | None = None  # class-balanced subset of each set's training split used for training; None = all
    encoder_overrides: dict = field(default_factory=dict)  # {"ResNet-18": {"supervised_epochs": 1, ...}}: cfg.for_encoder
    # --- notebook 07's studies (course_lib.studies): "full" = every point, 3 seeds; "quick" = the points marked
    # quick, 2 seeds, epochs 1/2/4 (the test preset's smoke grid)
    studies_grid: str = "full"
    # --- diagnostics during pretraining (course_lib.diagnostics; every method) ---
    monitor_every: int = 1  # embed A's train/test splits every this many epochs (eval mode, no grad); 0 = off
    knn_k: int = 20  # neighbours of the kNN monitor (cosine similarity, weighted vote)
    # --- the other SSL methods (course_lib.methods; notebooks 00 and 05) ---
    methods: tuple[str, ...] = SURVEYED_METHODS  # compared in 05
    comparison_encoder: str = "N1"  # the one encoder every method of notebook 05 pretrains
    comparison_epochs: int | None = None  # pretraining epochs of each method in 05; None = pretrain_epochs
    comparison_images: int | None = None  # set A training images (class-balanced) of 05's methods and 02's collapse runs
    collapse_epochs: int = 10  # epochs of each run of notebook 02's collapse demonstration (N1 on set A)
    barlow_lambda: float | None = None  # off-diagonal weight; None = 1 / (projector output width)
    wmse_hidden: int = 1024  # W-MSE head: Linear(hidden) + BN + ReLU + Linear(dim), the paper's CIFAR head
    wmse_dim: int = 64  # W-MSE embedding width; must be below min(batch_size, wmse_w_size)
    wmse_w_size: int = 128  # W-MSE whitening sub-batch, rows (the paper: 2 x wmse_dim)
    simclr_temperature: float = 0.5  # NT-Xent tau (the paper's CIFAR-10 value)
    moco_queue: int = 4096  # MoCo negatives per view; keep below the training set's size minus a batch
    moco_momentum: float = 0.99  # key encoder EMA: theta_k <- m theta_k + (1 - m) theta_q
    moco_temperature: float = 0.2  # InfoNCE tau (MoCo v2)
    # --- where things go ---
    out_dir: str | None = None  # None: build/<preset> under the project root
    runs_dir: str | None = None  # checkpoints; None: runs/ under the project root
    # load a shipped encoder (encoders/, course_lib.shipped) for the main VICReg run and the supervised baseline
    # when runs/ has no run of its own with their settings; false: train your own
    shipped_encoders: bool = True
    checkpoint_every_s: float = 0.0  # save after an epoch if this many seconds passed since the last save

    # ------------------------------------------------------------------ helpers
    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def precision_policy(self) -> "Precision":
        """What this run computes in on its device: :func:`choose_precision` of the hardware and ``precision``."""
        dev = self.torch_device
        return choose_precision(dev.type, cuda_capability(dev) if dev.type == "cuda" else None,
                                cpu_has_native_bf16() if dev.type == "cpu" else False, self.precision)

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for plain fp32 (:attr:`precision_policy`)."""
        return self.precision_policy.dtype

    def for_encoder(self, name: str) -> "Config":
        """This config with ``encoder_overrides[name]`` applied: the budget one encoder trains with."""
        changes = self.encoder_overrides.get(name)
        return with_overrides(self, **changes) if changes else self

    @property
    def pretrain_total_epochs(self) -> int:
        """Epochs the VICReg run trains: ``pretrain_epochs``, or the largest count of ``epochs_study``."""
        return max((self.pretrain_epochs, *self.epochs_study))

    @property
    def report_folder(self) -> str:
        """Where ``make report`` puts this run's tables and figures, under ``report/`` and ``figures/``:
        the embedded digits' presets at the top, any other preset in a folder of its own name."""
        return "" if self.preset in DIGITS_PRESETS else self.preset

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir) if self.out_dir else project_root() / "build" / self.preset

    @property
    def runs_path(self) -> Path:
        return Path(self.runs_dir) if self.runs_dir else project_root() / "runs"

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """A few lines naming the settings a reader cares about (no paths, no device name)."""
        return (
            f"preset {self.preset!r}: set A = {self.dataset_a}, set B = {self.dataset_b}, "
            f"encoders {', '.join(self.encoders)}, {f'{self.image_size} px' if self.image_size else 'native size'}\n"
            f"VICReg {self.pretrain_epochs} epochs (Adam, lr {self.pretrain_lr:g}, {self.augmentation}), "
            f"supervised {self.supervised_epochs} epochs, linear probe {self.probe_epochs} epochs, "
            f"fine-tuning {self.finetune_steps} steps, batch {self.batch_size}, seed {self.seed}"
            + (f", {self.train_images:,} training images" if self.train_images else "")
            + "".join(f"\n{name} on a smaller budget: " + ", ".join(f"{k} {v}" for k, v in changes.items())
                      for name, changes in self.encoder_overrides.items() if name in self.encoders)
        )


# Each preset lists only what differs from the Config defaults.
PRESETS: dict[str, dict] = {
    # Seconds: what `make test` and nbval run (the committed notebooks carry its outputs).
    "test": dict(
        batch_size=128, pretrain_epochs=4, supervised_epochs=4,
        probe_epochs=20, finetune_steps=20, projector=(256, 256, 256), tsne_points=300,
        crop_scale=(0.3, 1.0), checkpoint_every_s=0,  # a checkpoint per epoch: a stopped run keeps each one
        # notebooks 02 (collapse, live) and 05: every method 4 epochs (= pretrain_epochs, so 05 reuses 02's runs)
        collapse_epochs=4, moco_queue=256, studies_grid="quick",
    ),
    # The main job of `make report`: the whole study on the embedded scattered digits, minutes on 2 CPU cores.
    "cpu": dict(
        batch_size=128, pretrain_epochs=10, supervised_epochs=10,
        probe_epochs=100, finetune_steps=200, projector=(1024, 1024, 1024), tsne_points=2000,
        crop_scale=(0.3, 1.0), checkpoint_every_s=30,
        # the monitor costs ~12 % of an epoch (ResNet-18 too): every 2nd epoch keeps notebook 02 cheap.
        # comparison_epochs = collapse_epochs = pretrain_epochs: notebook 05 reuses 02's N1 runs.
        monitor_every=2, collapse_epochs=10, moco_queue=256,
        # fine-tuning's learning rate, per encoder, chosen on a validation split of A's training images (200 held
        # out; the best mean over VICReg and random-init, 10 % and 30 % of the labels: README, "Fine-tuning's
        # learning rate"): N1 0.001 of 0.0003-0.03 (0.01 and above fell below the probe or collapsed), ResNet-18
        # 0.01 of 0.001-0.01 (10 % only)
        finetune_lr=0.001, encoder_overrides={"ResNet-18": dict(finetune_lr=0.01)},
    ),
    # The coursework's protocol on 2 CPU cores, from a data folder holding cifar10/ and tiny-imagenet-200/
    # (`make report-cifar DATA=...`): CIFAR-10 -> Tiny ImageNet at 32 px, N1 through the whole study on all of
    # CIFAR-10's training images, ResNet-18 on a stated 4,000-image subset for 2 epochs and no fine-tuning (it
    # costs ~30x N1 per image here), the five methods 3 epochs on 10,000 images. The VICReg recipe (batch 256
    # over 128, constant over cosine lr) was chosen on a validation split carved from the training images
    # (benchmarks/cifar_recipe.py, README); the report labels every row's budget beside the coursework's.
    "cpu-cifar": dict(
        dataset_a="cifar10", dataset_b="tiny-imagenet", image_size=None, batch_size=256,
        pretrain_epochs=12, supervised_epochs=8, probe_epochs=100, finetune_steps=300,
        projector=(1024, 1024, 1024), augmentation="ssl-cifar", crop_scale=(0.2, 1.0),
        tsne_points=2000, monitor_every=3, checkpoint_every_s=0,
        comparison_images=10_000, comparison_epochs=3, collapse_epochs=3, moco_queue=4096,
        encoder_overrides={"ResNet-18": dict(train_images=4_000, pretrain_epochs=2, supervised_epochs=2,
                                             monitor_every=0, label_fractions=())},
    ),
    # The coursework's own budget on 2 CPU cores (`make coursework DATA=...`, about 5 h, resumable): N1 and N2 (the
    # coursework's ResNet-18, max-pool kept) on all 50,000 CIFAR-10 training images, VICReg with its recipe
    # (RandomResizedCrop(32) + flip, 25/25/1, Adam at a constant lr, batch 256) kept at 20, 30 and 40 epochs (its
    # epochs study; the tables use 30, its choice), supervised 30 epochs, linear probe 20 epochs, fine-tuning
    # with 1 % and 10 % of A's and B's labels on a step budget, Tiny ImageNet's whole training split.
    # N2's 40-epoch point is cut to fit 5 h (one N2 VICReg epoch is ~5 min here, N1's ~0.7).
    "coursework": dict(
        dataset_a="cifar10", dataset_b="tiny-imagenet", image_size=None, batch_size=256, encoders=("N1", "N2"),
        pretrain_epochs=30, epochs_study=(20, 30, 40), supervised_epochs=30, probe_epochs=20,
        projector=(1024, 1024, 1024), augmentation="crop-flip", crop_scale=(0.08, 1.0),
        tsne_points=2000, monitor_every=2, checkpoint_every_s=0,
        # 800 fine-tuning steps: at least the coursework's 20 epochs at batch 256 for every fraction and set
        # (Tiny ImageNet 10 %: 10,000 images, 39 steps per epoch, 780 steps)
        finetune_steps=800,
        # chosen on a validation split of A's training images over both starting points (VICReg's 30-epoch N1 and
        # random-init), 1 % and 10 % (benchmarks/finetune_recipe.py, README): 0.003 of 0.003/0.01/0.03, mean
        # 48.4 % against 41.3 and 34.8 (at 0.03 random-init fell to 12.2 % on 10 %, below its probe's 41.7)
        finetune_lr=0.003,
        comparison_images=10_000, comparison_epochs=3, collapse_epochs=3, moco_queue=4096,
        encoder_overrides={"N2": dict(epochs_study=(20, 30), monitor_every=5)},
    ),
    # The coursework's protocol on a Colab T4: CIFAR-10 -> Tiny ImageNet (resized to 32 px), its
    # epochs (VICReg 30, supervised 30, probe 20), batch 256, projector 3 x 1024, crop + flip.
    "colab-t4": dict(
        dataset_a="cifar10", dataset_b="tiny-imagenet", download=True, image_size=32, batch_size=256,
        pretrain_epochs=30, supervised_epochs=30, probe_epochs=20, finetune_steps=300,
        projector=(1024, 1024, 1024), augmentation="crop-flip", crop_scale=(0.08, 1.0),
        tsne_points=2000, monitor_every=5, collapse_epochs=10, moco_queue=4096, checkpoint_every_s=0,
    ),
    # A literature-length schedule for ResNet-18 on CIFAR-10 (solo-learn's VICReg recipe: 1000 epochs,
    # batch 256, projector 3 x 2048, its CIFAR augmentation "ssl-cifar" with crops of 20-100 %, a 10-epoch
    # warm-up then cosine decay). Adam instead of solo-learn's LARS, as in the coursework. Days on a T4: see README.
    "full": dict(
        dataset_a="cifar10", dataset_b="tiny-imagenet", download=True, image_size=32, batch_size=256,
        pretrain_epochs=1000, supervised_epochs=200, probe_epochs=100, finetune_steps=2000,
        projector=(2048, 2048, 2048), augmentation="ssl-cifar", crop_scale=(0.2, 1.0),
        pretrain_schedule="cosine", pretrain_warmup_epochs=10,
        tsne_points=5000, monitor_every=10, collapse_epochs=10, moco_queue=4096, checkpoint_every_s=0,
    ),
}


#: Presets whose report is the digits' one (report/ and figures/ at the top).
DIGITS_PRESETS = ("test", "cpu")


#: The compute capability from which a CUDA GPU has bf16 tensor cores (A100 = sm_80; H100/H200 = sm_90).
BF16_CAPABILITY = (8, 0)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FINETUNE_HEADS = ("views", "clean")  # Config.finetune_head


@dataclass(frozen=True)
class Precision:
    """What a run computes in: the autocast ``dtype`` (None: plain fp32), whether fp16's GradScaler is
    needed (``grad_scaler``), and ``why``, one line for a reader."""

    dtype: torch.dtype | None
    grad_scaler: bool
    why: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def choose_precision(device_type: str, capability: tuple[int, int] | None = None, cpu_native_bf16: bool = False,
                     choice: str = "auto") -> Precision:
    """The one precision policy of the course: a pure function of the hardware and the user's ``choice``.

    ``device_type`` is ``"cuda"``, ``"cpu"`` or ``"mps"``; ``capability`` a CUDA GPU's compute capability
    (``torch.cuda.get_device_capability``: T4 (7, 5), V100 (7, 0), A100 (8, 0), H100/H200 (9, 0));
    ``cpu_native_bf16`` whether the CPU computes bf16 natively (AVX512-BF16 or AMX). With ``choice="auto"``:

    * CUDA from sm_80 (A100, H100, H200): bf16 autocast, no scaler (bf16 has fp32's exponent range);
    * CUDA below sm_80 (T4, V100): fp16 autocast + GradScaler. ``torch.cuda.is_bf16_supported()`` says True
      on a T4 too (it counts emulation), but bf16 convolutions have no tensor-core path there: slow;
    * a CPU with native bf16: bf16; any other CPU (or MPS): fp32, since emulated bf16 is slower than fp32.

    ``"fp32"``, ``"bf16"`` and ``"fp16"`` are taken as asked on any device; fp16 always with a GradScaler
    (``torch.amp.GradScaler(device_type)``, which works on CPUs too), since its gradients underflow without one.
    """
    if choice not in PRECISIONS:
        raise CourseError(f"unknown precision {choice!r}: use auto, fp32, bf16 or fp16")
    if choice == "fp32":
        return Precision(None, False, "fp32 as asked")
    if choice == "bf16":
        return Precision(torch.bfloat16, False, "bf16 autocast as asked")
    if choice == "fp16":
        return Precision(torch.float16, True, "fp16 autocast + GradScaler as asked")
    if device_type == "cuda":
        if capability is None:
            raise CourseError("choose_precision needs the GPU's compute capability for device 'cuda'")
        sm = f"sm_{capability[0]}{capability[1]}"
        if tuple(capability) >= BF16_CAPABILITY:
            return Precision(torch.bfloat16, False, f"bf16 autocast: {sm} has bf16 tensor cores")
        return Precision(torch.float16, True, f"fp16 autocast + GradScaler: {sm} has no bf16 tensor cores")
    if device_type == "cpu" and cpu_native_bf16:
        return Precision(torch.bfloat16, False, "bf16 autocast: this CPU computes bf16 natively (AVX512-BF16/AMX)")
    return Precision(None, False, f"fp32: this {device_type.upper()} has no native bf16 (emulated bf16 is slower)")


def cuda_capability(device: torch.device | str | None = None) -> tuple[int, int]:
    """The compute capability of a CUDA device, e.g. ``(7, 5)`` on a T4 (what :func:`choose_precision` reads)."""
    return tuple(torch.cuda.get_device_capability(device))


@lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively: AVX512-BF16 or AMX tiles (what :func:`choose_precision` reads)."""
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return bool(native or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def project_root() -> Path:
    """The checkout holding this package, else the current folder (e.g. a pip install in Colab)."""
    env = os.environ.get("COURSE_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir():
        return here
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "notebooks").is_dir() and (folder / "pyproject.toml").exists():
            return folder
    return Path.cwd()


_FIELDS = {f.name for f in fields(Config)}


def _normalise_encoders(value) -> tuple[str, ...]:
    if not isinstance(value, (str, list, tuple)):
        raise CourseError(f"encoder must be a name, a comma list or 'all', e.g. encoder=N1: got {value!r}")
    if isinstance(value, str):
        value = ENCODER_NAMES if value.lower() in ("all", "both") else [v.strip() for v in value.split(",")]
    out = []
    for name in value:
        match = [e for e in ENCODER_NAMES if e.lower().replace("-", "") == str(name).lower().replace("-", "")]
        if not match:
            raise CourseError(f"unknown encoder {name!r}: use one of {', '.join(ENCODER_NAMES)} (or 'all')")
        out.append(match[0])
    return tuple(out)


_LIST_EXAMPLES = {"projector": "(1024, 1024, 1024)", "crop_scale": "(0.2, 1.0)", "loss_weights": "(25.0, 25.0, 1.0)",
                  "label_fractions": "(0.01, 0.1)", "methods": "(vicreg, simclr)", "epochs_study": "(20, 30, 40)"}


def _as_tuple(key: str, value) -> tuple:
    """A list setting, given as a list, a tuple or its text (``"(0.2, 1.0)"``, e.g. from a command line)."""
    given = value
    if isinstance(value, str):
        import ast

        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = [v.strip() for v in value.split(",")] if key == "methods" else None
        value = (value,) if isinstance(value, str) else value
    if not isinstance(value, (list, tuple)):
        raise CourseError(f"{key} must be a list of values, e.g. {key}={_LIST_EXAMPLES.get(key, '(0.2, 1.0)')}: "
                          f"got {given!r}")
    return tuple(value)


def resolve(preset: str | None = None, **overrides) -> Config:
    """The preset (else ``$COURSE_PRESET``, else ``"cpu"``) with the non-None ``overrides`` applied.

    ``encoder`` is accepted as an alias of ``encoders`` (one name, a comma list or ``"all"``).
    """
    name = preset or os.environ.get("COURSE_PRESET") or "cpu"
    if name not in PRESETS:
        raise CourseError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "encoder" in overrides:
        overrides["encoders"] = overrides.pop("encoder")
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise CourseError(
            f"unknown setting(s) {', '.join(sorted(unknown))}: see course_lib.config.Config for the names"
        )
    values.update(overrides)
    if "dataset_b" in values and str(values["dataset_b"]).lower() in ("", "none"):  # "none" switches B off
        values["dataset_b"] = None
    values["encoders"] = _normalise_encoders(values.get("encoders", DEFAULT_ENCODERS))
    for key in ("projector", "crop_scale", "loss_weights", "label_fractions", "methods", "epochs_study"):
        if key in values:
            values[key] = _as_tuple(key, values[key])
    overrides_by_encoder = values.get("encoder_overrides") or {}
    if not isinstance(overrides_by_encoder, dict):
        raise CourseError(f"encoder_overrides must be a dict like {{'ResNet-18': {{'pretrain_epochs': 2}}}}: "
                          f"got {overrides_by_encoder!r}")
    if not all(isinstance(v, dict) for v in overrides_by_encoder.values()):
        raise CourseError(f"encoder_overrides must map encoder names to dicts of settings, e.g. "
                          f"{{'ResNet-18': {{'pretrain_epochs': 2}}}}: got {overrides_by_encoder!r}")
    values["encoder_overrides"] = {_normalise_encoders([k])[0]: dict(v) for k, v in overrides_by_encoder.items()}
    for enc, changes in values["encoder_overrides"].items():
        bad = (set(changes) - _FIELDS) | (set(changes) & {"preset", "encoders", "encoder_overrides"})
        if bad:
            raise CourseError(f"encoder_overrides[{enc!r}] sets {', '.join(sorted(bad))}: only per-run settings "
                              "such as pretrain_epochs or train_images can differ per encoder")
        for key in ("projector", "crop_scale", "loss_weights", "label_fractions", "methods", "epochs_study"):
            if key in changes:
                changes[key] = _as_tuple(key, changes[key])
    if "comparison_encoder" in values:
        values["comparison_encoder"] = _normalise_encoders([values["comparison_encoder"]])[0]
    cfg = Config(preset=name, **values)
    _check(cfg)
    return cfg


#: The datasets course_lib can download: with no data_root they live in ``data/`` under the project.
DOWNLOADABLE = ("cifar10", "tiny-imagenet")


def parse_spec(spec: str, data_root: str | Path | None, default: bool = True) -> tuple[str, Path | None]:
    """Split a dataset spec ``"name"`` or ``"name:path"`` into its name and root folder: the spec's own path, else
    ``data_root``, else (``default``) ``data/`` in the project for a downloadable dataset (:data:`DOWNLOADABLE`);
    None for the embedded digits and for an image folder nobody named. The one place a dataset's folder is decided.

    Example:
        >>> parse_spec("cifar10:/x", "/y"), parse_spec("tiny-imagenet", "/y"), parse_spec("digits-a", None)
        (('cifar10', PosixPath('/x')), ('tiny-imagenet', PosixPath('/y')), ('digits-a', None))
    """
    name, _, path = spec.partition(":")
    name = name.strip().lower()
    if name not in DATASET_NAMES:
        raise CourseError(f"unknown dataset {spec!r}: use one of {', '.join(DATASET_NAMES)}")
    root = path or data_root
    if root:
        return name, Path(root).expanduser()
    return name, (project_root() / "data" if default and name in DOWNLOADABLE else None)


# The kind and range of every number, flag and list: what _check enforces before any comparison, so that a
# wrong type (pretrain_epochs=abc, batch_size=12.5, pretrain_lr=nan) is one line naming the fix, never a traceback.
# Whole numbers: name -> smallest value (None allowed where the field's default type says so).
_WHOLE = {
    "seed": 0, "batch_size": 1, "image_size": 1, "pretrain_epochs": 1, "pretrain_warmup_epochs": 0,
    "supervised_epochs": 1, "probe_epochs": 1, "finetune_steps": 1, "tsne_points": 1, "train_images": 10,
    "monitor_every": 0, "knn_k": 1, "comparison_epochs": 1, "comparison_images": 10, "collapse_epochs": 1,
    "wmse_hidden": 1, "wmse_dim": 1, "wmse_w_size": 1, "moco_queue": 1,
}
# Finite real numbers: name -> (lowest, whether the lowest itself is allowed, highest or None, allowed)
_REAL = {
    "pretrain_lr": (0.0, False, None, True), "pretrain_weight_decay": (0.0, True, None, True),
    "supervised_lr": (0.0, False, None, True), "probe_lr": (0.0, False, None, True),
    "finetune_lr": (0.0, False, None, True), "barlow_lambda": (0.0, False, None, True),
    "simclr_temperature": (0.0, False, None, True), "moco_temperature": (0.0, False, None, True),
    "moco_momentum": (0.0, True, 1.0, False), "checkpoint_every_s": (0.0, True, None, True),
}
_FLAGS = ("download", "compile", "deterministic")
_NULLABLE = ("image_size", "train_images", "comparison_epochs", "comparison_images", "barlow_lambda")


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _example(key: str, value=None):
    """A valid value of ``key`` for a message: ``value`` rounded when it is a whole float, else the default."""
    if key in _WHOLE and isinstance(value, float) and math.isfinite(value) and value == int(value) \
            and value >= _WHOLE[key]:
        return int(value)
    default = next(f.default for f in fields(Config) if f.name == key)
    return {"image_size": 32, "train_images": 1000, "comparison_epochs": 3, "comparison_images": 1000,
            "barlow_lambda": 0.005}.get(key, default)


def _check_types(cfg: Config) -> None:
    """Every setting of the right kind and range: whole numbers, finite numbers, flags, strings, lists."""
    for key, least in _WHOLE.items():
        value = getattr(cfg, key)
        if value is None and key in _NULLABLE:
            continue
        if not _is_whole(value) or value < least:
            raise CourseError(f"{key} must be a whole number >= {least}"
                              + (" (or None)" if key in _NULLABLE else "")
                              + f", got {value!r}: e.g. {key}={_example(key, value)}")
    for key, (low, low_ok, high, high_ok) in _REAL.items():
        value = getattr(cfg, key)
        if value is None and key in _NULLABLE:
            continue
        lower = ">=" if low_ok else ">"
        span = f"{lower} {low:g}" + (f" and {'<=' if high_ok else '<'} {high:g}" if high is not None else "")
        if not _is_real(value) or not (value >= low if low_ok else value > low) or \
                (high is not None and not (value <= high if high_ok else value < high)):
            raise CourseError(f"{key} must be a finite number {span}, got {value!r}: e.g. {key}={_example(key)}")
    for key in _FLAGS:
        if not isinstance(getattr(cfg, key), bool):
            raise CourseError(f"{key} must be True or False, got {getattr(cfg, key)!r}")
    for key in ("preset", "dataset_a", "device", "precision", "sync_batchnorm", "pretrain_schedule", "augmentation",
                "finetune_head", "studies_grid"):
        if not isinstance(getattr(cfg, key), str):
            raise CourseError(f"{key} must be a name (text), got {getattr(cfg, key)!r}")
    for key in ("dataset_b", "data_root", "out_dir", "runs_dir"):
        value = getattr(cfg, key)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise CourseError(f"{key} must be a name or a path (text) or None, got {value!r}")
    if cfg.channels_last not in ("auto", True, False, "true", "false", "on", "off"):
        raise CourseError(f"channels_last must be auto, True or False, got {cfg.channels_last!r}")
    if not all(_is_whole(w) and w >= 1 for w in cfg.projector):  # () = no projector (notebook 07's depth study)
        raise CourseError(f"projector must list whole layer widths >= 1, e.g. projector=(1024, 1024, 1024): "
                          f"got {cfg.projector!r}")
    scale = cfg.crop_scale
    if len(scale) != 2 or not all(_is_real(v) for v in scale) or not 0 < scale[0] <= scale[1] <= 1:
        raise CourseError(f"crop_scale must be two fractions of the image's area (smallest, largest) with "
                          f"0 < smallest <= largest <= 1, e.g. crop_scale=(0.2, 1.0): got {scale!r}")
    if len(cfg.loss_weights) != 3 or not all(_is_real(v) and v >= 0 for v in cfg.loss_weights):
        raise CourseError(f"loss_weights must be three finite weights >= 0 (invariance, variance, covariance), "
                          f"e.g. loss_weights=(25.0, 25.0, 1.0): got {cfg.loss_weights!r}")
    if not all(_is_real(f) and 0 < f <= 1 for f in cfg.label_fractions):
        raise CourseError(f"label_fractions must be fractions in (0, 1], e.g. label_fractions=(0.01, 0.1): "
                          f"got {cfg.label_fractions!r}")
    if cfg.epochs_study and not all(_is_whole(e) and e >= 1 for e in cfg.epochs_study):
        raise CourseError(f"epochs_study must list whole epoch counts >= 1, e.g. (20, 30, 40): got {cfg.epochs_study}")
    if not all(isinstance(m, str) for m in cfg.methods):
        raise CourseError(f"methods must list names, e.g. methods=('vicreg', 'simclr'): got {cfg.methods!r}")


def _check(cfg: Config) -> None:
    """Every setting valid, once, when a run starts: one line naming the fix for the first that is not."""
    _check_types(cfg)
    for spec in (cfg.dataset_a, cfg.dataset_b):
        if spec is not None:
            _, root = parse_spec(spec, cfg.data_root, default=False)  # a folder the user named
            if root is not None and root.exists() and not root.is_dir():
                raise CourseError(
                    f"data_root {str(root)!r} is a file, not a folder: set data_root to the folder that holds "
                    "the datasets (e.g. cifar10/ and tiny-imagenet-200/)"
                )
            if root is not None and not root.exists() and not cfg.download:
                raise CourseError(
                    f"data folder {str(root)!r} does not exist: create it and put the dataset there, "
                    "or set data_root to the folder that holds it"
                )
    if cfg.precision not in PRECISIONS:
        raise CourseError(f"unknown precision {cfg.precision!r}: use auto, fp32, bf16 or fp16")
    if cfg.device not in ("auto", "cpu") and not cfg.device.startswith(("cuda", "mps")):
        raise CourseError(f"unknown device {cfg.device!r}: use auto, cpu or cuda")
    if cfg.torch_device.type == "cuda" and not torch.cuda.is_available():
        raise CourseError("device 'cuda' asked for but no CUDA GPU is visible: use device='auto' or 'cpu'")
    if cfg.studies_grid not in ("full", "quick"):
        raise CourseError(f"unknown studies_grid {cfg.studies_grid!r}: use full or quick")
    if cfg.finetune_head not in FINETUNE_HEADS:
        raise CourseError(f"unknown finetune_head {cfg.finetune_head!r}: use {' or '.join(FINETUNE_HEADS)}")
    if cfg.pretrain_schedule not in ("constant", "cosine"):
        raise CourseError(f"unknown pretrain_schedule {cfg.pretrain_schedule!r}: use constant or cosine")
    if cfg.epochs_study and cfg.pretrain_schedule != "constant":
        raise CourseError("epochs_study reads shorter runs off one long run, which holds only at a constant learning "
                          "rate: set pretrain_schedule='constant' or epochs_study=()")
    unknown = [m for m in cfg.methods if m not in METHOD_NAMES]
    if unknown:
        raise CourseError(f"unknown method(s) {', '.join(unknown)} in methods: use some of {', '.join(METHOD_NAMES)}")
    if cfg.sync_batchnorm not in SYNC_BATCHNORM:
        raise CourseError(f"unknown sync_batchnorm {cfg.sync_batchnorm!r}: use one of {', '.join(SYNC_BATCHNORM)}")
    for name, changes in cfg.encoder_overrides.items():  # each encoder's own budget is checked the same way
        if changes:
            try:
                _check(replace(cfg, encoder_overrides={}, **changes))
            except CourseError as err:
                raise CourseError(f"encoder_overrides[{name!r}]: {err}") from None


def parse_param(text: str) -> tuple[str, object]:
    """``key=value`` with a Python literal value (numbers, lists, None, True) or else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CourseError(f"bad parameter {text!r}: write it as key=value, e.g. -p pretrain_epochs=10")
    import ast

    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip(), value


def with_overrides(cfg: Config, **changes) -> Config:
    """A copy of ``cfg`` with some settings changed (and checked)."""
    out = replace(cfg, **changes)
    _check(out)
    return out
