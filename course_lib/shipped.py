"""Trained encoders that ship with the course: a student without hours of CPU loads them instead of training.

``encoders/<preset>/<run name>.pt`` (e.g. ``encoders/coursework/vicreg-N1.pt``) holds one finished run of the
real-data study: the encoder's weights (the tables' encoder, and for VICReg the encoders kept for the epochs
study), the supervised baseline's whole classifier, the training history and diagnostics that notebooks 01 and
02 plot, and the settings it was trained with. N1's files (~1.6 MB per encoder) are stored in float32. A larger
encoder's weights (more than :data:`HALF_ABOVE` numbers in all, e.g. N2's 11.2 M per encoder) are stored in float16
and read back as float32: half the file (~22 MB per N2 encoder instead of 45), each weight rounded to float16 (a
relative error of at most 2^-11, under 0.05 %; a weight below 6e-5 to within 3e-8).

When a notebook asks for a preset's main VICReg run or its supervised baseline, and this machine has no run of
its own with those settings (no checkpoint in ``runs/``), a shipped file trained with the same settings is
loaded instead (:func:`find`). "The same settings" ignores two things on purpose: the precision (a file trained
in bf16 on a CPU serves a T4 that computes in fp16) and which copy of the dataset it was trained on (the shipped
CIFAR-10 encoders were trained on JPEG copies of its images; the official pickles differ by JPEG's rounding), so
the dataset must match by name and shape, not byte for byte. ``-p shipped_encoders=false`` trains your own.

This module reads and writes files only; :mod:`course_lib.train` builds the run from what it returns.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .config import project_root
from .errors import CourseError
from .runs import atomic_save, jsonable

FORMAT = 1
#: A state with more numbers than this is stored in float16 (:func:`export`); N1's ~0.4 M per encoder stay float32.
HALF_ABOVE = 2_000_000
#: float16's largest finite value: a tensor beyond it stays float32.
_HALF_MAX = 65504.0
#: Settings a shipped run may differ in (see the module's docstring); "data" is compared by name and shape.
IGNORED = ("precision",)


def folder() -> Path:
    """Where the shipped encoders live: ``encoders/`` in the project."""
    return project_root() / "encoders"


def path(preset: str, name: str) -> Path:
    return folder() / preset / f"{name}.pt"


def _dataset(fingerprint: str) -> tuple[str, str]:
    """(dataset name without the copy's kind, shape) of a :func:`course_lib.runs.data_fingerprint`."""
    parts = str(fingerprint).split("|")
    name = parts[0].replace(" (image folder)", "")
    return name, parts[1] if len(parts) > 1 else ""


def same_settings(theirs: dict, ours: dict) -> bool:
    """Whether a shipped run's settings are this run's, up to the precision and the dataset's copy."""
    keys = (set(theirs) | set(ours)) - set(IGNORED) - {"data"}
    return (all(theirs.get(k) == ours.get(k) for k in keys)
            and _dataset(theirs.get("data", "")) == _dataset(ours.get("data", "")))


def find(name: str, settings: dict) -> dict | None:
    """The shipped record of run ``name`` (of any preset's folder) trained with ``settings``
    (:func:`same_settings`), else None. A damaged file is refused in one line naming it."""
    for p in sorted(folder().glob(f"*/{name}.pt")):
        try:
            record = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:
            raise CourseError(f"shipped encoder {p} is damaged ({type(err).__name__}): restore it with "
                              f"`git checkout -- {_relative(p)}` or pass -p shipped_encoders=false to train your "
                              "own") from None
        if isinstance(record, dict) and record.get("format") == FORMAT and same_settings(record["settings"], settings):
            return _widen(record) if record.get("stored") == "float16" else record
    return None


def _relative(p: Path) -> str:
    root = project_root()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def describe(record: dict) -> str:
    """One line: what the shipped run is and how to train your own instead."""
    stored = ", stored in float16" if record.get("stored") == "float16" else ""
    return (f"{record['name']}: loaded the shipped encoder {record['file']} ({record['epochs']} epochs on "
            f"{record['trained_on']}, {record['precision']}, {record['seconds'] / 60:.0f} min of training{stored}); "
            "-p shipped_encoders=false trains your own")


def export(run, preset: str, settings: dict, state: dict, trained_on: str, out: Path | None = None) -> Path:
    """Write a finished run as ``encoders/<preset>/<run name>.pt`` (or ``out``) and return its path.

    ``state`` holds the weights to ship: ``{"encoder": state_dict}`` (and ``"snapshots": {epoch: state_dict}``)
    for a pretraining run, ``{"model": state_dict}`` for the supervised classifier. The history is stored as one
    float tensor per logged quantity: a few hundred kB for 40 epochs. Weights of more than :data:`HALF_ABOVE`
    numbers in all are stored in float16 (``record["stored"]``), which :func:`find` turns back into float32.
    """
    state = {k: _cpu(v) for k, v in state.items()}
    half = _numbers(state) > HALF_ABOVE
    if half:
        state = _narrow(state)
    keys = sorted({k for row in run.history for k in row})
    record = {
        "format": FORMAT,
        "name": run.name,
        "preset": preset,
        "settings": jsonable(settings),
        "trained_on": trained_on,
        "precision": str(settings.get("precision")),
        "epochs": int(run.epochs),
        "encoder_epoch": int(run.encoder_epoch or run.epochs),
        "seconds": float(run.seconds),
        "history": {k: torch.tensor([float(row.get(k, float("nan"))) for row in run.history]) for k in keys},
        "epoch_metrics": [{k: int(v) if k == "epoch" else float(v) for k, v in m.items()} for m in run.epoch_metrics],
        "stored": "float16" if half else "float32",
        **state,
    }
    out = Path(out) if out is not None else path(preset, run.name)
    record["file"] = _relative(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_save(record, out)


def history(record: dict) -> list[dict]:
    """The shipped run's per-iteration history, as :class:`course_lib.train.Run` keeps it."""
    cols = record["history"]
    n = len(next(iter(cols.values()))) if cols else 0
    rows = [{k: v[i].item() for k, v in cols.items()} for i in range(n)]
    for row in rows:  # epoch and iteration are counters
        for k in ("epoch", "iteration"):
            if k in row:
                row[k] = int(row[k])
    return rows


def _tensors(fn, value):
    """``value`` (a tensor, or dicts of them, nested) with ``fn`` applied to each tensor; anything else as it is."""
    if isinstance(value, dict):
        return {k: _tensors(fn, v) for k, v in value.items()}
    return fn(value) if isinstance(value, torch.Tensor) else value


def _numbers(value) -> int:
    """How many floating-point numbers ``value`` (a tensor, or dicts of them, nested) holds."""
    if isinstance(value, dict):
        return sum(_numbers(v) for v in value.values())
    return value.numel() if isinstance(value, torch.Tensor) and value.is_floating_point() else 0


def _narrow(value):
    """float32 tensors as float16, except one with a value float16 cannot hold (it stays float32)."""
    fits = lambda t: t.dtype == torch.float32 and (t.numel() == 0 or float(t.abs().max()) <= _HALF_MAX)  # noqa: E731
    return _tensors(lambda t: t.half() if fits(t) else t, value)


def _widen(value):
    """float16 tensors back to float32 (what a record stored by :func:`_narrow` held), the rest as it is."""
    return _tensors(lambda t: t.float() if t.dtype == torch.float16 else t, value)


def _cpu(value):
    return _tensors(lambda t: t.detach().cpu().clone(), value)
