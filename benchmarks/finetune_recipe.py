"""Choose the fine-tuning learning rate of a preset on a validation split carved from set A's training images.

The semi-supervised protocol (``course_lib.evaluate.semi_supervised``) is run on a validation split: a
class-balanced ``--val-images`` of A's *training* images play the test split, the labelled 1 % / 10 % are drawn
from the rest, and the official test split is never looked at. Every learning rate of ``--lrs`` gets the
preset's step budget from the same VICReg encoder (the preset's, loaded: run ``make coursework-runs`` first; with
``--inits vicreg,random-init`` also from the random-init encoder); beside each the same-label linear probe and kNN. One JSON line per run goes to
``--out``; the table printed at the end is what the preset's ``finetune_lr`` was chosen from (README, "The
coursework's budget").

    python benchmarks/finetune_recipe.py --preset coursework -p data_root=~/data --encoder N1 \\
        --out benchmarks/recorded/cpu-2core-2026-12-02-finetune-recipe.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, no install needed

from course_lib import data, diagnostics, evaluate, train  # noqa: E402
from course_lib.config import parse_param, resolve, with_overrides  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="coursework")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--encoder", default="N1")
    ap.add_argument("--lrs", default="0.003,0.01,0.03", help="fine-tuning learning rates to try")
    ap.add_argument("--inits", default="vicreg", help="starting points to try: vicreg, random-init or both")
    ap.add_argument("--heads", default=None, help="LP-FT heads to try: views, clean or both (default: the preset's)")
    ap.add_argument("--fractions", default="0.01,0.1")
    ap.add_argument("--val-images", type=int, default=5_000, help="training images held out as the validation split")
    ap.add_argument("--out", default=None, help="append one JSON line per run here")
    args = ap.parse_args(argv)
    params = dict(parse_param(p) for p in args.param)
    cfg = resolve(args.preset, encoder=args.encoder, **params)
    ecfg, a = data.budget(cfg, args.encoder, data.load_sets(cfg)[0])
    val = data.validation_split(a, args.val_images)
    # the preset's VICReg run is loaded when it has finished (trained first when not: only with --inits vicreg)
    inits = {"vicreg": lambda: train.pretrain_vicreg(ecfg, args.encoder, a).encoder,
             "random-init": lambda: diagnostics.untrained_encoder(ecfg, args.encoder, val)}
    inits = {k: make() for k, make in inits.items() if k in args.inits.split(",")}
    heads = args.heads.split(",") if args.heads else [ecfg.finetune_head]
    rows = []
    for fraction, lr, init, head in ((float(f), float(v), i, h) for f in args.fractions.split(",")
                             for v in args.lrs.split(",") for i in inits for h in heads):
        enc = inits[init]
        t0 = time.perf_counter()
        out = evaluate.semi_supervised(enc, val, with_overrides(ecfg, finetune_lr=lr, finetune_head=head),
                                       fraction, init=f"recipe-{init}-{args.encoder}", progress=False)
        row = {"preset": cfg.preset, "encoder": args.encoder, "init": init, "head": head,
               "fraction": fraction, "lr": lr,
               "steps": out["finetune"]["steps"], "batch": out["finetune"]["batch"],
               "labels": out["finetune"]["labels"], "val_images": len(val.y_test),
               "finetune_top1": round(out["finetune"]["top1"], 2), "linear_top1": round(out["linear"]["top1"], 2),
               "knn_top1": round(out["knn"]["top1"], 2), "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(f"\n{'init':<12} {'head':<6} {'fraction':>8} {'lr':>7} {'fine-tune':>9} {'probe':>7} {'kNN':>7}"
          "  (validation top-1, %)")
    for r in rows:
        print(f"{r['init']:<12} {r['head']:<6} {r['fraction']:>8g} {r['lr']:>7g} {r['finetune_top1']:>9.1f} "
              f"{r['linear_top1']:>7.1f} {r['knn_top1']:>7.1f}")
    for init in inits:
        for head in heads:
            for fraction in sorted({r["fraction"] for r in rows}):
                best = max((r for r in rows if r["init"] == init and r["head"] == head and r["fraction"] == fraction),
                           key=lambda r: r["finetune_top1"])
                print(f"best lr for {init}, {head} head, {fraction:g} of the labels: {best['lr']:g} "
                      f"({best['finetune_top1']:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
