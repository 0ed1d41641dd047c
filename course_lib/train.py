"""Training loops: VICReg pretraining (Adam) and the supervised baseline (SGD + cross-entropy).

Introduced in notebooks 01 and 02. Both loops share :func:`fit`, which owns what a
long run needs: a progress bar, a per-iteration log of every loss term, a stop with the fix when the loss
turns NaN/inf or diverges, and resuming. Where a run lives and what it keeps (its folder
``runs/<kind>-<encoder>-<key>/``, keyed by every setting that shapes the result; its checkpoint, written
atomically; its log) is :mod:`course_lib.runs`: changing a setting starts a new run instead of silently
reusing an old one, and starting the same run again resumes it (or loads it, when it has finished: the
notebook says so).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import distributed, shipped
from .augment import build_views
from .config import Config
from .data import ImageDataset, batches, steps_per_epoch
from .diagnostics import monitor
from .distributed import SINGLE, World
from .errors import CourseError
from .methods import build_method
from .models import ENCODER_REVISIONS, build_encoder
from .runs import (CHECKPOINT, RunState, atomic_save, data_fingerprint, jsonable, load_snapshot, run_folder,
                   save_snapshot, snapshot_path)
from .runtime import autocast, grad_scaler, memory_format, random_encoder, to_device

__all__ = ["Run", "fit", "pretrain", "pretrain_vicreg", "train_supervised", "train_classifier", "Classifier",
           "random_encoder", "autocast", "pretrain_scheduler", "snapshot_encoder", "check_loss"]

#: A loss this many times its first value (or 1, if larger) means a diverged run: fit stops with a message.
#: Every loss here starts near its largest honest value (VICReg ~40, Barlow Twins ~D, cross-entropy ~ln K).
DIVERGED = 1e4
#: Process r of a torchrun job seeds its augmentations with seed + 1 + r * this (rank 0: a single process's seed).
AUGMENT_SEED_STRIDE = 1000


@dataclass
class Run:
    """A finished training run: its modules, per-iteration history and bookkeeping."""

    name: str
    modules: dict[str, nn.Module]
    history: list[dict[str, float]]
    epochs: int
    seconds: float  # wall time of training, summed over resumed sessions
    run_dir: Path
    status: str  # "trained", "resumed" or "loaded"
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)  # fit's on_epoch_end records, with "epoch"
    encoder_epoch: int | None = None  # the epoch whose encoder ``modules["encoder"]`` holds, when not the last

    @property
    def encoder(self) -> nn.Module:
        return self.modules["encoder"]


def fit(name: str, settings: dict, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None, epochs: int,
        step: Callable[[torch.Tensor], dict[str, torch.Tensor]], num_samples: int, cfg: Config,
        scaler: torch.amp.GradScaler | None = None, progress: bool = True,
        generators: dict[str, torch.Generator] | None = None, after_step: Callable[[], None] | None = None,
        on_epoch_end: Callable[[int], dict[str, float]] | None = None, world: World = SINGLE,
        layout: dict | None = None, scheduler_per_step: bool = False) -> Run:
    """Train for ``epochs``; resume or load a run with the same settings (:class:`course_lib.runs.RunState`).

    ``step(indices)`` computes the loss dict (``"loss"`` plus terms to log) of one batch; ``fit`` does the
    backward pass and the optimizer step, then ``after_step()``. ``scheduler`` steps once per epoch, or after
    every optimizer step with ``scheduler_per_step``. ``generators`` (e.g. the augmentation's) are checkpointed
    too, so a resumed run draws the same views as an uninterrupted one. ``on_epoch_end(epoch)`` (1-based) runs
    after each epoch and returns metrics (e.g. :func:`course_lib.diagnostics.monitor`); each non-empty result is
    kept as ``{"epoch": epoch, **metrics}`` in the checkpoint and in ``Run.epoch_metrics``. Its time is not
    counted in ``Run.seconds``. A loss that turns NaN/inf or diverges stops the run (:func:`check_loss`).

    Under torchrun (``world`` of several processes, :mod:`course_lib.distributed`) every process runs this loop
    on its :meth:`~course_lib.distributed.World.shard` of each global batch; rank 0 alone reads and writes the
    run folder. ``layout`` (e.g. ``{"sync_batchnorm": "projector"}``) is recorded in the checkpoint with the
    number of processes, and a resume must match it. A run folder travels between devices (RunState says how).
    """
    run = RunState(cfg, name, settings, epochs, modules, optimizer, scheduler, scaler, generators, world, layout)
    run.resume(progress)
    for module in modules.values():
        module.train()
    # One bar counting optimizer steps, not epochs: its rate and time left show within seconds, where an epoch of
    # N2 on a CPU without bf16 takes ~40 min (a bar of epochs would sit at 0 % all that time).
    per_epoch = steps_per_epoch(num_samples, cfg.batch_size)
    done = run.partial["step"] if run.partial else 0  # steps of the first epoch a mid-epoch checkpoint holds
    bar = tqdm(total=epochs * per_epoch, initial=run.epoch * per_epoch + done, desc=name, unit="step", leave=False,
               disable=not (progress and world.is_main))
    for epoch in range(run.epoch, epochs):
        t0 = time.perf_counter()
        order_state = run.order.get_state()  # before this epoch's permutation: what a mid-epoch checkpoint keeps
        partial, run.partial = run.partial, None
        epoch_log = [{k: torch.tensor(v, dtype=torch.float32, device=cfg.torch_device) for k, v in r.items()}
                     for r in partial["rows"]] if partial else []  # on the device, beside the new steps' terms
        if partial:
            t0 -= partial["seconds"]
        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", refresh=False)
        for i, idx in enumerate(batches(num_samples, cfg.batch_size, run.order, cfg.torch_device)):
            if i < len(epoch_log):  # done before the checkpoint: the same batch, already trained on
                continue
            terms = step(world.shard(idx))
            _optimizer_step(terms["loss"], optimizer, scaler)
            if after_step is not None:
                after_step()
            if scheduler is not None and scheduler_per_step:
                scheduler.step()
            epoch_log.append({k: v.detach() for k, v in terms.items()})
            bar.update(1)
            if len(epoch_log) < per_epoch:
                run.save_within_epoch(len(epoch_log), per_epoch, order_state, epoch_log, time.perf_counter() - t0)
        if scheduler is not None and not scheduler_per_step:
            scheduler.step()
        rows = _log_rows(epoch_log, epoch + 1, len(run.history))
        check_loss(name, rows, run.history, epoch + 1)
        run.log(epoch + 1, rows, time.perf_counter() - t0)
        metrics = on_epoch_end(epoch + 1) if on_epoch_end is not None else {}  # the monitor: not training time
        run.record(epoch + 1, metrics)
        run.save()
        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{rows[-1]['loss']:.3f}",
                        **({"knn": f"{metrics['knn_top1']:.1f}"} if "knn_top1" in metrics else {}))
    bar.close()
    run.finish()
    for module in modules.values():
        module.eval()
    return Run(name, modules, run.history, epochs, run.seconds, run.folder, run.status, run.epoch_metrics)


def _optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Backward and one optimizer step (through the fp16 grad ``scaler``, if any)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def _log_rows(epoch_log: list[dict[str, torch.Tensor]], epoch: int, done: int) -> list[dict[str, float]]:
    """The log's rows of ``epoch`` (1-based), one per step after the ``done`` steps before it."""
    # One device->host transfer per epoch, not per step.
    stacked = {k: torch.stack([r[k].float() for r in epoch_log]).cpu().tolist() for k in epoch_log[0]}
    return [{"epoch": epoch, "iteration": done + i + 1, **{k: stacked[k][i] for k in stacked}}
            for i in range(len(epoch_log))]


def check_loss(name: str, rows: list[dict[str, float]], history: list[dict[str, float]], epoch: int) -> None:
    """Stop the run ``name`` when its loss in ``epoch`` (1-based; ``rows``) became NaN/inf, or grew :data:`DIVERGED`
    times its first value (that of ``history``, else of ``rows``; or 1, if larger). The last good checkpoint stays."""
    if not all(math.isfinite(r["loss"]) for r in rows):
        raise CourseError(
            f"{name}: the loss became NaN/inf in epoch {epoch}; lower the learning rate "
            "or use precision='fp32' (the last good checkpoint is kept)"
        )
    first, worst = abs((history or rows)[0]["loss"]), max(r["loss"] for r in rows)
    if worst > DIVERGED * max(1.0, first):
        raise CourseError(
            f"{name}: the loss grew from {first:.3g} to {worst:.3g} by epoch {epoch}: the run diverged; "
            "lower the learning rate (the last good checkpoint is kept)"
        )


def _common_settings(cfg: Config, data: ImageDataset, encoder_name: str) -> dict:
    return {
        "encoder": encoder_name,
        "encoder_revision": ENCODER_REVISIONS[encoder_name],
        "data": data_fingerprint(data),
        "image_size": cfg.data.image_size,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "precision": str(cfg.amp_dtype),
    }


def _compiled(module: nn.Module, cfg: Config) -> nn.Module:
    return torch.compile(module) if cfg.hardware.compile else module


def pretrain_scheduler(optimizer: torch.optim.Optimizer, cfg: Config) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule of SSL pretraining: None for "constant" (the coursework's Adam),
    else a linear warm-up over ``pretrain_warmup_epochs`` and a cosine decay to 0 at ``pretrain_epochs``."""
    recipe = cfg.pretrain
    if recipe.schedule == "constant":
        return None
    warm, total = min(recipe.warmup_epochs, recipe.epochs - 1), recipe.epochs

    def factor(epoch: int) -> float:  # the factor of epoch `epoch` (0-based)
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - warm) / max(1, total - warm)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def pretrain(cfg: Config, encoder_name: str, data: ImageDataset, method: str = "vicreg",
             progress: bool = True, keep_epochs: tuple[int, ...] = (), epochs_study: bool = False) -> Run:
    """Pretrain ``encoder_name`` with an SSL ``method`` on ``data``'s training images, labels unused (Adam).

    The same loop for every method of :mod:`course_lib.methods`: two augmented views
    per image, the method's loss, Adam, one checkpoint per epoch. Every
    ``cfg.monitor_every`` epochs (0 = never) the encoder embeds ``data``'s train and
    test splits (eval mode, no grad; the labels are used only here) and the
    diagnostics of :mod:`course_lib.diagnostics` land in ``run.epoch_metrics``.

    ``epochs_study=True`` (the preset's main VICReg run, :func:`pretrain_vicreg`; constant lr only): the run
    trains to ``cfg.pretrain_total_epochs`` and keeps the encoder after each count of ``cfg.epochs_study``; the
    returned run's encoder is the one after ``cfg.pretrain_epochs`` (``run.encoder_epoch``), and
    :func:`snapshot_encoder` gives the others. Other runs (notebook 02's collapse runs and 05's) ignore it.

    ``keep_epochs``: after each of these epochs the encoder's weights are kept in the run folder
    (:func:`course_lib.runs.snapshot_path`; rank 0). With the constant learning rate (the coursework's Adam) the
    first ``E`` epochs of a longer run *are* the ``E``-epoch run (same seed, same batches, same views),
    so one run gives a whole curve over epochs (notebook 07). They do not change the run's fingerprint.

    Under torchrun (:mod:`course_lib.pretrain`) each process trains on its shard of every
    global batch of ``cfg.batch_size`` pairs, with its own augmentation stream; the model is
    wrapped in DDP and its BatchNorm synchronized per ``cfg.sync_batchnorm``; rank 0 alone
    runs the monitor and writes the run, which has the folder a single process would use.
    """
    world = distributed.world()
    if cfg.batch_size % world.size:
        raise CourseError(f"batch_size {cfg.batch_size} is the global batch: it must be a multiple of the "
                          f"{world.size} processes (each takes batch_size / {world.size})")
    torch.manual_seed(cfg.seed)
    encoder = build_encoder(encoder_name)
    model = build_method(method, encoder, cfg)
    if world.size > 1:
        model = distributed.sync_batchnorm(model, cfg.hardware.sync_batchnorm, model.backbones)
    model = to_device(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    recipe = cfg.pretrain  # the optimizer, schedule, epochs and augmentation of every method's pretraining
    optimizer = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    views = build_views(recipe.augmentation, cfg.data.image_size, recipe.crop_scale)
    # Each process its own augmentation stream; rank 0's is a single process's.
    aug_gen = torch.Generator(device=cfg.torch_device).manual_seed(cfg.seed + 1 + AUGMENT_SEED_STRIDE * world.rank)
    forward = _compiled(distributed.wrap(model, cfg), cfg)
    memory = memory_format(cfg, encoder)
    x_train = data.x_train

    def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        x_a, x_b = views(x_train[idx], aug_gen)
        with autocast(cfg):
            return forward(x_a.contiguous(memory_format=memory), x_b.contiguous(memory_format=memory))

    study = tuple(recipe.epochs_study) if epochs_study else ()
    total = max((recipe.epochs, *study))
    if total > recipe.epochs:
        keep_epochs = (*keep_epochs, recipe.epochs)
    settings = {
        "method": method,
        **_common_settings(cfg, data, encoder_name),
        "epochs": total,
        "lr": recipe.lr,
        "weight_decay": recipe.weight_decay,
        "augmentation": recipe.augmentation,
        "crop_scale": recipe.crop_scale,
        **model.settings(),
    }
    if cfg.evaluation.monitor_every:  # the monitor changes no training, but a run's stored diagnostics depend on it
        settings.update(monitor_every=cfg.evaluation.monitor_every, knn_k=cfg.evaluation.knn_k)
    if recipe.schedule != "constant":
        settings.update(schedule=recipe.schedule, warmup_epochs=recipe.warmup_epochs)
    scaler = grad_scaler(cfg)  # fp16 only, on the run's device
    name = f"{method}-{encoder_name}"
    on_epoch_end = monitor(encoder, data, cfg) if world.is_main else None
    keep = set(keep_epochs) | set(study) if world.is_main else set()
    if keep:
        folder, measure_epoch = run_folder(cfg, name, settings), on_epoch_end

        def on_epoch_end(epoch: int) -> dict[str, float]:
            if epoch in keep:
                save_snapshot(folder, epoch, encoder)
            return measure_epoch(epoch) if measure_epoch is not None else {}

    if epochs_study:  # the preset's main run: a shipped encoder with these settings serves a machine with none
        record = _shipped(cfg, name, settings)
        if record is not None:
            return _shipped_run(record, name, settings, cfg, progress, encoder=encoder)
    run = fit(
        name, settings, {"method": model}, optimizer,
        pretrain_scheduler(optimizer, cfg), total,
        step, len(data.y_train), cfg, scaler, progress, {"augment": aug_gen}, after_step=model.after_step,
        on_epoch_end=on_epoch_end, world=world, layout={"sync_batchnorm": cfg.hardware.sync_batchnorm},
    )
    run.modules["encoder"] = encoder
    if total > recipe.epochs:  # the tables' encoder is the one after pretrain_epochs: the shorter run
        encoder.load_state_dict(load_snapshot(run.run_dir, recipe.epochs))
        run.encoder_epoch = recipe.epochs
    return run


def snapshot_encoder(run: Run, epoch: int, cfg: Config) -> nn.Module:
    """A copy of ``run``'s encoder with the weights kept after ``epoch`` (``keep_epochs``, ``epochs_study``)."""
    import copy

    path = snapshot_path(run.run_dir, epoch)
    if not path.is_file():
        raise CourseError(f"{run.name}: no encoder kept after epoch {epoch} in {run.run_dir}: add {epoch} to "
                          "epochs_study (or keep_epochs) and train the run again")
    encoder = copy.deepcopy(run.encoder)
    encoder.load_state_dict(load_snapshot(run.run_dir, epoch))
    return to_device(encoder, cfg).eval()


def pretrain_vicreg(cfg: Config, encoder_name: str, data: ImageDataset, progress: bool = True) -> Run:
    """VICReg-pretrain ``encoder_name`` on ``data``'s training images (the coursework's method): the preset's main
    run, with its ``epochs_study``."""
    return pretrain(cfg, encoder_name, data, "vicreg", progress, epochs_study=True)


class Classifier(nn.Module):
    """Encoder followed by a linear head: the supervised baseline and the fine-tuned model."""

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


#: The crops a classifier is trained on (supervised baseline and fine-tuning): scale 0.5-1 of the image, then a flip.
CLASSIFIER_CROP_SCALE = (0.5, 1.0)


def classifier_views(cfg: Config) -> Callable:
    """The augmentation of :func:`train_classifier`: ``views(x_uint8, generator)`` -> a batch of crops + flips."""
    return build_views("crop-flip", cfg.data.image_size, CLASSIFIER_CROP_SCALE).first


def train_classifier(
    cfg: Config,
    name: str,
    model: Classifier,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float,
    settings: dict,
    progress: bool = True,
    batch_size: int | None = None,
) -> Run:
    """SGD (momentum 0.9, weight decay 5e-4, cosine decay) + cross-entropy on (x, y), crop + flip augmented.

    The learning rate decays per epoch; with ``batch_size`` (the fine-tuning's, at most the labelled images)
    it decays per optimizer step over all ``epochs``' steps, which suits a handful of long-run epochs over a
    tiny labelled subset as well as many short ones.
    """
    model = to_device(model, cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    if batch_size is None:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    else:
        cfg = cfg.replace(batch_size=batch_size)  # fit draws batches of cfg.batch_size
        total = epochs * steps_per_epoch(len(y), batch_size)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    views = classifier_views(cfg)
    aug_gen = torch.Generator(device=cfg.torch_device).manual_seed(cfg.seed + 2)
    memory = memory_format(cfg, model)
    scaler = grad_scaler(cfg)

    def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        xb = views(x[idx], aug_gen).contiguous(memory_format=memory)
        with autocast(cfg):
            logits = model(xb)
        return {"loss": F.cross_entropy(logits.float(), y[idx])}

    return fit(name, _classifier_settings(settings, epochs, lr, len(y)), {"model": model}, optimizer, scheduler, epochs, step, len(y), cfg, scaler, progress,
               {"augment": aug_gen}, scheduler_per_step=batch_size is not None)


def _classifier_settings(settings: dict, epochs: int, lr: float, num_samples: int) -> dict:
    """What keys a :func:`train_classifier` run: the caller's settings and the loop's own."""
    return {**settings, "epochs": epochs, "lr": lr, "num_samples": num_samples}


def train_supervised(cfg: Config, encoder_name: str, data: ImageDataset, progress: bool = True) -> Run:
    """The supervised baseline: encoder + linear head trained on all of ``data``'s labels."""
    torch.manual_seed(cfg.seed)
    model = Classifier(build_encoder(encoder_name), data.num_classes)
    settings = {"method": "supervised", **_common_settings(cfg, data, encoder_name)}
    name = f"supervised-{encoder_name}"
    full = _classifier_settings(settings, cfg.supervised.epochs, cfg.supervised.lr, len(data.y_train))
    record = _shipped(cfg, name, full)
    if record is not None:
        return _shipped_run(record, name, full, cfg, progress, model=model)
    run = train_classifier(
        cfg, name, model, data.x_train, data.y_train,
        cfg.supervised.epochs, cfg.supervised.lr, settings, progress,
    )
    run.modules["encoder"] = model.encoder
    return run


def _shipped(cfg: Config, name: str, settings: dict) -> dict | None:
    """A shipped run (:mod:`course_lib.shipped`) with these settings, when ``cfg.paths.shipped_encoders`` and this
    machine has no run of its own with them (a checkpoint, finished or not, always wins)."""
    if not cfg.paths.shipped_encoders or distributed.world().size > 1:
        return None
    if (run_folder(cfg, name, settings) / CHECKPOINT).exists():
        return None
    return shipped.find(name, jsonable(settings))


def _shipped_run(record: dict, name: str, settings: dict, cfg: Config, progress: bool,
                 encoder: nn.Module | None = None, model: nn.Module | None = None) -> Run:
    """The :class:`Run` of a shipped record: the encoder (and the encoders kept for the epochs study, written to
    the run's folder so that :func:`snapshot_encoder` finds them), or the supervised classifier; no projector."""
    run_dir = run_folder(cfg, name, settings)
    if model is not None:
        model.load_state_dict(record["model"])
        model = to_device(model, cfg).eval()
        modules = {"model": model, "encoder": model.encoder}
    else:
        encoder.load_state_dict(record["encoder"])
        kept = {**record.get("snapshots", {}), record["encoder_epoch"]: record["encoder"]}
        for epoch, weights in kept.items():
            path = snapshot_path(run_dir, int(epoch))
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_save(weights, path)
        modules = {"encoder": to_device(encoder, cfg).eval()}
    if progress:
        tqdm.write(shipped.describe(record))
    epochs, encoder_epoch = record["epochs"], record["encoder_epoch"]
    return Run(name, modules, shipped.history(record), epochs, record["seconds"], run_dir, "shipped",
               record["epoch_metrics"], encoder_epoch if encoder_epoch != epochs else None)
