"""A run's storage: its folder and key, its checkpoint, the encoders it keeps and the small caches beside them.

Introduced in notebook 02 (through :func:`course_lib.train.fit`). A run lives in ``<runs_dir>/<name>-<key>/``,
where the key (:func:`settings_key`) hashes every setting that shapes the result, the data's and a starting
encoder's identity among them (:func:`data_fingerprint`, :func:`weights_fingerprint`): changing a setting starts
a new run instead of silently reusing an old one, and starting the same run again resumes it, or loads it when it
has finished. The key and the fingerprints are pinned by tests/test_runs.py: a run folder made before must be
found again. What a run folder holds:

- ``checkpoint.pt`` (:data:`CHECKPOINT`): the modules, optimizer, scheduler, grad scaler, every random stream
  and the per-iteration history, written atomically by rank 0 at most every ``checkpoint_every_s`` seconds and
  after the last epoch (:class:`RunState`), and in one process inside an epoch every ``checkpoint_within_epoch_s``
  seconds (then with the epoch's steps so far, ``"partial"``, which a resume skips); a finished run's has no
  optimizer;
- ``settings.json``, ``log.jsonl`` (a row per iteration, rewritten from the checkpoint on resume) and, once
  trained, ``metrics.json`` (epochs, seconds, the monitor's per-epoch diagnostics);
- ``snapshots/encoder-epochNNNN.pt``: the encoder kept after some epochs (:func:`snapshot_path`);
- small JSON files computed from the trained run: the studies' ``probes.json`` (:func:`cached`) and
  :mod:`course_lib.pretrain`'s ``probe.json`` (:func:`write_text_atomically`).

``python -m course_lib.runs [FOLDER]`` (``make progress``) tables how far each run in a runs folder got
(:func:`progress`), read from these files.

Every file is written through a per-process temporary name and a rename (:func:`atomic_save`,
:func:`write_text_atomically`), so a crash never leaves a half-written one.

Not here: :mod:`course_lib.realdata`'s cache of decoded images (``<data_root>/.course_cache/``). It belongs to the
data, not to a run; realdata sits below this module (the data layer, tests/test_layers.py) and cannot import it;
and its contract differs: a private temporary file made readable to the umask (data folders are shared), old
versions pruned, and a read-only data folder quietly left uncached, where a run that cannot write its folder
must fail. Sharing the four lines of write-then-rename would tie the two contracts together for nothing.
Neither is :func:`course_lib.results.metrics_dir`: a notebook's results rows, not a run's files.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .config import Config
from .distributed import SINGLE, World
from .errors import CourseError
from .images import ImageDataset

__all__ = ["CHECKPOINT", "RunState", "atomic_save", "cached", "data_fingerprint", "jsonable", "load_checkpoint",
           "load_snapshot", "progress", "progress_table", "read_checkpoint", "reseed", "restore_generator",
           "run_folder", "save_snapshot", "settings_key", "snapshot_path", "weights_fingerprint",
           "write_text_atomically"]

CHECKPOINT = "checkpoint.pt"


# --------------------------------------------------------------------------- the key


def jsonable(settings: dict) -> dict:
    """``settings`` as JSON keeps them (tuples become lists, anything else its ``str``): what a checkpoint stores."""
    return json.loads(json.dumps(settings, default=str))


def settings_key(settings: dict) -> str:
    """The run's key: a short SHA-256 of its (JSON) ``settings``, keys sorted."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def run_folder(cfg: Config, name: str, settings: dict) -> Path:
    """Where the run ``name`` with these ``settings`` lives: ``runs/<name>-<key>/``."""
    return cfg.runs_path / f"{name}-{settings_key(jsonable(settings))}"


def data_fingerprint(data: ImageDataset) -> str:
    """A cheap identity of a dataset's training images (shape + strided bytes)."""
    x = data.x_train
    sample = x.flatten()[:: max(1, x.numel() // 100_000)].cpu().to(torch.int64)
    return f"{data.name}|{tuple(x.shape)}|{int(sample.sum())}|{int((sample * torch.arange(len(sample))).sum())}"


def weights_fingerprint(module: nn.Module) -> str:
    """A short hash of a module's parameters and buffers: keys a run that starts from these weights."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- atomic writes


def _replace(path: Path, write: Callable[[Path], object]) -> Path:
    # One temporary name per process: two processes training the same run (two notebooks, two terminals)
    # must not rename each other's half-written file. os.replace is atomic, so a crash mid-write never
    # leaves a broken file, and the last writer wins with a complete one. A write that fails (a full
    # disk, an interrupt) removes its temporary file: nothing partial is left behind.
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj, path: Path) -> Path:
    """``torch.save(obj, path)``, atomically: a per-process temporary file, then a rename."""
    return _replace(path, lambda tmp: torch.save(obj, tmp))


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` the way checkpoints are written: a per-process temporary file, then a rename."""
    return _replace(path, lambda tmp: tmp.write_text(text))


# --------------------------------------------------------------------------- the checkpoint


def load_checkpoint(path: Path, settings: dict | None = None) -> dict:
    """Load a checkpoint with ``weights_only=True``; refuse it if its settings differ from ``settings``.

    A damaged file (zero bytes, half-written by a tool that does not write atomically, truncated by a full disk
    or a partial copy) is refused with one line naming it and the fix.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # EOFError (0 bytes), RuntimeError (PytorchStreamReader: truncated zip), pickle errors
        first = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:100]
        reason = "0 bytes" if Path(path).stat().st_size == 0 else f"{type(err).__name__}: {first}"
        raise CourseError(
            f"checkpoint {path} is damaged or half-written ({reason}): delete it and run again to train that run afresh"
        ) from None
    if not isinstance(ckpt, dict) or not {"epoch", "modules", "history"} <= set(ckpt):
        raise CourseError(f"checkpoint {path} is not a checkpoint of this course: delete it and run again to train "
                          "that run afresh")
    if settings is not None and ckpt.get("settings") != settings:
        theirs = ckpt.get("settings", {})
        diff = sorted(k for k in set(theirs) | set(settings) if theirs.get(k) != settings.get(k))
        raise CourseError(
            f"checkpoint {path} was made with other settings ({', '.join(diff)}): "
            "delete it or pick another runs_dir to train afresh"
        )
    return ckpt


def read_checkpoint(path: Path, settings: dict, world: World = SINGLE) -> dict | None:
    """The run's checkpoint, read by rank 0 and sent to every process (None when there is none).

    A refusal (other settings) reaches every process too, so that none waits for the others.
    """
    found = None
    if world.is_main and path.exists():
        try:
            found = load_checkpoint(path, settings)
        except CourseError as err:
            found = err
    found = world.broadcast(found)
    if isinstance(found, CourseError):
        raise found
    return found


def reseed(seed: int, epoch: int) -> int:
    """The seed a generator first seeded with ``seed`` restarts from after ``epoch`` when its saved state cannot
    be used: a fixed function of the two (SHA-256), so every resume of the same run draws the same views."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:8], "little") >> 1


def restore_generator(g: torch.Generator, state: torch.Tensor, saved_device: str | None, epoch: int) -> str | None:
    """Give ``g`` the ``state`` a checkpoint kept after ``epoch``; None when done so, else the one line that says why
    it was re-seeded instead (:func:`reseed` of the seed ``g`` was built with, and ``epoch``).

    A generator's state is the device's own: a CPU's is 5,056 bytes, a CUDA one's 16, and neither loads into the
    other. A run folder shared between a CPU session and a GPU session (a Drive ``runs_dir``) resumes on either:
    the views from here on are drawn from the re-seeded stream (a valid run, not bit-for-bit an uninterrupted one).
    """
    here = g.device.type
    if saved_device in (None, here):
        try:
            g.set_state(state)
            return None
        except RuntimeError:  # an older checkpoint (no device recorded) from the other kind of device
            pass
    seed = g.initial_seed()
    g.manual_seed(reseed(seed, epoch))
    why = (f"RNG state was saved on {saved_device}, this run is on {here}" if saved_device not in (None, here) else
           f"RNG state in the checkpoint ({len(state):,} bytes) does not fit this {here} generator")
    return (f"{why}: re-seeded it from seed {seed} and epoch {epoch} (the views from here on differ from an "
            "uninterrupted run's)")


def _describe(layout: dict) -> str:
    n = layout.get("world_size", 1)
    if n == 1:
        return "one process"
    return f"{n} processes (sync_batchnorm={layout.get('sync_batchnorm', '?')!r})"


class RunState:
    """One run as :func:`course_lib.train.fit` trains it: where it lives and what its checkpoint holds.

    The checkpoint holds the ``modules``, the ``optimizer``, ``scheduler`` and ``scaler``, the batch order
    (:attr:`order`, a CPU generator seeded with ``cfg.seed``: the same in every process), each process's
    ``generators`` (e.g. the augmentation's) and what training has recorded: :attr:`history` (a row per
    iteration), :attr:`epoch_metrics` (the monitor's), :attr:`epoch` (epochs done) and :attr:`seconds`.

    :meth:`resume` loads the checkpoint, if there is one; :meth:`log`, :meth:`record` and :meth:`save` keep an
    epoch; :meth:`finish` writes ``metrics.json``. Under torchrun (``world`` of several processes) rank 0 alone
    reads and writes the folder: it sends the checkpoint to the others, and gathers their generators' states
    to save them. ``layout`` (e.g. ``{"sync_batchnorm": "projector"}``) is saved with the number of processes,
    and a resume must match it.

    A run folder travels between devices (a Drive ``runs_dir`` shared by a CPU and a GPU session): the device is
    not part of the key, a finished run loads its weights without touching any random state, and a resume on
    another kind of device re-seeds the ``generators`` whose saved state does not fit (:func:`restore_generator`,
    one printed line). The precision is part of the key: a run trained in fp32 on a CPU and the same settings in
    bf16 on an A100 are two runs.
    """

    def __init__(self, cfg: Config, name: str, settings: dict, epochs: int, modules: dict[str, nn.Module],
                 optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 scaler: torch.amp.GradScaler | None = None, generators: dict[str, torch.Generator] | None = None,
                 world: World = SINGLE, layout: dict | None = None):
        self.cfg, self.name, self.epochs, self.world = cfg, name, epochs, world
        self.settings = jsonable(settings)
        self.layout = {"world_size": world.size, **(layout or {})} if world.size > 1 else {"world_size": 1}
        self.folder = run_folder(cfg, name, self.settings)
        self.path = self.folder / CHECKPOINT
        self.modules, self.optimizer, self.scheduler, self.scaler = modules, optimizer, scheduler, scaler
        self.generators = generators or {}
        self.order = torch.Generator().manual_seed(cfg.seed)  # the batch order: the same in every process
        self.device = cfg.torch_device.type  # whose generator states a checkpoint holds (a CPU's and a GPU's differ)
        self.history: list[dict[str, float]] = []
        self.epoch_metrics: list[dict[str, float]] = []
        self.epoch, self.seconds, self.status = 0, 0.0, "trained"
        #: A checkpoint written inside an epoch (:meth:`save_within_epoch`): {"step", "rows", "seconds"} of the
        #: epoch after :attr:`epoch` so far; None at an epoch's end.
        self.partial: dict | None = None
        self._last_save = time.perf_counter()

    def resume(self, progress: bool = True) -> str:
        """Load the checkpoint, if any: a finished run ("loaded", its random streams untouched) or one to go on
        with ("resumed"); then make the folder and rewrite its log from the checkpoint (rank 0). The status."""
        # read before anything is written: a refusal changes nothing
        ckpt = read_checkpoint(self.path, self.settings, self.world)
        if ckpt is not None:
            self._load(ckpt)
        main = self.world.is_main
        if main:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "settings.json").write_text(json.dumps(self.settings, indent=2))
        say = tqdm.write if main and progress else (lambda text: None)
        if self.status == "loaded":  # a finished run: nothing to train, say so
            say(f"{self.name}: loaded the finished run {self.folder.name} ({self.epoch} epochs)")
        elif self.status == "resumed":
            within = f", step {self.partial['step']} of epoch {self.epoch + 1}" if self.partial else ""
            say(f"{self.name}: resuming {self.folder.name} after epoch {self.epoch} of {self.epochs}{within}")
        if main:  # the log is rewritten from the checkpoint, so a resume never duplicates rows
            with open(self.folder / "log.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in self.history)
        self._last_save = time.perf_counter()
        return self.status

    def _load(self, ckpt: dict) -> None:
        finished = ckpt["epoch"] >= self.epochs
        theirs = ckpt.get("layout", {"world_size": 1})
        if not finished and theirs != self.layout:
            raise CourseError(
                f"{self.name}: the checkpoint in {self.folder} was written by {_describe(theirs)}, this job is "
                f"{_describe(self.layout)}: resume it the way it started (torchrun --nproc_per_node and "
                "sync_batchnorm), or delete the folder to train afresh"
            )
        for key, module in self.modules.items():
            module.load_state_dict(ckpt["modules"][key])
        if ckpt["optimizer"] is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if not finished:  # a finished run trains no further: its random streams are never drawn from again
            self._restore_generators(ckpt)
        self.history, self.epoch, self.seconds = ckpt["history"], ckpt["epoch"], ckpt["seconds"]
        self.epoch_metrics = ckpt.get("epoch_metrics", [])
        self.partial = None if finished else ckpt.get("partial")
        self.status = "loaded" if finished else "resumed"

    def _restore_generators(self, ckpt: dict) -> None:
        self.order.set_state(ckpt["generator"])  # a CPU generator on every device
        rank = self.world.rank
        states = ckpt["rank_generators"][rank] if "rank_generators" in ckpt else ckpt.get("generators", {})
        for key, g in self.generators.items():
            if key not in states:
                raise CourseError(f"checkpoint {self.path} predates this course_lib (no {key} RNG state): "
                                  "delete its folder to train afresh")
            note = restore_generator(g, states[key], ckpt.get("device"), ckpt["epoch"])
            if note and self.world.is_main:
                tqdm.write(f"{self.name}: {key} {note}")

    def log(self, epoch: int, rows: list[dict[str, float]], seconds: float) -> None:
        """Epoch ``epoch`` (1-based) is trained: its ``rows`` join the history and ``log.jsonl`` (rank 0), and its
        ``seconds`` of training the run's."""
        self.history += rows
        self.epoch, self.seconds, self.partial = epoch, self.seconds + seconds, None
        if self.world.is_main:
            with open(self.folder / "log.jsonl", "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)

    def record(self, epoch: int, metrics: dict[str, float]) -> None:
        """Keep the monitor's ``metrics`` after ``epoch`` (nothing when there are none)."""
        if metrics:
            self.epoch_metrics.append({"epoch": epoch, **{k: float(v) for k, v in metrics.items()}})

    def save(self) -> bool:
        """Checkpoint the epoch just trained, when it is the last or ``cfg.checkpoint_every_s`` seconds have passed
        since the last save; whether it did. Every process must call it: they all agree, then each sends its
        generators' states to rank 0, which writes."""
        finished = self.epoch == self.epochs
        # Writing a ResNet-18 checkpoint takes about a second on a CPU: on short epochs, save at
        # most every checkpoint_every_s seconds (and always at the end) instead of every epoch.
        # Rank 0's clock decides for every process: saving gathers each one's generator states.
        due = finished or time.perf_counter() - self._last_save >= self.cfg.paths.checkpoint_every_s
        if not self.world.broadcast(due):
            return False
        rank_states = self.world.gather_objects({k: g.get_state() for k, g in self.generators.items()})
        if self.world.is_main:
            atomic_save(self._checkpoint(finished, rank_states), self.path)
        self._last_save = time.perf_counter()
        return True

    def save_within_epoch(self, step: int, steps: int, order_state: torch.Tensor, rows: list[dict[str, torch.Tensor]],
                          seconds: float) -> bool:
        """Checkpoint ``step`` of the ``steps`` steps of the epoch after :attr:`epoch`, when
        ``cfg.checkpoint_within_epoch_s`` seconds have passed since the last save; whether it did. ``order_state`` is
        the batch order's state when the epoch began (a resume draws the same permutation and skips the ``step``
        batches done), ``rows`` the epoch's logged terms so far and ``seconds`` its training time so far.

        One process only: under torchrun the processes would have to agree at every step (a collective that
        waits for the GPU each time), and the runs torchrun serves have short epochs; they save per epoch."""
        if self.world.size > 1 or time.perf_counter() - self._last_save < self.cfg.paths.checkpoint_within_epoch_s:
            return False
        ckpt = self._checkpoint(False, [{k: g.get_state() for k, g in self.generators.items()}])
        ckpt["generator"] = order_state
        ckpt["partial"] = {"step": step, "steps": steps, "seconds": seconds,
                           "rows": [{k: float(v) for k, v in r.items()} for r in rows]}
        atomic_save(ckpt, self.path)
        self._last_save = time.perf_counter()
        return True

    def _checkpoint(self, finished: bool, rank_states: list[dict]) -> dict:
        scheduler, scaler = self.scheduler, self.scaler
        return {
            "settings": self.settings,
            "epoch": self.epoch,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            # a finished run is never trained further (more epochs = a new run): drop the optimizer
            "optimizer": None if finished else self.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None and not finished else None,
            "scaler": scaler.state_dict() if scaler is not None and not finished else None,
            "generator": self.order.get_state(),
            "generators": rank_states[0],
            "device": self.device,  # whose generator states these are (a CPU's and a GPU's differ)
            **({"rank_generators": rank_states} if self.world.size > 1 else {}),
            "layout": self.layout,
            "history": self.history,
            "epoch_metrics": self.epoch_metrics,
            "seconds": self.seconds,
        }

    def finish(self) -> None:
        """Write ``metrics.json`` (rank 0): the epochs, the seconds of training and the monitor's metrics."""
        if self.world.is_main:
            (self.folder / "metrics.json").write_text(
                json.dumps({"epochs": self.epochs, "seconds": self.seconds, "epoch_metrics": self.epoch_metrics},
                           indent=2))


# --------------------------------------------------------------------------- snapshots and caches


def snapshot_path(run_dir: Path, epoch: int) -> Path:
    """The encoder's weights after ``epoch``, kept by :func:`course_lib.train.pretrain`'s ``keep_epochs``."""
    return Path(run_dir) / "snapshots" / f"encoder-epoch{epoch:04d}.pt"


def save_snapshot(run_dir: Path, epoch: int, encoder: nn.Module) -> Path:
    """Keep ``encoder``'s weights after ``epoch`` (on the CPU, atomically) at :func:`snapshot_path`."""
    path = snapshot_path(run_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_save({k: v.detach().cpu() for k, v in encoder.state_dict().items()}, path)


def load_snapshot(run_dir: Path, epoch: int) -> dict[str, torch.Tensor]:
    """The encoder weights :func:`save_snapshot` kept after ``epoch`` (a state dict, on the CPU)."""
    return torch.load(snapshot_path(run_dir, epoch), map_location="cpu", weights_only=True)


def cached(run_dir: Path, filename: str, key: str, compute: Callable[[], dict]) -> dict:
    """``compute()``'s result, kept in the JSON file ``run_dir/filename`` under ``key`` (written atomically): computed
    once per key, read back afterwards. The studies keep their probes of a run this way (``probes.json``)."""
    path = Path(run_dir) / filename
    found = json.loads(path.read_text()) if path.exists() else {}
    if key not in found:
        found[key] = compute()
        write_text_atomically(path, json.dumps(found, indent=1))
    return found[key]


# --------------------------------------------------------------------------- progress of the runs in a folder


def _hours(seconds: float) -> str:
    """``seconds`` as "42 s", "17 min" or "7 h 05 min"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress(folder: Path, now: float | None = None) -> dict:
    """Where the run in ``folder`` stands, read from its files without touching them.

    ``state``: "finished" (``metrics.json``), "training" (a checkpoint: epochs done, and steps of the next epoch
    when it was saved inside one), "not started" (no checkpoint yet: it stopped before its first save) or "damaged
    checkpoint" (unreadable; starting the run says what to do). With
    ``done`` (the fraction of its steps trained), ``seconds`` (training time so far), ``left`` (the seconds that
    remain at the rate so far; None when nothing is trained) and ``saved`` (seconds since its checkpoint was
    written). A long run (an N2 epoch is 10-38 min on 2 CPU cores) is stopped and resumed many times: this says
    how far it got, without loading its weights (``mmap``)."""
    folder = Path(folder)
    settings = json.loads((folder / "settings.json").read_text()) if (folder / "settings.json").exists() else {}
    epochs = int(settings.get("epochs", 0))
    what = " ".join(str(settings[k]) for k in ("method", "encoder") if k in settings)
    if "init" in settings:  # a fine-tune: what it starts from, on which share of the labels
        share = 100 * float(settings.get("fraction", 1))
        what = f"{settings.get('method', '')} from {settings['init']}, {share:g} % of labels"
    row = {"run": folder.name, "what": what, "epochs": epochs, "epoch": 0, "step": 0, "steps_per_epoch": None,
           "seconds": 0.0, "done": 0.0, "left": None, "saved": None, "state": "not started"}
    if (folder / "metrics.json").exists():
        metrics = json.loads((folder / "metrics.json").read_text())
        return {**row, "state": "finished", "epoch": int(metrics.get("epochs", epochs)), "done": 1.0, "left": 0.0,
                "seconds": float(metrics.get("seconds", 0.0))}
    path = folder / CHECKPOINT
    if not path.exists():
        return row
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # half-written by another tool, truncated: load_checkpoint says so when the run starts
        return {**row, "state": "damaged checkpoint"}
    partial = ckpt.get("partial") or {}
    if not partial.get("steps"):  # saved at an epoch's end (or inside one, before checkpoints gave its steps)
        partial = {}
    epoch, step, per_epoch = int(ckpt.get("epoch", 0)), int(partial.get("step", 0)), partial.get("steps")
    seconds = float(ckpt.get("seconds", 0.0)) + float(partial.get("seconds", 0.0))
    done = (epoch + (step / per_epoch if per_epoch else 0)) / epochs if epochs else 0.0
    now = time.time() if now is None else now
    return {**row, "state": "training", "epoch": epoch, "step": step, "steps_per_epoch": per_epoch,
            "seconds": seconds, "done": done,
            "left": seconds * (1 - done) / done if done else None, "saved": max(0.0, now - path.stat().st_mtime)}


def progress_table(runs_dir: Path) -> str:
    """A Markdown table of :func:`progress` for every run folder in ``runs_dir``, unfinished runs first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise CourseError(f"no runs folder at {runs_dir}: pass the folder that holds the run folders "
                          "(python -m course_lib.runs FOLDER; without one, runs/ under the project root)")
    rows = [progress(f) for f in sorted(runs_dir.iterdir()) if (f / "settings.json").exists()]
    if not rows:
        return f"{runs_dir}: no runs yet"
    rows.sort(key=lambda r: (r["state"] == "finished", r["run"]))
    lines = ["| run | what | state | progress | trained | left (at its rate) | checkpoint saved |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["state"] == "training":
            step = f" + {r['step']}/{r['steps_per_epoch']} steps" if r["step"] else ""
            where = f"{r['epoch']}/{r['epochs']} epochs{step} ({100 * r['done']:.0f} %)"
        else:
            where = f"{r['epoch']}/{r['epochs']} epochs" if r["state"] == "finished" else "—"
        left = _hours(r["left"]) if r["left"] else "—"  # None: nothing trained yet; 0: finished
        saved = "—" if r["saved"] is None else f"{_hours(r['saved'])} ago"
        cells = (r["run"], r["what"], r["state"], where, _hours(r["seconds"]), left, saved)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import sys

    from .config import project_root

    parser = argparse.ArgumentParser(prog="python -m course_lib.runs",
                                     description="How far each run in a runs folder got: finished, or epochs and "
                                                 "steps done, training time, and what is left at its rate.")
    parser.add_argument("runs_dir", nargs="?", default=None, help="the runs folder (default: runs/ in the project)")
    args = parser.parse_args()
    folder = Path(args.runs_dir) if args.runs_dir else project_root() / "runs"
    try:
        print(progress_table(folder) if folder.is_dir() or args.runs_dir else f"{folder}: no runs yet")
    except CourseError as err:
        sys.exit(f"error: {err}")
