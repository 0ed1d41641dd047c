"""How N1's pooling layout was chosen, and issue 3's real-data check, rerunnable.

N1's figure is lost: the coursework fixes its five convolutions and its 403,530
parameters, not where it pools. The layout sets both the speed of a training step and
the quality of the representation, so it was picked on data, not on the test split:

* ``select``: VICReg-pretrain each candidate layout for ``--epochs`` epochs on 35,000 of
  the 40,000 training images of an image-folder CIFAR-10 tree, then linear-probe it on
  the other 5,000 (class-balanced, seeded); the untrained network (BatchNorm statistics
  of the training images) beside it. The ``test/`` images are not touched.
* ``holdout``: course_lib's N1 as it is, 5 epochs on all of ``train/``, probed on ``test/``
  (issue 3: 40,000 training images, the other 10,000 held out).

Both use the cpu preset with ``augmentation="ssl-cifar"`` and crops of 20-100 %, like the
notebooks' real-data run in the README. One JSON line per result goes to stdout and to
``--out``. CPU times on two cores: ``select`` 3-6 min per layout, ``holdout`` ~19 min.

    python benchmarks/n1_layouts.py select --data-root data/cifar10-holdout
    python benchmarks/n1_layouts.py holdout --data-root data/cifar10-holdout
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib import models  # noqa: E402
from course_lib.config import resolve  # noqa: E402
from course_lib.data import balanced_subset, load_dataset  # noqa: E402
from course_lib.diagnostics import untrained_encoder  # noqa: E402
from course_lib.evaluate import linear_probe  # noqa: E402
from course_lib.train import pretrain  # noqa: E402


class _PoolBeforeNorm(models.N1):
    """N1 with each max-pool moved between the convolution and its BatchNorm (cheaper BN and ReLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv, norm, relu) in enumerate(self.blocks):
            x = conv(x)
            if i in self.pool_after and x.shape[-1] >= 4:
                x = nn.functional.max_pool2d(x, 2)
            x = relu(norm(x))
        return self.fc(self.pool(x).flatten(1))


def _layout(name: str, pool_after: tuple[int, ...], before_norm: bool = False) -> type[models.N1]:
    return type(name, (_PoolBeforeNorm if before_norm else models.N1,), {"pool_after": pool_after})


#: Candidates: 0-based indices of the convolutions followed by a max-pool ("B": pool before BatchNorm).
LAYOUTS = {
    "1-4": _layout("N1_1234", (0, 1, 2, 3)),  # N1 revision 2
    "1-4B": _layout("N1_1234B", (0, 1, 2, 3), True),
    "1,2,4": _layout("N1_124", (0, 1, 3)),
    "1,2,4B": _layout("N1_124B", (0, 1, 3), True),
    "1,3,4": _layout("N1_134", (0, 2, 3)),  # N1 revision 3, today's
    "1,3,4B": _layout("N1_134B", (0, 2, 3), True),
    "1,3": _layout("N1_13", (0, 2)),  # N1 revision 1
}


def _config(epochs: int, runs_dir: str, **overrides):
    return resolve("cpu", encoder="N1", dataset_b="none", pretrain_epochs=epochs, augmentation="ssl-cifar",
                   crop_scale=(0.2, 1.0), runs_dir=runs_dir, **overrides)


def _measure(cfg, encoder_name: str, data) -> dict:
    """VICReg-pretrain ``encoder_name``, then linear-probe it and the untrained network on ``data``."""
    t0 = time.perf_counter()
    run = pretrain(cfg, encoder_name, data, progress=False)
    seconds = time.perf_counter() - t0
    vicreg = linear_probe(run.encoder, data, cfg)
    untrained = linear_probe(untrained_encoder(cfg, encoder_name, data), data, cfg)
    return {"epochs": cfg.pretrain_epochs, "train": len(data.y_train), "test": len(data.y_test),
            "vicreg_top1": round(vicreg["top1"], 2), "vicreg_top5": round(vicreg["top5"], 2),
            "untrained_top1": round(untrained["top1"], 2), "pretrain_s": round(seconds),
            "knn_top1_per_epoch": [round(m["knn_top1"], 2) for m in run.epoch_metrics]}


def _emit(record: dict, out: str | None) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def select(args) -> None:
    full = load_dataset("imagefolder", args.data_root)
    val = balanced_subset(full.y_train, 0.125, seed=123)
    keep = torch.ones(len(full.y_train), dtype=torch.bool)
    keep[val] = False
    data = replace(full, name=f"{full.name} select", x_train=full.x_train[keep], y_train=full.y_train[keep],
                   x_test=full.x_train[val], y_test=full.y_train[val])
    # monitor off, 30 probe epochs: a ranking, cheaper than the notebooks' 100
    cfg = _config(args.epochs, args.runs_dir, probe_epochs=30, monitor_every=0)
    for name in args.layouts:
        key = f"N1-layout-{name}"
        models.ENCODERS[key], models.ENCODER_REVISIONS[key] = LAYOUTS[name], 0
        _emit({"mode": "select", "layout": name, **_measure(cfg, key, data)}, args.out)


def holdout(args) -> None:
    data = load_dataset("imagefolder", args.data_root)
    _emit({"mode": "holdout", "encoder_revision": models.ENCODER_REVISIONS["N1"],
           **_measure(_config(args.epochs, args.runs_dir), "N1", data)}, args.out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["select", "holdout"])
    parser.add_argument("--data-root", required=True, help="an image-folder tree: train/<class>/*, test/<class>/*")
    parser.add_argument("--epochs", type=int, default=None, help="VICReg epochs (default: select 2, holdout 5)")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--runs-dir", default="build/n1-layouts/runs", help="checkpoints (a rerun resumes)")
    parser.add_argument("--out", default=None, help="append the JSON lines here")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (2 if args.mode == "select" else 5)
    select(args) if args.mode == "select" else holdout(args)


if __name__ == "__main__":
    main()
