"""Pretrain one encoder with one SSL method, in one process or many: the entry point for torchrun.

    python -m course_lib.pretrain --preset cpu --method vicreg --encoder N1       # one process
    python -m course_lib.pretrain --preset coursework --method supervised --encoder N2 -p data_root=~/data
    torchrun --nproc_per_node=4 -m course_lib.pretrain --preset full --encoder ResNet-18 -p data_root=~/data
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
        -m course_lib.pretrain --preset full --encoder ResNet-18 -p data_root=~/data     # two nodes (README)

Settings are those of the notebooks: a preset plus ``-p key=value`` overrides, and the
budget of the chosen encoder (``encoder_overrides``, ``train_images``), so the run lands in
the folder that notebook 02 (VICReg) or 05 (the other methods) looks in with the same
settings, and they load it instead of training. ``batch_size`` is the *global* batch:
each of N processes takes ``batch_size / N`` pairs per step. When training ends, rank 0
runs the linear probe once on set A (and set B) and writes ``probe.json`` in the run folder.
Start the same command again after a crash and it resumes from the last checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import data, distributed, evaluate, runs, shipped, train
from .config import METHOD_NAMES, PRESETS, parse_param, resolve
from .errors import CourseError


def _sets(cfg, world: distributed.World):
    """Set A on every process, set B (for the probe) on rank 0 only; rank 0 first, so it alone fills any cache."""
    if not world.is_main:
        world.broadcast(None)  # wait until rank 0 has loaded (and cached) the data
        return data.load_dataset(cfg.dataset_a, cfg.data_root, cfg.download).to(cfg.torch_device), None
    a, b = data.load_sets(cfg)
    world.broadcast(None)
    return a, b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="torchrun [...] -m course_lib.pretrain", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (default: cpu)")
    ap.add_argument("--method", default="vicreg",
                    help="vicreg (default), barlow_twins, wmse, simclr, moco_v2; or supervised (notebook 01's baseline)")
    ap.add_argument("--encoder", default=None, help="N1 or ResNet-18 (default: the preset's first encoder)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override any Config setting (repeatable), e.g. -p pretrain_epochs=100")
    ap.add_argument("--no-probe", action="store_true", help="skip the linear probe after training")
    ap.add_argument("--export", action="store_true",
                    help="write the finished run to encoders/<preset>/ (course_lib.shipped): what students load")
    args = ap.parse_args(argv)
    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        params = dict(parse_param(p) for p in args.param)
        preset = args.preset or params.pop("preset", None)
        if args.encoder:
            params["encoder"] = args.encoder
        cfg = resolve(preset, **params)
        if args.method not in (*METHOD_NAMES, "supervised"):
            raise CourseError(f"unknown method {args.method!r}: use one of {', '.join(METHOD_NAMES)} or supervised")
        encoder = cfg.encoders[0]
        data.check_sets(cfg)
        # Before the process group starts: every worker says no at once, rank 0 in one line (torchrun then adds
        # its own summary of the workers' exit codes).
        processes = distributed.launched_world_size()
        batch = cfg.for_encoder(encoder).batch_size
        if batch % processes:
            fit = batch - batch % processes or processes
            raise CourseError(f"batch_size {batch} is the global batch of {processes} processes, which must share it "
                              f"equally: use a multiple of {processes}, e.g. -p batch_size={fit}")
        if args.method == "supervised" and processes > 1:
            raise CourseError("the supervised baseline trains in one process: start it without torchrun")
        world, cfg = distributed.start(cfg)
    except CourseError as err:
        if main_process:
            print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        ecfg, a, b = data.budget(cfg, encoder, *_sets(cfg, world))
        if world.is_main:
            print(f"{args.method} + {encoder} on {a.name}: {world.size} process(es), global batch "
                  f"{ecfg.batch_size} ({ecfg.batch_size // world.size} per process), "
                  + (f"{ecfg.supervised_epochs} epochs, " if args.method == "supervised" else
                     f"{ecfg.pretrain_total_epochs} epochs (encoders kept after {', '.join(map(str, ecfg.epochs_study))}), "
                     if ecfg.epochs_study and args.method == "vicreg" else f"{ecfg.pretrain_epochs} epochs, ")
                  + f"sync_batchnorm={ecfg.sync_batchnorm if world.size > 1 else 'n/a'}", flush=True)
        if args.method == "supervised":  # notebook 01's baseline, so that a batch job can train it ahead
            if world.size > 1:
                raise CourseError("the supervised baseline trains in one process: start it without torchrun")
            run = train.train_supervised(ecfg, encoder, a, progress=True)
            print(f"run folder: {run.run_dir} ({run.status}, {run.seconds:.0f} s of training)", flush=True)
            if args.export:
                _export(run, ecfg, a, {"model": run.modules["model"].state_dict()})
            return 0
        # VICReg is the preset's main run (notebooks 02 and 04), with its epochs study; the others are 05's runs
        run = train.pretrain(ecfg, encoder, a, args.method, progress=world.is_main,
                             epochs_study=args.method == "vicreg")
        if world.is_main:
            print(f"run folder: {run.run_dir} ({run.status}, {run.seconds:.0f} s of training)", flush=True)
            if not args.no_probe:
                _probe(run, ecfg, a, b, world)
            if args.export:
                if args.method != "vicreg":
                    raise CourseError("--export ships the preset's main runs: --method vicreg or supervised")
                kept = {e: runs.load_snapshot(run.run_dir, e)
                        for e in ecfg.epochs_study if e != (run.encoder_epoch or run.epochs)}
                _export(run, ecfg, a, {"encoder": run.encoder.state_dict(), "snapshots": kept})
    except CourseError as err:
        if world.is_main:
            print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        distributed.stop()
    return 0


def _export(run: train.Run, cfg, a, state: dict) -> None:
    """Ship ``run``: ``encoders/<preset>/<run name>.pt`` (:mod:`course_lib.shipped`)."""
    if run.status == "shipped":
        raise CourseError(f"{run.name} was itself loaded from a shipped file: train it (-p shipped_encoders=false) "
                          "before exporting it")
    settings = json.loads((run.run_dir / "settings.json").read_text())
    out = shipped.export(run, cfg.preset, settings, state, f"{a.name}, {len(a.y_train):,} training images")
    print(f"exported {run.name} to {out} ({out.stat().st_size / 1e6:.1f} MB)", flush=True)


def _probe(run: train.Run, cfg, a, b, world: distributed.World) -> dict:
    """The linear probe of the trained encoder on set A (and B), once: written to ``probe.json`` in the run folder.

    Started again on a finished run (a resumed batch job walks past its finished runs), it prints the stored
    probe when that was made of the same weights, data and probe settings: N2's probe on Tiny ImageNet's
    100,000 images took ~10 min of 2 CPU cores, at every restart."""
    sets = {label: ds for label, ds in (("A", a), ("B", b)) if ds is not None}
    key = {"encoder": runs.weights_fingerprint(run.encoder), "probe_epochs": cfg.probe_epochs,
           "probe_lr": cfg.probe_lr, "seed": cfg.seed, "precision": str(cfg.amp_dtype),
           "data": {label: runs.data_fingerprint(ds) for label, ds in sets.items()}}
    path = run.run_dir / "probe.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if stored.get("key") == key:
        for label, acc in stored["sets"].items():
            print(f"linear probe on set {label} ({acc['name']}): top-1 {acc['top1']:.1f} %, top-5 {acc['top5']:.1f} % "
                  f"(stored in {path.name})", flush=True)
        return stored
    results = {"world_size": world.size, "epochs": run.epochs, "seconds": run.seconds, "status": run.status,
               "probe_epochs": cfg.probe_epochs, "key": key, "sets": {}}
    for label, ds in sets.items():
        acc = evaluate.linear_probe(run.encoder, ds, cfg)
        results["sets"][label] = {"name": ds.name, "top1": acc["top1"], "top5": acc["top5"]}
        print(f"linear probe on set {label} ({ds.name}): top-1 {acc['top1']:.1f} %, top-5 {acc['top5']:.1f} %",
              flush=True)
    runs.write_text_atomically(path, json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(main())
