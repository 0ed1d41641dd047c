"""BatchNorm's running statistics after training against statistics recomputed over clean training images.

Evaluation mode normalizes with each BatchNorm layer's running averages, which training wrote from augmented
crops while the weights moved. This prints, for the preset's supervised classifiers and VICReg encoders, test
top-1 with the statistics as trained and with those of ``course_lib.runtime.recalibrate_batchnorm`` (one pass
over up to 10,000 whole training images, no labels): the classifier itself, and a linear probe and kNN on the
frozen encoder.

    python benchmarks/bn_statistics.py              # the digits, `cpu` preset (trains what runs/ lacks)
    DATA=~/data python benchmarks/bn_statistics.py coursework N1
"""
import os, sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from course_lib import data, evaluate, train
from course_lib.config import resolve
from course_lib.runtime import recalibrate_batchnorm

preset = sys.argv[1] if len(sys.argv) > 1 else "cpu"
extra = {"data_root": os.environ.get("DATA", "~/data")} if preset not in ("cpu", "test") else {}
cfg = resolve(preset, device="cpu", **extra)
encoders = sys.argv[2].split(",") if len(sys.argv) > 2 else list(cfg.encoders)
A = data.load_sets(cfg)[0]


def frozen(enc, ecfg, a):
    """(linear probe, kNN) top-1 of a frozen encoder on all of ``a``'s labels, as notebook 04 measures them."""
    out = evaluate.frozen_protocols(enc, a, ecfg)
    return out["linear"]["top1"], out["knn"]["top1"]


print(f"preset {preset}, set A = {A.name}; test top-1 % with BatchNorm's statistics as trained -> recomputed")
for name in encoders:
    ecfg, a = data.budget(cfg, name, A)
    sup = train.train_supervised(ecfg, name, a, progress=False).modules["model"]
    vic = train.pretrain_vicreg(ecfg, name, a, progress=False).encoder
    new_sup = recalibrate_batchnorm(sup, a.x_train, ecfg)
    new_vic = recalibrate_batchnorm(vic, a.x_train, ecfg)
    rows = {
        "supervised classifier": (evaluate.topk_accuracy(evaluate.predict(sup, a.x_test, ecfg), a.y_test)["top1"],
                                  evaluate.topk_accuracy(evaluate.predict(new_sup, a.x_test, ecfg), a.y_test)["top1"]),
    }
    for label, old, new in (("supervised encoder", sup.encoder, new_sup.encoder), ("VICReg encoder", vic, new_vic)):
        (p0, k0), (p1, k1) = frozen(old, ecfg, a), frozen(new, ecfg, a)
        rows[f"{label}: linear probe"], rows[f"{label}: kNN"] = (p0, p1), (k0, k1)
    for label, (old, new) in rows.items():
        print(f"  {name:10s} {label:32s} {old:5.1f} -> {new:5.1f}  ({new - old:+.1f})")
