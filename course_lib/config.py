"""Presets: every setting of a run in one place, read when a run starts.

Introduced in notebook 01. A notebook's ``parameters`` cell names the few knobs a
reader turns (``preset``, ``data_root``, ``dataset_a``, ``dataset_b``, ``encoder``,
``pretrain_epochs``, ``probe_epochs``, ``batch_size``, ``seed``, ``device``); each
left at ``None`` takes the preset's value. :func:`resolve` merges the two and
checks the result, so a typo fails at once with one line that names the fix.

A :class:`Config` holds a few parts, one per concern: ``cfg.data``, ``cfg.model``, ``cfg.pretrain`` (VICReg),
``cfg.supervised``, ``cfg.evaluation``, ``cfg.comparison`` (notebook 05's methods), ``cfg.hardware`` and
``cfg.paths``, beside ``preset``, ``seed``, ``batch_size``, ``studies_grid`` and ``encoder_overrides``. Each
setting is declared once, in its part, with :func:`setting`: its default, its kind and range (:class:`Whole`,
:class:`Real`, :class:`Flag`, :class:`Text`, :class:`Items` ...), a line of documentation and its flat name. The
flat names (``pretrain_epochs`` for ``cfg.pretrain.epochs``) are the public ones: presets, :func:`resolve`,
``-p key=value`` (``-p pretrain.epochs=10`` works too), ``encoder_overrides`` and :func:`with_overrides` take
them, and ``cfg.pretrain_epochs`` reads one. :data:`SETTINGS` maps each flat name to its part and field; the
checks and their messages are generated from the declarations.
"""
from __future__ import annotations

import ast
import copy
import math
import numbers
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

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
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FINETUNE_HEADS = ("views", "clean")  # Config.evaluation.finetune_head


# ------------------------------------------------------------------ the kinds of a setting
# What _check_types enforces before any comparison, so that a wrong type (pretrain_epochs=abc, batch_size=12.5,
# pretrain_lr=nan) is one line naming the fix, never a traceback. ``coerce`` turns what a command line or a
# notebook gives (text, a list) into the setting's type; ``check`` raises a CourseError naming the fix.
def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _either(names) -> str:
    """``a, b or c``."""
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


class Kind:
    """The kind and range of a setting (a base class)."""

    def coerce(self, key: str, value):
        return value

    def check(self, key: str, value, default) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Whole(Kind):
    """A whole number >= ``least``; ``nullable``: or None. ``example``: the fix a message names (else the default)."""

    least: int
    nullable: bool = False
    example: int | None = None

    def check(self, key, value, default):
        if (value is None and self.nullable) or (_is_whole(value) and value >= self.least):
            return
        if isinstance(value, float) and math.isfinite(value) and value == int(value) and value >= self.least:
            fix = int(value)  # 64.0: the whole number meant
        else:
            fix = default if self.example is None else self.example
        raise CourseError(f"{key} must be a whole number >= {self.least}" + (" (or None)" if self.nullable else "")
                          + f", got {value!r}: e.g. {key}={fix}")


@dataclass(frozen=True)
class Real(Kind):
    """A finite number above ``gt`` or from ``ge``, and (if given) below ``lt`` or up to ``le``; ``nullable``: or
    None. ``example``: the fix a message names (else the default)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    nullable: bool = False
    example: float | None = None

    def check(self, key, value, default):
        if value is None and self.nullable:
            return
        low, high = (self.gt if self.gt is not None else self.ge), (self.lt if self.lt is not None else self.le)
        ok = _is_real(value) and (value > low if self.gt is not None else value >= low) and \
            (high is None or (value < high if self.lt is not None else value <= high))
        if not ok:
            span = f"{'>' if self.gt is not None else '>='} {low:g}" + \
                (f" and {'<' if self.lt is not None else '<='} {high:g}" if high is not None else "")
            raise CourseError(f"{key} must be a finite number {span}, got {value!r}: "
                              f"e.g. {key}={default if self.example is None else self.example}")


@dataclass(frozen=True)
class Flag(Kind):
    """True or False (also as the text "true" or "false", e.g. ``-p shipped_encoders=false``)."""

    def coerce(self, key, value):
        return {"true": True, "false": False}.get(value.lower(), value) if isinstance(value, str) else value

    def check(self, key, value, default):
        if not isinstance(value, bool):
            raise CourseError(f"{key} must be True or False, got {value!r}")


@dataclass(frozen=True)
class Switch(Kind):
    """``"auto"``, or on/off: True, False, "true", "false", "on", "off"."""

    def check(self, key, value, default):
        if value not in ("auto", True, False, "true", "false", "on", "off"):
            raise CourseError(f"{key} must be auto, True or False, got {value!r}")


@dataclass(frozen=True)
class Text(Kind):
    """A name (text); ``choices``: one of these. ``path``: a name or a path (text), or None; ``off``: "none" (or
    "") means None."""

    choices: tuple[str, ...] = ()
    path: bool = False
    off: bool = False

    def coerce(self, key, value):
        return None if self.off and str(value).lower() in ("", "none") else value

    def check(self, key, value, default):
        if self.path:
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise CourseError(f"{key} must be a name or a path (text) or None, got {value!r}")
        elif not isinstance(value, str):
            raise CourseError(f"{key} must be a name (text), got {value!r}")
        if self.choices and value not in self.choices:
            raise CourseError(f"unknown {key} {value!r}: use {_either(self.choices)}")


@dataclass(frozen=True)
class Items(Kind):
    """A list (kept as a tuple) that must ``rule`` (``ok(values)``), e.g. ``example``; given as a list, a tuple or
    its text (``"(0.2, 1.0)"``, e.g. from a command line); ``split``: names, also as text split at commas."""

    rule: str
    example: str
    ok: Callable[[tuple], bool]
    split: bool = False

    def coerce(self, key, value):
        given = value
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                value = [v.strip() for v in value.split(",")] if self.split else None
            value = (value,) if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)):
            raise CourseError(f"{key} must be a list of values, e.g. {key}={self.example}: got {given!r}")
        return tuple(value)

    def check(self, key, value, default):
        if not isinstance(value, (list, tuple)) or not self.ok(value):
            raise CourseError(f"{key} must {self.rule}, e.g. {key}={self.example}: got {value!r}")


@dataclass(frozen=True)
class Encoders(Kind):
    """Encoder names (:data:`ENCODER_NAMES`, any case): one, a comma list or "all"; ``one``: a single name."""

    one: bool = False

    def coerce(self, key, value):
        return _normalise_encoders([value])[0] if self.one else _normalise_encoders(value)

    def check(self, key, value, default):
        self.coerce(key, value)


@dataclass(frozen=True)
class PerEncoder(Kind):
    """Settings per encoder name: ``{"ResNet-18": {"pretrain_epochs": 2}}``, checked like the run's own."""

    def coerce(self, key, value):
        return self.check(key, value or {}, None)

    def check(self, key, value, default) -> dict:
        if not isinstance(value, dict):
            raise CourseError(f"{key} must be a dict like {{'ResNet-18': {{'pretrain_epochs': 2}}}}: got {value!r}")
        if not all(isinstance(v, dict) for v in value.values()):
            raise CourseError(f"{key} must map encoder names to dicts of settings, e.g. "
                              f"{{'ResNet-18': {{'pretrain_epochs': 2}}}}: got {value!r}")
        out = {}
        for enc, changes in value.items():
            enc = _normalise_encoders([enc])[0]
            changes = _flat_keys(changes)
            bad = (set(changes) - SETTINGS.keys()) | (set(changes) & {"preset", "encoders", key})
            if bad:
                raise CourseError(f"{key}[{enc!r}] sets {', '.join(sorted(bad))}: only per-run settings "
                                  "such as pretrain_epochs or train_images can differ per encoder")
            out[enc] = _coerced(changes)
        return out


def setting(default, kind: Kind, doc: str, flat: str | None = None):
    """A field of a settings part: its ``default``, ``kind`` and range, one line of ``doc`` and its ``flat`` name
    (the public one: presets, ``-p``, ``resolve``), when it differs from the field's own."""
    meta = {"kind": kind, "doc": doc, "flat": flat}
    if isinstance(default, dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def part(cls):
    """A field of :class:`Config` holding one part of the settings (a frozen dataclass of :func:`setting` fields)."""
    return field(default_factory=cls, metadata={"part": cls})


# The rules of the list settings.
def _whole_list(values) -> bool:
    return all(_is_whole(v) and v >= 1 for v in values)


#: The files a saved figure can get (course_lib.plots.save): PNG for the notebooks and the website, the vector
#: copies for people exporting figures.
FIGURE_FORMATS = ("png", "pdf", "svg")


def _figure_formats(values) -> bool:
    return (len(values) >= 1 and values[0] == "png" and set(values) <= set(FIGURE_FORMATS)
            and len(set(values)) == len(values))


def _crop_range(v) -> bool:
    return len(v) == 2 and all(map(_is_real, v)) and 0 < v[0] <= v[1] <= 1


def _three_weights(v) -> bool:
    return len(v) == 3 and all(_is_real(w) and w >= 0 for w in v)


def _fractions(v) -> bool:
    return all(_is_real(f) and 0 < f <= 1 for f in v)


def _names(v) -> bool:
    return all(isinstance(m, str) for m in v)


# ------------------------------------------------------------------ the settings, part by part
@dataclass(frozen=True)
class DataSettings:
    """The two sets and their images (:mod:`course_lib.data`)."""

    dataset_a: str = setting("digits-scattered-a", Text(), 'pretraining + set A evaluation ("name" or "name:path")')
    dataset_b: str | None = setting("digits-scattered-b", Text(path=True, off=True),
                                    'transfer set, labels disjoint from A; "none" skips B')
    root: str | None = setting(None, Text(path=True), "folder holding the datasets (see course_lib.data)",
                               flat="data_root")
    download: bool = setting(False, Flag(), "fetch missing datasets (needs network)")
    image_size: int | None = setting(None, Whole(1, nullable=True, example=32),
                                     "side of the network's input, pixels; None: set A's own (B is resized to it)")
    train_images: int | None = setting(None, Whole(10, nullable=True, example=1000),
                                       "class-balanced subset of each set's training split used for training "
                                       "(test splits stay whole); None = all")


@dataclass(frozen=True)
class ModelSettings:
    """The encoders a study trains and the projector on top of them."""

    encoders: tuple[str, ...] = setting(DEFAULT_ENCODERS, Encoders(), "the encoders of the study (models.ENCODERS)")
    projector: tuple[int, ...] = setting(
        (1024, 1024, 1024), Items("list whole layer widths >= 1", "(1024, 1024, 1024)", _whole_list),
        "the projector's layer widths; () = no projector (notebook 07's depth study)")


@dataclass(frozen=True)
class PretrainSettings:
    """VICReg pretraining (Adam, :func:`course_lib.train.pretrain`); its augmentation is every method's."""

    epochs: int = setting(30, Whole(1), "epochs of the VICReg run the tables use", flat="pretrain_epochs")
    lr: float = setting(1e-3, Real(gt=0.0), "Adam's learning rate", flat="pretrain_lr")
    weight_decay: float = setting(1e-6, Real(ge=0.0), "Adam's weight decay", flat="pretrain_weight_decay")
    schedule: str = setting("constant", Text(("constant", "cosine")),
                            '"constant" (the coursework) or "cosine" (linear warm-up, then cosine to 0)',
                            flat="pretrain_schedule")
    warmup_epochs: int = setting(10, Whole(0), 'warm-up of the "cosine" schedule', flat="pretrain_warmup_epochs")
    epochs_study: tuple[int, ...] = setting(
        (), Items("list whole epoch counts >= 1", "(20, 30, 40)", _whole_list),
        "epoch counts read off one VICReg run (constant lr only): it trains to max(pretrain_epochs, *epochs_study) "
        "epochs and keeps the encoder after each count; the tables use the one after pretrain_epochs")
    augmentation: str = setting("crop-flip", Text(),
                                "\"crop-flip\" (the coursework), \"ssl\" (VICReg's ImageNet views) or \"ssl-cifar\"")
    crop_scale: tuple[float, float] = setting(
        (0.08, 1.0), Items("be two fractions of the image's area (smallest, largest) with 0 < smallest <= largest "
                           "<= 1", "(0.2, 1.0)", _crop_range), "the area a random resized crop keeps")
    loss_weights: tuple[float, float, float] = setting(
        (25.0, 25.0, 1.0), Items("be three finite weights >= 0 (invariance, variance, covariance)",
                                 "(25.0, 25.0, 1.0)", _three_weights),
        "VICReg's invariance, variance and covariance weights")


@dataclass(frozen=True)
class SupervisedSettings:
    """The supervised baseline (SGD, momentum 0.9, cosine decay, cross-entropy)."""

    epochs: int = setting(30, Whole(1), "epochs of the supervised baseline", flat="supervised_epochs")
    lr: float = setting(0.05, Real(gt=0.0), "SGD's first learning rate", flat="supervised_lr")


@dataclass(frozen=True)
class EvaluationSettings:
    """The protocols of a trained encoder (:mod:`course_lib.evaluate`) and the diagnostics during pretraining
    (:mod:`course_lib.diagnostics`, every method)."""

    probe_epochs: int = setting(20, Whole(1), "epochs of the linear probe on frozen embeddings (SGD)")
    probe_lr: float = setting(0.1, Real(gt=0.0), "the linear probe's learning rate")
    finetune_steps: int = setting(300, Whole(1), "optimizer steps of semi-supervised fine-tuning, however few the "
                                  "labels")
    finetune_lr: float = setting(0.01, Real(gt=0.0), "fine-tuning's SGD (momentum 0.9, cosine decay per step)")
    # "views": a probe fitted on the augmented crops fine-tuning feeds, BatchNorm in training mode (what its first
    # step sees). On the digits' validation split neither was ahead beyond noise (README): course_lib.evaluate.lpft_head
    finetune_head: str = setting("clean", Text(FINETUNE_HEADS), "LP-FT's starting head: \"clean\" = the same-label "
                                 "probe itself (clean images, eval mode: Kumar et al.'s LP-FT), or \"views\"")
    label_fractions: tuple[float, ...] = setting(
        (0.01, 0.1), Items("be fractions in (0, 1]", "(0.01, 0.1)", _fractions),
        "the fractions of the labels of the semi-supervised protocols; () = none")
    tsne_points: int = setting(2000, Whole(1), "test images per t-SNE panel")
    monitor_every: int = setting(1, Whole(0), "embed A's train/test splits every this many epochs of pretraining "
                                 "(eval mode, no grad); 0 = off")
    knn_k: int = setting(20, Whole(1), "neighbours of the kNN monitor and protocol (cosine similarity, weighted "
                         "vote; with few labels, at most a class's labelled images)")


@dataclass(frozen=True)
class ComparisonSettings:
    """The other SSL methods (:mod:`course_lib.methods`; notebooks 00, 02 and 05): which, on what, and their
    hyper-parameters."""

    methods: tuple[str, ...] = setting(SURVEYED_METHODS, Items("list names", "('vicreg', 'simclr')", _names,
                                                               split=True), "the methods notebook 05 compares")
    encoder: str = setting("N1", Encoders(one=True), "the one encoder every method of notebook 05 pretrains",
                           flat="comparison_encoder")
    epochs: int | None = setting(None, Whole(1, nullable=True, example=3),
                                 "pretraining epochs of each method in 05; None = pretrain_epochs",
                                 flat="comparison_epochs")
    images: int | None = setting(None, Whole(10, nullable=True, example=1000), "set A training images (class-balanced) "
                                 "of 05's methods and 02's collapse runs", flat="comparison_images")
    collapse_epochs: int = setting(10, Whole(1), "epochs of each run of notebook 02's collapse demonstration (N1, A)")
    barlow_lambda: float | None = setting(None, Real(gt=0.0, nullable=True, example=0.005),
                                          "off-diagonal weight; None = 1 / (projector output width)")
    wmse_hidden: int = setting(1024, Whole(1), "W-MSE head: Linear(hidden) + BN + ReLU + Linear(dim), the paper's")
    wmse_dim: int = setting(64, Whole(1), "W-MSE embedding width; must be below min(batch_size, wmse_w_size)")
    wmse_w_size: int = setting(128, Whole(1), "W-MSE whitening sub-batch, rows (the paper: 2 x wmse_dim)")
    simclr_temperature: float = setting(0.5, Real(gt=0.0), "NT-Xent tau (the paper's CIFAR-10 value)")
    moco_queue: int = setting(4096, Whole(1), "MoCo negatives per view; below the training set's size minus a batch")
    moco_momentum: float = setting(0.99, Real(ge=0.0, lt=1.0),
                                   "key encoder EMA: theta_k <- m theta_k + (1 - m) theta_q")
    moco_temperature: float = setting(0.2, Real(gt=0.0), "InfoNCE tau (MoCo v2)")


@dataclass(frozen=True)
class HardwareSettings:
    """Where and how a network runs (:mod:`course_lib.runtime`, :mod:`course_lib.distributed`)."""

    device: str = setting("auto", Text(), '"auto" = cuda if available, else cpu')
    precision: str = setting("auto", Text(PRECISIONS), 'the autocast dtype: "auto" (choose_precision), "fp32", "bf16" '
                             'or "fp16"')
    deterministic: bool = setting(False, Flag(), "True: torch.use_deterministic_algorithms, no TF32, no cuDNN "
                                  "autotuning (slower)")
    channels_last: str = setting("auto", Switch(), '"auto" = on CUDA and on a bf16 CPU; on an fp32 CPU for N1 only '
                                 "(runtime.memory_format)")
    compile: bool = setting(False, Flag(), "torch.compile the encoder (GPU runs)")
    sync_batchnorm: str = setting("projector", Text(SYNC_BATCHNORM), "under torchrun: BatchNorm statistics over the "
                                  'global batch in "none", the "projector" or "all"')


@dataclass(frozen=True)
class PathSettings:
    """Where things go, and what a run may load instead of training."""

    out_dir: str | None = setting(None, Text(path=True), "None: build/<preset> under the project root")
    runs_dir: str | None = setting(None, Text(path=True), "checkpoints; None: runs/ under the project root")
    shipped_encoders: bool = setting(True, Flag(), "load a shipped encoder (encoders/, course_lib.shipped) for the "
                                     "main VICReg run and the supervised baseline when runs/ has no run of its own "
                                     "with their settings; False: train your own")
    checkpoint_every_s: float = setting(0.0, Real(ge=0.0), "save after an epoch if this many seconds passed since "
                                        "the last save")
    checkpoint_within_epoch_s: float = setting(
        600.0, Real(ge=0.0), "also save inside an epoch once this many seconds passed since the last save (N2 on a "
        "CPU: 18-38 min per epoch), so that a stopped run loses at most this much; 0: after every step")
    figure_formats: tuple[str, ...] = setting(
        FIGURE_FORMATS, Items("list png first, then any of pdf, svg", "png,pdf", _figure_formats, split=True),
        "the files each saved figure gets beside its PNG (the test preset: the PNG alone, a third of the time)")


@dataclass(frozen=True)
class Config:
    """All settings of one study, in parts; ``cfg.pretrain_epochs`` reads ``cfg.pretrain.epochs`` (:data:`SETTINGS`)."""

    preset: str = setting(MISSING, Text(), "the preset's name (PRESETS)")
    seed: int = setting(0, Whole(0), "the seed of every random stream")
    batch_size: int = setting(256, Whole(1), "images per step (pairs for SSL)")
    studies_grid: str = setting("full", Text(("full", "quick")), "notebook 07's studies (course_lib.studies): "
                                '"full" = every point, 3 seeds; "quick" = the points marked quick, 2 seeds, '
                                "epochs 1/2/4")
    encoder_overrides: dict = setting({}, PerEncoder(), "a smaller, stated budget per encoder (the report labels its "
                                      'rows), e.g. {"ResNet-18": {"supervised_epochs": 1}}: cfg.for_encoder')
    data: DataSettings = part(DataSettings)
    model: ModelSettings = part(ModelSettings)
    pretrain: PretrainSettings = part(PretrainSettings)
    supervised: SupervisedSettings = part(SupervisedSettings)
    evaluation: EvaluationSettings = part(EvaluationSettings)
    comparison: ComparisonSettings = part(ComparisonSettings)
    hardware: HardwareSettings = part(HardwareSettings)
    paths: PathSettings = part(PathSettings)

    def __getattr__(self, name: str):
        """A setting by its flat name, e.g. ``cfg.pretrain_epochs`` = ``cfg.pretrain.epochs``."""
        where = SETTINGS.get(name)
        if where is None or where.part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, where.part), where.field)

    @classmethod
    def from_flat(cls, preset: str, **settings) -> "Config":
        """A config from flat setting names (the rest default), unchecked: :func:`resolve` checks."""
        return cls(preset).replace(**settings)

    def replace(self, **changes) -> "Config":
        """A copy with some settings changed, by flat (or dotted) name, unchecked: :func:`with_overrides` checks."""
        changes = _flat_keys(changes)
        unknown = set(changes) - SETTINGS.keys()
        if unknown:
            raise CourseError(f"unknown setting(s) {', '.join(sorted(unknown))}: see course_lib.config.Config "
                              "for the names")
        top, parts = {}, {}
        for name, value in changes.items():
            where = SETTINGS[name]
            if where.part is None:
                top[where.field] = value
            else:
                parts.setdefault(where.part, {})[where.field] = value
        return replace(self, **top, **{p: replace(getattr(self, p), **c) for p, c in parts.items()})

    # ------------------------------------------------------------------ helpers
    @property
    def torch_device(self) -> torch.device:
        if self.hardware.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.hardware.device)

    @property
    def precision_policy(self) -> "Precision":
        """What this run computes in on its device: :func:`choose_precision` of the hardware and ``precision``."""
        dev = self.torch_device
        return choose_precision(dev.type, cuda_capability(dev) if dev.type == "cuda" else None,
                                cpu_has_native_bf16() if dev.type == "cpu" else False, self.hardware.precision)

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
        return max((self.pretrain.epochs, *self.pretrain.epochs_study))

    @property
    def report_folder(self) -> str:
        """Where ``make report`` puts this run's tables and figures, under ``report/`` and ``figures/``:
        the embedded digits' presets at the top, any other preset in a folder of its own name."""
        return "" if self.preset in DIGITS_PRESETS else self.preset

    @property
    def out_path(self) -> Path:
        return Path(self.paths.out_dir) if self.paths.out_dir else project_root() / "build" / self.preset

    @property
    def runs_path(self) -> Path:
        return Path(self.paths.runs_dir) if self.paths.runs_dir else project_root() / "runs"

    def to_dict(self) -> dict:
        """Every setting by its flat name (a copy)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in SETTINGS}

    def describe(self) -> str:
        """A few lines naming the settings a reader cares about (no paths, no device name)."""
        d, vicreg = self.data, self.pretrain
        return (
            f"preset {self.preset!r}: set A = {d.dataset_a}, set B = {d.dataset_b}, "
            f"encoders {', '.join(self.model.encoders)}, {f'{d.image_size} px' if d.image_size else 'native size'}\n"
            f"VICReg {vicreg.epochs} epochs (Adam, lr {vicreg.lr:g}, {vicreg.augmentation}), "
            f"supervised {self.supervised.epochs} epochs, linear probe {self.evaluation.probe_epochs} epochs, "
            f"fine-tuning {self.evaluation.finetune_steps} steps, batch {self.batch_size}, seed {self.seed}"
            + (f", {d.train_images:,} training images" if d.train_images else "")
            + "".join(f"\n{name} on a smaller budget: " + ", ".join(f"{k} {v}" for k, v in changes.items())
                      for name, changes in self.encoder_overrides.items() if name in self.model.encoders)
        )


@dataclass(frozen=True)
class Setting:
    """Where a flat name lives (``part`` None: on :class:`Config` itself), its kind, default and doc."""

    name: str
    part: str | None
    field: str
    kind: Kind
    default: object
    doc: str

    @property
    def dotted(self) -> str:
        return self.name if self.part is None else f"{self.part}.{self.field}"


def _declared() -> dict[str, Setting]:
    """Every setting of :class:`Config` by flat name, in declaration order: the one map between the two namings."""
    out = {}

    def add(f, part_name):
        name = f.metadata["flat"] or f.name
        default = f.default if f.default_factory is MISSING else f.default_factory()
        if name in out:
            raise TypeError(f"two settings are called {name!r}")
        out[name] = Setting(name, part_name, f.name, f.metadata["kind"], default, f.metadata["doc"])

    for f in fields(Config):
        if "part" in f.metadata:
            for g in fields(f.metadata["part"]):
                add(g, f.name)
        else:
            add(f, None)
    clash = {n for n, s in out.items() if s.part is not None} & (set(dir(Config)) | {f.name for f in fields(Config)})
    if clash:
        raise TypeError(f"setting(s) {', '.join(sorted(clash))} shadow an attribute of Config")
    return out


#: Every setting by its flat name (the public one): its part and field in :class:`Config`, its kind, default, doc.
SETTINGS: dict[str, Setting] = _declared()
_DOTTED = {s.dotted: s.name for s in SETTINGS.values() if s.part is not None}
_ALIASES = {"encoder": "encoders"}  # resolve's and -p's one name for one encoder, a comma list or "all"


def _flat_keys(values: dict) -> dict:
    """``values`` with dotted names (``pretrain.epochs``) written as flat ones (``pretrain_epochs``)."""
    return {_DOTTED.get(k, k): v for k, v in values.items()}


def _coerced(values: dict) -> dict:
    """``values`` (flat names) with each known setting in its type: lists as tuples, encoder names spelled right."""
    return {k: SETTINGS[k].kind.coerce(k, v) if k in SETTINGS else v for k, v in values.items()}


# Each preset lists only what differs from the Config defaults.
PRESETS: dict[str, dict] = {
    # Seconds: what `make test` and nbval run (the committed notebooks carry its outputs).
    "test": dict(
        batch_size=128, pretrain_epochs=4, supervised_epochs=4,
        probe_epochs=20, finetune_steps=20, projector=(256, 256, 256), tsne_points=300,
        crop_scale=(0.3, 1.0), checkpoint_every_s=0,  # a checkpoint per epoch: a stopped run keeps each one
        # notebooks 02 (collapse, live) and 05: every method 4 epochs (= pretrain_epochs, so 05 reuses 02's runs)
        # N1 alone: N2 runs the whole real protocol, on the real formats, in tests/test_real_path.py; two encoders go
        # through every notebook there and in make report. (At this budget, ~20 steps, N2's BatchNorm running
        # statistics lag so far behind its weights that with them it tests at chance, 23.0 %; evaluate_classifier
        # recomputes them, 65.9 %: benchmarks/bn_statistics.py.)
        collapse_epochs=4, moco_queue=256, studies_grid="quick", encoders=("N1",),
        figure_formats=("png",),  # the vector copies cost two more renderings of each figure: ~2 s each here
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
    # The coursework's own budget on 2 CPU cores (`make coursework DATA=...`, resumable): N1 and N2 (the
    # coursework's ResNet-18, max-pool kept) on all 50,000 CIFAR-10 training images, VICReg with its recipe
    # (RandomResizedCrop(32) + flip, 25/25/1, Adam at a constant lr, batch 256) kept at 20, 30 and 40 epochs (its
    # epochs study; the tables use 30, its choice), supervised 30 epochs, linear probe 20 epochs, fine-tuning
    # with 1 % and 10 % of A's and B's labels on a step budget, Tiny ImageNet's whole training split.
    # Meant to fit 5 h on a bf16 CPU, so N2's 40-epoch point is cut; measured, N2's part alone is ~11 h there
    # (VICReg 10.6-12 min per epoch, N1's ~1.5) and ~28 h on an AVX2-only CPU in fp32 (README).
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


def resolve(preset: str | None = None, **overrides) -> Config:
    """The preset (else ``$COURSE_PRESET``, else ``"cpu"``) with the non-None ``overrides`` applied.

    Settings go by their flat names (``pretrain_epochs``) or dotted ones (``pretrain.epochs``). ``encoder`` is
    accepted as an alias of ``encoders`` (one name, a comma list or ``"all"``).
    """
    name = preset or os.environ.get("COURSE_PRESET") or "cpu"
    if name not in PRESETS:
        raise CourseError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    overrides = _flat_keys({k: v for k, v in overrides.items() if v is not None})
    for alias, target in _ALIASES.items():
        if alias in overrides:
            overrides[target] = overrides.pop(alias)
    unknown = set(overrides) - SETTINGS.keys()
    if unknown:
        raise CourseError(
            f"unknown setting(s) {', '.join(sorted(unknown))}: see course_lib.config.Config for the names"
        )
    cfg = Config.from_flat(name, **_coerced({**PRESETS[name], **overrides}))
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


def _check_types(cfg: Config) -> None:
    """Every setting of its declared kind and range (:data:`SETTINGS`), in declaration order."""
    for name, s in SETTINGS.items():
        s.kind.check(name, getattr(cfg, name), s.default)


def _check(cfg: Config) -> None:
    """Every setting valid, once, when a run starts: one line naming the fix for the first that is not."""
    _check_types(cfg)
    data = cfg.data
    for spec in (data.dataset_a, data.dataset_b):
        if spec is not None:
            _, root = parse_spec(spec, data.root, default=False)  # a folder the user named
            if root is not None and root.exists() and not root.is_dir():
                raise CourseError(
                    f"data_root {str(root)!r} is a file, not a folder: set data_root to the folder that holds "
                    "the datasets (e.g. cifar10/ and tiny-imagenet-200/)"
                )
            if root is not None and not root.exists() and not data.download:
                raise CourseError(
                    f"data folder {str(root)!r} does not exist: create it and put the dataset there, "
                    "or set data_root to the folder that holds it"
                )
    device = cfg.hardware.device
    if device not in ("auto", "cpu") and not device.startswith(("cuda", "mps")):
        raise CourseError(f"unknown device {device!r}: use auto, cpu or cuda")
    if cfg.torch_device.type == "cuda" and not torch.cuda.is_available():
        raise CourseError("device 'cuda' asked for but no CUDA GPU is visible: use device='auto' or 'cpu'")
    if cfg.pretrain.epochs_study and cfg.pretrain.schedule != "constant":
        raise CourseError("epochs_study reads shorter runs off one long run, which holds only at a constant learning "
                          "rate: set pretrain_schedule='constant' or epochs_study=()")
    unknown = [m for m in cfg.comparison.methods if m not in METHOD_NAMES]
    if unknown:
        raise CourseError(f"unknown method(s) {', '.join(unknown)} in methods: use some of {', '.join(METHOD_NAMES)}")
    for name, changes in cfg.encoder_overrides.items():  # each encoder's own budget is checked the same way
        if changes:
            try:
                _check(cfg.replace(encoder_overrides={}, **changes))
            except CourseError as err:
                raise CourseError(f"encoder_overrides[{name!r}]: {err}") from None


def parse_param(text: str) -> tuple[str, object]:
    """``key=value`` with a Python literal value (numbers, lists, None, True) or else a string; a dotted key
    (``pretrain.epochs``) comes back as its flat name (``pretrain_epochs``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CourseError(f"bad parameter {text!r}: write it as key=value, e.g. -p pretrain_epochs=10")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    key = key.strip()
    return _DOTTED.get(key, key), value


def with_overrides(cfg: Config, **changes) -> Config:
    """A copy of ``cfg`` with some settings changed (flat or dotted names; text and lists as :func:`resolve` takes
    them), and checked."""
    out = cfg.replace(**_coerced(_flat_keys(changes)))
    _check(out)
    return out
