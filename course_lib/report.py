"""Results: rows saved by the notebooks, assembled into ``report/results.csv`` and ``results.md``.

Introduced in notebook 05. A notebook records every number it measures with
:func:`save_rows`; the report is built from those files only, so nothing in
``report/`` is typed by hand. The coursework's and the literature's numbers below
are *references*, quoted from their sources, and always shown as such.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .config import Config

COLUMNS = ["dataset", "set", "encoder", "method", "protocol", "top1", "top5", "epochs", "seconds"]

#: The coursework's section 7.2 / 7.4 (CIFAR-10 = set A, Tiny ImageNet = set B; N2 = ResNet-18).
COURSEWORK = {
    ("A", "N1", "supervised", "supervised"): (70.6, 97.6),
    ("A", "ResNet-18", "supervised", "supervised"): (68.1, 96.5),
    ("A", "N1", "vicreg", "linear"): (64.8, 96.9),
    ("A", "ResNet-18", "vicreg", "linear"): (89.6, 99.7),
    ("A", "ResNet-18", "vicreg", "finetune-1%"): (85.5, 99.2),
    ("A", "ResNet-18", "vicreg", "finetune-10%"): (90.3, 99.7),
    ("B", "ResNet-18", "vicreg", "linear"): (52.3, 74.0),
    ("B", "ResNet-18", "vicreg", "finetune-1%"): (79.7, 94.7),
    ("B", "ResNet-18", "vicreg", "finetune-10%"): (86.4, 95.9),
}

#: The coursework's budgets: every encoder trained 30 epochs on CIFAR-10's 50,000 training images; the linear
#: probe and fine-tuning ran 20 epochs; the probe used all of a set's training labels (A 50,000, B 100,000).
COURSEWORK_ENCODER_EPOCHS = 30
COURSEWORK_PROTOCOL_EPOCHS = 20
COURSEWORK_TRAIN_IMAGES = {"A": 50_000, "B": 100_000}
#: Datasets the coursework used, by set (our loaders' names start with these).
COURSEWORK_DATA = {"A": "cifar10", "B": "tiny-imagenet"}

#: Published CIFAR-10 top-1 for ResNet-18 (what a properly trained network reaches).
LITERATURE = {
    ("A", "ResNet-18", "supervised", "supervised"): ("93-95", "supervised ResNet-18, standard augmentation and schedule"),
    ("A", "ResNet-18", "vicreg", "linear"): ("92.07", "solo-learn VICReg, 1000 epochs"),
}


def metrics_dir(cfg: Config) -> Path:
    folder = cfg.out_path / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def encoder_budget(method: str, cfg: Config, images: int) -> dict:
    """The training an encoder had before a protocol ran on it: ``encoder_epochs`` on ``encoder_images`` of A.

    ``method`` is "supervised", "random-init", "pixels" or an SSL method (``cfg.pretrain_epochs`` of it)."""
    epochs = {"supervised": cfg.supervised_epochs, "random-init": 0, "pixels": 0}.get(method, cfg.pretrain_epochs)
    return {"encoder_epochs": int(epochs), "encoder_images": int(images) if epochs else 0}


def make_row(set_: str, dataset: str, encoder: str, method: str, protocol: str, result: dict, **extra) -> dict:
    """One results row; ``result`` holds ``top1``, ``top5``, ``epochs``, ``seconds`` (as the evaluators return)."""
    row = {
        "dataset": dataset, "set": set_, "encoder": encoder, "method": method, "protocol": protocol,
        "top1": round(float(result["top1"]), 2), "top5": round(float(result["top5"]), 2),
        "epochs": int(result["epochs"]), "seconds": round(float(result["seconds"]), 1),
    }
    row.update(extra)
    return row


def save_rows(cfg: Config, stage: str, rows: list[dict]) -> Path:
    """Write one notebook's rows to ``<out_dir>/metrics/<stage>.json`` (replacing its earlier rows)."""
    path = metrics_dir(cfg) / f"{stage}.json"
    path.write_text(json.dumps(rows, indent=1))
    return path


def save_baselines(cfg: Config, top1_by_set: dict[str, float]) -> None:
    """Record the raw-pixel linear probe's top-1 per set (context for the report, not a results row)."""
    (metrics_dir(cfg) / "baselines.txt").write_text(json.dumps(top1_by_set))


def save_data_description(cfg: Config, sets: dict) -> None:
    """Record which data each set was (name, split sizes, classes, side) for the report's header."""
    info = {k: {"name": ds.name, "train": len(ds.y_train), "test": len(ds.y_test), "classes": ds.num_classes,
                "px": ds.image_size} for k, ds in sets.items() if ds is not None}
    (metrics_dir(cfg) / "data.txt").write_text(json.dumps(info))


def _data_lines(cfg: Config) -> list[str]:
    path = metrics_dir(cfg) / "data.txt"
    if not path.exists():
        return []
    return [f"- set {k}: {v['name']}, {v['train']:,} training and {v['test']:,} test images, {v['classes']} classes, "
            f"{v['px']} px as the encoders see it" for k, v in json.loads(path.read_text()).items()]


def load_baselines(cfg: Config) -> dict[str, float] | None:
    path = metrics_dir(cfg) / "baselines.txt"
    return json.loads(path.read_text()) if path.exists() else None


def load_rows(cfg: Config) -> pd.DataFrame:
    """Every saved row of this preset's run, in the report's column order."""
    rows = []
    for path in sorted(metrics_dir(cfg).glob("*.json")):
        rows += json.loads(path.read_text())
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    # Notebooks 04 and 05 both probe the VICReg encoder with the same budget: one row, with the columns of
    # both (05 adds the effective rank). A different pretraining budget keeps its own row.
    if "pretrain_epochs" not in df.columns:
        df["pretrain_epochs"] = None
    key = ["set", "encoder", "method", "protocol", "epochs", "pretrain_epochs"]
    df = df.groupby(key, dropna=False, sort=False).first().reset_index()
    extra = [c for c in df.columns if c not in COLUMNS]
    order = {"supervised": 0, "linear": 1, "finetune-1%": 2, "finetune-10%": 3, "knn": 4}
    df = df[COLUMNS + extra]
    df = df.assign(_p=df["protocol"].map(order).fillna(9)).sort_values(["set", "_p", "encoder", "method"])
    return df.drop(columns="_p").reset_index(drop=True)


def _pick(df: pd.DataFrame, set_, encoder, method, protocol) -> pd.Series | None:
    """The row of that set/encoder/method/protocol; of several (04's and 05's VICReg), the longest-trained."""
    m = df[(df["set"] == set_) & (df["encoder"] == encoder) & (df["method"] == method) & (df["protocol"] == protocol)]
    if "encoder_epochs" in m:
        m = m.sort_values("encoder_epochs", ascending=False, na_position="last")
    return None if m.empty else m.iloc[0]


def _get(df: pd.DataFrame, set_, encoder, method, protocol) -> float | None:
    row = _pick(df, set_, encoder, method, protocol)
    return None if row is None else float(row["top1"])


def _short_note(df: pd.DataFrame, *keys) -> str:
    """", but not comparable: ..." naming which of our rows in a claim were short-trained ("" when none)."""
    notes = []
    for key in keys:
        row = _pick(df, *key)
        verdict = comparability(row) if row is not None and "encoder_epochs" in row else ""
        if verdict.startswith("no: short-trained"):
            notes.append(f"our {key[1]} {key[2]} {verdict.removeprefix('no: ')}")
    return f" — not comparable: {'; '.join(notes)}" if notes else ""


def _int(value) -> int | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else int(value)


def budget_text(row) -> str:
    """A row's training budget in words: "VICReg 12 ep x 50,000; probe 100 ep x 50,000"."""
    epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
    if epochs is None:
        return "—"
    if row["protocol"] == "supervised":
        return f"{epochs} ep x {images:,}"
    encoder = "untrained" if not epochs else f"{row['method']} {epochs} ep x {images:,}"
    n = _int(row.get("protocol_images"))
    if row["protocol"] == "knn":
        return f"{encoder}; kNN on {n:,}" if n else encoder
    return f"{encoder}; {row['protocol']} {int(row['epochs'])} ep" + (f" x {n:,}" if n else "")


def _coursework_data(set_: str, dataset) -> bool:
    """Whether ``dataset`` (a loader's name) is the data the coursework used for ``set_``."""
    return str(dataset).lower().startswith(COURSEWORK_DATA.get(set_, "?"))


def comparability(row) -> str:
    """"yes" when a row had the coursework's data and at least its budget, else "no: " and what differs."""
    set_ = row["set"]
    if not _coursework_data(set_, row.get("dataset", "")):
        return f"no: other data ({row['dataset']})"
    short = []
    epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
    if epochs is None:
        return "no: budget not recorded"
    if row["method"] not in ("random-init", "pixels"):
        if epochs < COURSEWORK_ENCODER_EPOCHS:
            short.append(f"{epochs} of {COURSEWORK_ENCODER_EPOCHS} epochs")
        if images < COURSEWORK_TRAIN_IMAGES["A"]:
            short.append(f"{images:,} of {COURSEWORK_TRAIN_IMAGES['A']:,} images of A")
    if row["protocol"] != "supervised":
        if row["protocol"] != "knn" and int(row["epochs"]) < COURSEWORK_PROTOCOL_EPOCHS:
            short.append(f"{row['protocol']} {int(row['epochs'])} of {COURSEWORK_PROTOCOL_EPOCHS} epochs")
        n = _int(row.get("protocol_images"))
        fraction = {"finetune-1%": 0.01, "finetune-10%": 0.1}.get(row["protocol"], 1.0)
        wanted = round(fraction * COURSEWORK_TRAIN_IMAGES[set_])
        if n is not None and n < wanted:
            short.append(f"{row['protocol']} on {n:,} of {wanted:,} images of {set_}")
    return "yes" if not short else "no: short-trained (" + "; ".join(short) + ")"


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Our top-1/top-5 beside the coursework's and the literature's, for every row the coursework reports,
    with our budget and whether the two numbers are comparable (:func:`comparability`)."""
    out = []
    for (set_, enc, method, protocol), (c1, c5) in COURSEWORK.items():
        row = _pick(df, set_, enc, method, protocol)  # the longest-trained (04's VICReg rather than 05's short one)
        lit = LITERATURE.get((set_, enc, method, protocol), ("", ""))
        out.append({
            "set": set_, "encoder": enc, "method": method, "protocol": protocol,
            "ours top1": None if row is None else float(row["top1"]),
            "ours top5": None if row is None else float(row["top5"]),
            "coursework top1": c1, "coursework top5": c5,
            "literature top1": lit[0],
            "our budget": "not run" if row is None else budget_text(row),
            "comparable": "—" if row is None else comparability(row),
        })
    return pd.DataFrame(out)


def _compare(claim: str, ours: tuple[float | None, float | None], theirs: tuple[float, float], what: str) -> str | None:
    """A sentence on whether our ordering of two numbers agrees with the coursework's."""
    a, b = ours
    if a is None or b is None:
        return None
    t = theirs[0] - theirs[1]
    o = a - b
    verdict = "agrees" if (o > 0) == (t > 0) else "**disagrees**"
    return f"- {claim}: coursework {theirs[0]:.1f} vs {theirs[1]:.1f} ({t:+.1f} points); ours {a:.1f} vs {b:.1f} ({o:+.1f}): {verdict}{what}."


def findings(df: pd.DataFrame, baselines: dict | None = None) -> list[str]:
    """Plain sentences, computed from the rows, on where our numbers and the coursework's disagree."""
    cw = {k: v[0] for k, v in COURSEWORK.items()}
    g = lambda *k: _get(df, *k)  # noqa: E731
    claims = [  # (claim, the row expected higher, the row expected lower), as the coursework found them
        ("Supervised N1 beats supervised ResNet-18 on A",
         ("A", "N1", "supervised", "supervised"), ("A", "ResNet-18", "supervised", "supervised")),
        ("VICReg + linear probe beats the supervised ResNet-18 on A",
         ("A", "ResNet-18", "vicreg", "linear"), ("A", "ResNet-18", "supervised", "supervised")),
        ("VICReg + linear probe on N1 stays below supervised N1 on A",
         ("A", "N1", "supervised", "supervised"), ("A", "N1", "vicreg", "linear")),
        ("On B, fine-tuning ResNet-18 with 1 % of the labels beats the linear probe on all of them",
         ("B", "ResNet-18", "vicreg", "finetune-1%"), ("B", "ResNet-18", "vicreg", "linear")),
        ("On A, fine-tuning ResNet-18 with 10 % of the labels beats the linear probe",
         ("A", "ResNet-18", "vicreg", "finetune-10%"), ("A", "ResNet-18", "vicreg", "linear")),
    ]
    lines = [
        _compare(claim, (g(*hi), g(*lo)), (cw[hi], cw[lo]), _short_note(df, hi, lo))
        for claim, hi, lo in claims
    ]
    lines = [line for line in lines if line]
    for enc in ("N1", "ResNet-18"):
        for set_ in ("A", "B"):
            v, r = g(set_, enc, "vicreg", "linear"), g(set_, enc, "random-init", "linear")
            if v is not None and r is not None:
                lines.append(
                    f"- {enc}, set {set_}: VICReg's linear top-1 is {v:.1f} %, random-init's {r:.1f} % "
                    f"({v - r:+.1f} points: {'pretraining helps' if v > r else '**pretraining does not help here**'})."
                )
    if baselines:
        for set_, acc in sorted(baselines.items()):
            probes = df[(df["set"] == set_) & (df["protocol"] == "linear")]
            below = sorted(f"{r.encoder} {r.method}" for r in probes.itertuples() if r.top1 <= acc)
            verdict = (f"every encoder's linear probe beats it, by {probes['top1'].min() - acc:.1f} points or more"
                       if not below else f"**{', '.join(below)} do{'es' if len(below) == 1 else ''} not beat it**")
            lines.append(f"- A linear probe on the raw pixels of set {set_} reaches {acc:.1f} % top-1, the floor "
                         f"any encoder should beat: {verdict}." if len(probes) else
                         f"- A linear probe on the raw pixels of set {set_} reaches {acc:.1f} % top-1.")
    lines += [
        "- Literature: a properly trained ResNet-18 reaches about 93-95 % supervised top-1 on CIFAR-10, so the "
        "coursework's 68.1 % (and its finding that N1 beats ResNet-18) points to under-training, not to the "
        "architecture.",
        "- Literature: solo-learn's VICReg ResNet-18 reaches 92.07 % linear top-1 on CIFAR-10 only after 1000 "
        "epochs; the coursework's 89.6 % after 30 epochs is implausibly high.",
        "- The coursework's Tiny ImageNet fine-tuning with 1 % of the labels (5 images per class) reaches 79.7 % "
        "top-1, 27 points above its own linear probe trained on all labels (52.3 %): implausible on its face.",
    ]
    return lines


def _md(df: pd.DataFrame) -> str:
    def fmt(v):
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return "—"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(fmt(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def write_report(cfg: Config) -> tuple[Path, Path]:
    """Write ``<out_dir>/report/results.csv`` and ``results.md`` from the saved rows."""
    df = load_rows(cfg)
    baselines = load_baselines(cfg)
    folder = cfg.out_path / "report"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / "results.csv", folder / "results.md"
    df.to_csv(csv_path, index=False)
    few_classes = sorted(set(df.loc[df["classes"] <= 5, "dataset"])) if "classes" in df else []
    datasets = ", ".join(f"set {s} = {d}" for s, d in df[["set", "dataset"]].drop_duplicates().itertuples(index=False))
    budgets = []
    for name in cfg.encoders:
        ecfg = cfg.for_encoder(name)
        images = f"{ecfg.train_images:,} training images of each set" if ecfg.train_images else "all training images"
        budgets.append(f"{name}: VICReg {ecfg.pretrain_epochs} epochs, supervised {ecfg.supervised_epochs}, on {images}"
                       + (f", fine-tuning with {', '.join(f'{f:.0%}' for f in ecfg.label_fractions)} of the labels"
                          if ecfg.label_fractions else ", no fine-tuning"))
    comparison = comparison_table(df)
    verdicts = comparison.loc[comparison["ours top1"].notna(), "comparable"]
    same_data = all(_coursework_data(s_, d) for s_, d in df[["set", "dataset"]].drop_duplicates().itertuples(index=False))
    if not same_data:
        verdict = (f"this run measured {datasets}, not the coursework's data: compare orderings and gaps, "
                   "not values.")
    elif (verdicts == "yes").all():
        verdict = "this run measured the same sets with at least the coursework's budget: the values are comparable."
    else:
        verdict = (f"this run measured the same sets, but {int((verdicts != 'yes').sum())} of its {len(verdicts)} rows "
                   "below had a smaller budget than the coursework's (column `comparable`): those values are **not "
                   "comparable** with the coursework's; read them as what that budget buys.")
    text = [
        "# Results",
        "",
        f"Preset `{cfg.preset}`: {datasets}; linear probe {cfg.probe_epochs} epochs, fine-tuning "
        f"{cfg.finetune_epochs}; batch {cfg.batch_size}; seed {cfg.seed}. Every number below comes from "
        "`results.csv`, which the notebooks wrote; top-1/top-5 in percent on the test split.",
        "",
        "Data:",
        "",
        *_data_lines(cfg),
        "",
        "Budgets (the coursework: every encoder 30 epochs on all 50,000 CIFAR-10 training images, probe and "
        "fine-tuning 20 epochs):",
        "",
        *[f"- {b}" for b in budgets],
        "",
        "## What we measured",
        "",
        _md(df[[c for c in COLUMNS + ["encoder_epochs", "encoder_images"] if c in df.columns]]),
        "",
        "## Beside the coursework (its section 7.4) and the literature",
        "",
        "The coursework measured CIFAR-10 (A) and Tiny ImageNet (B); " + verdict,
        "",
        _md(comparison),
        "",
        "## Where they agree and disagree",
        "",
        *findings(df, baselines),
    ]
    if few_classes:
        text += ["", f"Top-5 is 100 % by construction on {', '.join(few_classes)}: it has no more than five classes."]
    md_path.write_text("\n".join(text) + "\n")
    return csv_path, md_path
