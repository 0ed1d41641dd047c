"""How the ``cpu-cifar`` preset's VICReg recipe was chosen: on a validation split, never on the test split.

Each candidate recipe (fixed in :data:`CANDIDATES` before anything was measured) VICReg-pretrains N1 for
``--epochs`` epochs on 45,000 of CIFAR-10's 50,000 training images and is then linear-probed on the other
5,000 (class-balanced, seeded: :func:`course_lib.data.validation_split`). The official test split is not
loaded into any decision. The untrained N1 (BatchNorm statistics of the training images) is probed beside
them once. The preset takes the candidate with the highest validation top-1 (2026-12-01: batch256, README).

    python benchmarks/cifar_recipe.py --data-root DIR --out benchmarks/recorded/cifar-recipe.jsonl

``DIR`` holds ``cifar10/`` (an image folder or ``cifar-10-batches-py/``), as for the preset. A rerun
resumes finished or interrupted candidates from ``--runs-dir``. One JSON line per result.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.config import resolve  # noqa: E402
from course_lib.data import load_dataset, validation_split  # noqa: E402
from course_lib.diagnostics import untrained_encoder  # noqa: E402
from course_lib.evaluate import linear_probe  # noqa: E402
from course_lib.train import pretrain  # noqa: E402

#: Candidates, each a change of the cpu preset's real-data recipe (session 4's 64.9 %: batch 128, Adam 1e-3
#: constant, ssl-cifar views with crops of 20-100 %).
CANDIDATES = {
    "constant": {},
    "cosine": {"pretrain_schedule": "cosine", "pretrain_warmup_epochs": 1},
    "batch256": {"batch_size": 256},
}
BASE = dict(augmentation="ssl-cifar", crop_scale=(0.2, 1.0), monitor_every=0, probe_epochs=100)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument("--runs-dir", default="build/cifar-recipe/runs")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    data = validation_split(load_dataset("cifar10", args.data_root), 5_000)

    def emit(record: dict) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")

    base = resolve("cpu", encoder="N1", dataset_b="none", pretrain_epochs=args.epochs, runs_dir=args.runs_dir, **BASE)
    emit({"recipe": "untrained", "train": len(data.y_train), "val": len(data.y_test),
          "val_top1": round(linear_probe(untrained_encoder(base, "N1", data), data, base)["top1"], 2)})
    for name in args.candidates:
        cfg = resolve("cpu", encoder="N1", dataset_b="none", pretrain_epochs=args.epochs, runs_dir=args.runs_dir,
                      **{**BASE, **CANDIDATES[name]})
        t0 = time.perf_counter()
        run = pretrain(cfg, "N1", data, progress=False)
        seconds = time.perf_counter() - t0
        probe = linear_probe(run.encoder, data, cfg)
        emit({"recipe": name, **CANDIDATES[name], "epochs": args.epochs, "train": len(data.y_train),
              "val": len(data.y_test), "val_top1": round(probe["top1"], 2), "val_top5": round(probe["top5"], 2),
              "pretrain_s": round(seconds), "status": run.status})


if __name__ == "__main__":
    main()
