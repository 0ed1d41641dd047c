"""Where LP-FT starts: the probe-initialized head's loss before any fine-tuning step, on what fine-tuning feeds it.

The semi-supervised protocol (``course_lib.evaluate.semi_supervised``) starts fine-tuning from the same-label
linear probe, fitted on clean images in evaluation mode; fine-tuning then feeds augmented crops (scale 0.5-1 +
flip) in training mode. This prints the head's cross-entropy on 256 labelled images in the four combinations, and
the features' per-dimension std, for a random-init N1 and (on the digits) the preset's VICReg N1: a start far
above the clean loss means large first gradients (README, "The coursework's budget", the random-init collapse).

    python benchmarks/lpft_start.py            # the digits, `cpu` preset: ~1 min on 2 cores
    DATA=~/data python benchmarks/lpft_start.py coursework  # CIFAR-10 from DATA, random-init only
"""
import sys, torch, torch.nn.functional as F
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from course_lib import data, diagnostics, evaluate, train
from course_lib.augment import build_views
from course_lib.augment import prepare
from course_lib.config import resolve
preset = sys.argv[1] if len(sys.argv) > 1 else "cpu"
cfg = resolve(preset, device="cpu", **({"data_root": __import__("os").environ.get("DATA", "~/data")} if preset != "cpu" else {}))
a = data.load_sets(cfg)[0]
frac = 0.1
encs = {"random-init": diagnostics.untrained_encoder(cfg, "N1", a)}
if preset == "cpu":
    encs["vicreg"] = train.pretrain_vicreg(cfg, "N1", a, progress=False).encoder
sub = evaluate.labelled_subset(a, frac, cfg.seed)
x, y = a.x_train[sub], a.y_train[sub]
views = build_views("crop-flip", cfg.image_size, (0.5, 1.0)).first
for name, enc in encs.items():
    f = evaluate.embed(enc, x, cfg)
    head = evaluate.fit_linear_head(f, y, a.num_classes, cfg)
    model = evaluate.probe_initialized(enc, head)
    std = f.std(0)
    out = {"feature std median": round(float(std.median()), 3), "|W| max": round(float(model.head.weight.abs().max()), 2)}
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        xa = views(x[:256], g)
        xc = prepare(x[:256], cfg.image_size)
        for mode in ("eval", "train"):
            model.train(mode == "train")
            out[f"clean/{mode}"] = round(float(F.cross_entropy(model(xc), y[:256])), 3)
            out[f"augmented/{mode}"] = round(float(F.cross_entropy(model(xa), y[:256])), 3)
    print(name, out, flush=True)
