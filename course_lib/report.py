"""Results: rows saved by the notebooks, assembled into ``report/results.csv`` and ``results.md``.

Introduced in notebook 05. A notebook records every number it measures with
:func:`save_rows`; the report is built from those files only, so nothing in
``report/`` is typed by hand. The coursework's and the literature's numbers below
are *references*, quoted from their sources, and always shown as such.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import METHOD_TITLES, Config, project_root
from . import noise
from .narrate import listing, pct, points

COLUMNS = ["dataset", "set", "encoder", "method", "protocol", "top1", "top5", "epochs", "seconds"]

#: The coursework's section 7.2 / 7.4 (CIFAR-10 = set A, Tiny ImageNet = set B; N2 = its ResNet-18,
#: our encoder "N2": a 3x3 first conv and the max-pool kept).
COURSEWORK = {
    ("A", "N1", "supervised", "supervised"): (70.6, 97.6),
    ("A", "N2", "supervised", "supervised"): (68.1, 96.5),
    ("A", "N1", "vicreg", "linear"): (64.8, 96.9),
    ("A", "N2", "vicreg", "linear"): (89.6, 99.7),
    ("A", "N2", "vicreg", "finetune-1%"): (85.5, 99.2),
    ("A", "N2", "vicreg", "finetune-10%"): (90.3, 99.7),
    ("B", "N2", "vicreg", "linear"): (52.3, 74.0),
    ("B", "N2", "vicreg", "finetune-1%"): (79.7, 94.7),
    ("B", "N2", "vicreg", "finetune-10%"): (86.4, 95.9),
}

#: The coursework's budgets: every encoder trained 30 epochs on CIFAR-10's 50,000 training images; the linear
#: probe and fine-tuning ran 20 epochs; the probe used all of a set's training labels (A 50,000, B 100,000).
COURSEWORK_ENCODER_EPOCHS = 30
COURSEWORK_PROTOCOL_EPOCHS = 20
COURSEWORK_TRAIN_IMAGES = {"A": 50_000, "B": 100_000}
#: Datasets the coursework used, by set (our loaders' names start with these).
COURSEWORK_DATA = {"A": "cifar10", "B": "tiny-imagenet"}

#: Published CIFAR-10 top-1 for ResNet-18 with the CIFAR stem (what a properly trained network reaches), shown
#: beside the coursework's N2 rows.
LITERATURE = {
    ("A", "N2", "supervised", "supervised"): ("93-95", "supervised ResNet-18, standard augmentation and schedule"),
    ("A", "N2", "vicreg", "linear"): ("92.07", "solo-learn VICReg, 1000 epochs"),
}

#: The encoder a table without the coursework's N2 shows in its place: the literature's CIFAR-stem ResNet-18. Its
#: rows stand in for N2's (labelled so); a value claim is then not comparable.
STAND_INS = {"N2": "ResNet-18"}


def resolve_key(df: pd.DataFrame, key: tuple) -> tuple:
    """``key`` with its encoder replaced by its stand-in (:data:`STAND_INS`) when ``df`` has no row of its own."""
    if pick(df, *key) is None and key[1] in STAND_INS:
        other = (key[0], STAND_INS[key[1]], *key[2:])
        if pick(df, *other) is not None:
            return other
    return key


DATASET_TITLES = {"cifar10": "CIFAR-10", "tiny-imagenet": "Tiny ImageNet", "digits-a": "digits 0-4",
                  "digits-b": "digits 5-9", "digits-scattered-a": "scattered digits 0-4",
                  "digits-scattered-b": "scattered digits 5-9"}


def page_line(cfg: Config, when: str | None = None) -> str:
    """The one line at the top of every notebook page: which preset, data, encoders and hardware produced it.

    Example:
        >>> from course_lib.config import resolve
        >>> page_line(resolve("test", device="cpu", precision="fp32"), when="2026-12-02")
        '**This page was produced by** preset `test`: set A = scattered digits 0-4, set B = scattered digits 5-9, encoders N1 and ResNet-18; cpu, fp32; 2026-12-02.'
    """
    import datetime

    def title(spec: str | None) -> str:
        if not spec:
            return "none"
        return DATASET_TITLES.get(spec, spec.split(":", 1)[-1] if ":" in spec else spec)

    dtype = cfg.amp_dtype
    precision = {None: "fp32", "torch.bfloat16": "bf16 autocast", "torch.float16": "fp16 autocast"}.get(
        None if dtype is None else str(dtype), str(dtype))
    when = when or datetime.date.today().isoformat()
    return (f"**This page was produced by** preset `{cfg.preset}`: set A = {title(cfg.dataset_a)}, "
            f"set B = {title(cfg.dataset_b)}, encoders {listing(cfg.encoders)}; {cfg.torch_device.type}, {precision}; "
            f"{when}.")


#: Every protocol a results table can hold, in the order the tables list them.
PROTOCOL_ORDER = ("supervised", "linear", "knn", "knn-1%", "linear-1%", "finetune-1%", "knn-10%", "linear-10%",
                  "finetune-10%")


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
    from .realdata import file_formats

    specs = {"A": cfg.dataset_a, "B": cfg.dataset_b}
    info = {k: {"name": ds.name, "train": len(ds.y_train), "test": len(ds.y_test), "classes": ds.num_classes,
                "px": ds.image_size, "files": file_formats(specs[k], cfg.data_root) if specs.get(k) else None}
            for k, ds in sets.items() if ds is not None}
    (metrics_dir(cfg) / "data.txt").write_text(json.dumps(info))


def _data_lines(cfg: Config) -> list[str]:
    path = metrics_dir(cfg) / "data.txt"
    if not path.exists():
        return []
    lines = []
    for k, v in json.loads(path.read_text()).items():
        files = v.get("files")
        lines.append(f"- set {k}: {v['name']}, {v['train']:,} training images ({v['train'] / v['classes']:,.0f} per "
                     f"class) and {v['test']:,} test images, {v['classes']} classes, {v['px']} px as the encoders see it"
                     + (f"; read from {files}" if files else "")
                     + ("; JPEG re-encodings differ from the original pixels (CIFAR-10's originals are lossless), so "
                        "numbers can differ slightly from a run on the originals"
                        if files and files.startswith("JPEG") and k == "A" and "cifar" in v["name"].lower() else ""))
    return lines


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
    for column in ("pretrain_epochs", "study"):
        if column not in df.columns:
            df[column] = None
    key = ["set", "encoder", "method", "protocol", "epochs", "pretrain_epochs", "study"]  # a study's rows stay apart
    df = df.groupby(key, dropna=False, sort=False).first().reset_index()
    extra = [c for c in df.columns if c not in COLUMNS]
    order = {protocol: i for i, protocol in enumerate(PROTOCOL_ORDER)}
    df = df[COLUMNS + extra]
    df = df.assign(_p=df["protocol"].map(order).fillna(9)).sort_values(["set", "_p", "encoder", "method"])
    return df.drop(columns="_p").reset_index(drop=True)


def pick(df: pd.DataFrame, set_, encoder, method, protocol, epochs: int | None = None) -> pd.Series | None:
    """The row of that set/encoder/method/protocol; of several (04's and 05's VICReg), the longest-trained.

    Rows of a study (column ``study``, e.g. notebook 04's epochs study) are left out, unless ``epochs`` asks for the
    epochs study's row of the encoder kept after that many epochs."""
    m = df[(df["set"] == set_) & (df["encoder"] == encoder) & (df["method"] == method) & (df["protocol"] == protocol)]
    studied = m["study"].notna() & (m["study"] != "") if "study" in m else pd.Series(False, index=m.index)
    if epochs is not None:
        ok = "encoder_epochs" in m and "study" in m
        m = m[studied & (m["study"] == "epochs") & (m["encoder_epochs"] == epochs)] if ok else m[:0]
    else:
        m = m[~studied]
    if "encoder_epochs" in m:
        m = m.sort_values("encoder_epochs", ascending=False, na_position="last")
    return None if m.empty else m.iloc[0]


def top1_of(df: pd.DataFrame, set_, encoder, method, protocol) -> float | None:
    """The top-1 of :func:`pick`'s row, or None."""
    row = pick(df, set_, encoder, method, protocol)
    return None if row is None else float(row["top1"])


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
    if row["protocol"].startswith("knn"):
        return f"{encoder}; kNN on {n:,}" if n else encoder
    steps = _int(row.get("steps"))
    if steps is not None:  # fine-tuning: a step budget
        return f"{encoder}; {row['protocol']} {steps} steps" + (f" x {_int(row.get('batch'))} of {n:,}" if n else "")
    return f"{encoder}; {row['protocol']} {int(row['epochs'])} ep" + (f" x {n:,}" if n else "")


def label_fraction(protocol: str) -> float:
    """The share of a set's training labels a protocol used: "finetune-1%" -> 0.01, "linear" -> 1.0."""
    tail = str(protocol).rsplit("-", 1)[-1]
    return float(tail[:-1]) / 100 if tail.endswith("%") else 1.0


def coursework_steps(labels: int) -> int:
    """The coursework's fine-tuning steps on ``labels`` images: 20 epochs at batch 256 (a ragged batch dropped,
    at least one step per epoch)."""
    return COURSEWORK_PROTOCOL_EPOCHS * max(1, labels // 256)


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
        n = _int(row.get("protocol_images"))
        fraction = label_fraction(row["protocol"])
        wanted = round(fraction * COURSEWORK_TRAIN_IMAGES[set_])
        steps = _int(row.get("steps"))
        if steps is not None:  # a step budget: at least the coursework's 20 epochs' steps on its labelled images
            if steps < coursework_steps(wanted):
                short.append(f"{row['protocol']} {steps} of {coursework_steps(wanted)} steps")
        elif not row["protocol"].startswith("knn") and int(row["epochs"]) < COURSEWORK_PROTOCOL_EPOCHS:
            short.append(f"{row['protocol']} {int(row['epochs'])} of {COURSEWORK_PROTOCOL_EPOCHS} epochs")
        if n is not None and n < wanted:
            short.append(f"{row['protocol']} on {n:,} of {wanted:,} images of {set_}")
    return "yes" if not short else "no: short-trained (" + "; ".join(short) + ")"


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Our top-1/top-5 beside the coursework's and the literature's, for every row the coursework reports,
    with our budget and whether the two numbers are comparable (:func:`comparability`)."""
    out = []
    for (set_, enc, method, protocol), (c1, c5) in COURSEWORK.items():
        ours = resolve_key(df, (set_, enc, method, protocol))
        row = pick(df, *ours)  # the longest-trained (04's VICReg rather than 05's short one)
        lit = LITERATURE.get((set_, enc, method, protocol), ("", ""))
        comparable = "—" if row is None else comparability(row)
        if row is not None and ours[1] != enc:
            comparable = f"no: our {ours[1]} (CIFAR stem), not the coursework's {enc}"
        out.append({
            "set": set_, "encoder": enc if ours[1] == enc else f"{enc} (ours: {ours[1]})", "method": method,
            "protocol": protocol,
            "ours top1": None if row is None else float(row["top1"]),
            "ours top5": None if row is None else float(row["top5"]),
            "coursework top1": c1, "coursework top5": c5,
            "literature top1": lit[0],
            "our budget": "not run" if row is None else budget_text(row),
            "comparable": comparable,
        })
    return pd.DataFrame(out)


def findings(df: pd.DataFrame, baselines: dict | None = None, tolerance: dict[str, float] | None = None) -> list[str]:
    """Plain sentences, computed from the rows: what pretraining added over random weights, and the raw-pixel floor.

    The coursework's own claims (its orderings and values) are judged once, with the noise and the budget counted,
    by :func:`check_claims` in the report's conclusions; this section does not judge them a second time.
    ``tolerance``: points per set (:func:`course_lib.noise.tolerance`), else from the data sets' names.
    """
    tolerance = tolerance or {s: noise_tolerance(n) for s, n in test_split_sizes(df).items()}
    lines = ["- The coursework's claims, each with one verdict (held, did not hold, within noise, not comparable), "
             "are checked under *Conclusions* below."]
    for enc in [e for e in dict.fromkeys(df["encoder"]) if isinstance(e, str)]:
        for set_ in ("A", "B"):
            v, r = top1_of(df, set_, enc, "vicreg", "linear"), top1_of(df, set_, enc, "random-init", "linear")
            if v is None or r is None:
                continue
            tol = tolerance.get(set_, noise_tolerance(None))
            said = {"higher": "pretraining helps", "same": "**within noise**: no measurable gain from pretraining",
                    "lower": "**pretraining does worse than random weights here**"}[noise.verdict(v, r, tol)]
            lines.append(f"- {enc}, set {set_}: VICReg's linear top-1 is {v:.1f} %, random-init's {r:.1f} % "
                         f"({v - r:+.1f} points, noise tolerance ±{tol:.1f}: {said}).")
    if baselines:
        for set_, acc in sorted(baselines.items()):
            probes = df[(df["set"] == set_) & (df["protocol"] == "linear")]
            below = sorted(f"{r.encoder} {r.method}" for r in probes.itertuples() if r.top1 <= acc)
            verdict = (f"every encoder's linear probe beats it, by {probes['top1'].min() - acc:.1f} points or more"
                       if not below else f"**{', '.join(below)} do{'es' if len(below) == 1 else ''} not beat it**")
            lines.append(f"- A linear probe on the raw pixels of set {set_} reaches {acc:.1f} % top-1, the floor "
                         f"any encoder should beat: {verdict}." if len(probes) else
                         f"- A linear probe on the raw pixels of set {set_} reaches {acc:.1f} % top-1.")
    # The literature's side of each claim (93-95 %, 92.07 %, the implausible fine-tuning) is in each claim's
    # `why` (CLAIMS below), which the report's conclusions print beside the verdict.
    return lines


def finetune_findings(df: pd.DataFrame, tolerance: dict[str, float] | None = None) -> list[str]:
    """What fine-tuning added: each fine-tune beside the linear probe and kNN of the same frozen encoder on the *same*
    labelled images (rows ``finetune-1%``, ``linear-1%``, ``knn-1%``...), judged by the course's noise rule.

    A fine-tune that ends below its own same-label probe by more than noise is flagged: it started from that probe
    (LP-FT), so ending below it means the recipe (learning rate, steps) failed there, not that the encoder did.
    ``tolerance``: points per set, as for :func:`findings`.
    """
    tolerance = tolerance or {s: noise_tolerance(n) for s, n in test_split_sizes(df).items()}
    lines = []
    tuned = df[df["protocol"].astype(str).str.startswith("finetune-")]
    for r in tuned.itertuples(index=False):
        share = r.protocol.removeprefix("finetune-")
        probe = top1_of(df, r.set, r.encoder, r.method, f"linear-{share}")
        knn = top1_of(df, r.set, r.encoder, r.method, f"knn-{share}")
        if probe is None:
            continue
        tol = tolerance.get(r.set, noise_tolerance(None))
        said = {"higher": "fine-tuning adds", "same": "within noise of its probe",
                "lower": "**below its own probe: the fine-tuning recipe failed here**"}[noise.verdict(r.top1, probe, tol)]
        per_class = getattr(r, "per_class", None)
        labels = f" ({per_class:g} per class)" if isinstance(per_class, (int, float)) and per_class == per_class else ""
        knn_text = f", kNN {knn:.1f} %" if knn is not None else ""
        lines.append(f"- {r.encoder} {r.method}, set {r.set}, {share.replace('%', ' %')} of the labels{labels}: "
                     f"fine-tuned {r.top1:.1f} %, linear probe {probe:.1f} %{knn_text} ({r.top1 - probe:+.1f} points "
                     f"over the probe, noise tolerance ±{tol:.1f}: {said}).")
    return lines


# ----------------------------------------------------------------------- conclusions: the coursework's claims, checked
# Introduced in notebook 06. Each claim of the coursework's conclusions gets a verdict computed from a table of
# rows (this run's, or a committed results.csv): held, did not hold, within noise, not comparable, or not run.

HELD, NOT_HELD, NOISE = "held", "did not hold", "within noise"
NOT_COMPARABLE, OTHER_DATA, NOT_RUN = "not comparable at this budget", "not comparable: other data", "not run"
VERDICTS = (HELD, NOT_HELD, NOISE, NOT_COMPARABLE, OTHER_DATA, NOT_RUN)

#: Test-split sizes of the coursework's data sets (CIFAR-10's test split, Tiny ImageNet's validation split), for
#: the noise tolerance of a table whose run left no ``metrics/data.txt`` behind (a committed results.csv).
TEST_IMAGES = {"cifar10": 10_000, "tiny-imagenet": 10_000}

#: An ordering between two of our trained rows is "not comparable at this budget" when the row that came out ahead
#: saw more than this many times the training images (epochs x images) of the other: the gap may be the budget's.
#: (Against an untrained row the gap *is* what training buys, which is what such a claim tests.)
BUDGET_FACTOR = 2.0

#: Where the real-data tables live, relative to the project root: ``make coursework``'s (the coursework's budget),
#: else ``make report-cifar``'s (the quick one). The first that exists is the report's real-data table.
REAL_DATA_CSVS = (Path("report") / "coursework" / "results.csv", Path("report") / "cpu-cifar" / "results.csv")
REAL_DATA_CSV = REAL_DATA_CSVS[-1]

_SUP_N1, _SUP_R18 = ("A", "N1", "supervised", "supervised"), ("A", "N2", "supervised", "supervised")
_VIC_N1, _VIC_R18 = ("A", "N1", "vicreg", "linear"), ("A", "N2", "vicreg", "linear")
_B_LIN, _B_FT1, _B_FT10 = (("B", "N2", "vicreg", p) for p in ("linear", "finetune-1%", "finetune-10%"))
_cw = lambda key: COURSEWORK[key][0]  # noqa: E731


def noise_tolerance(test_images: int | None) -> float:
    """Points within which two top-1 accuracies on one test split count as "about the same":
    :func:`course_lib.noise.tolerance` (the course's one rule). 226 test images: 6.7 points; 10,000: 1.0."""
    return noise.tolerance(test_images)


def test_split_sizes(df: pd.DataFrame, cfg: Config | None = None) -> dict[str, int]:
    """Test images per set: from the run's ``metrics/data.txt`` when ``cfg`` has one, else from the data set's
    name (:data:`TEST_IMAGES`); a set whose size is unknown is left out."""
    path = metrics_dir(cfg) / "data.txt" if cfg is not None else None
    if path is not None and path.exists():
        return {k: int(v["test"]) for k, v in json.loads(path.read_text()).items()}
    out = {}
    for set_, dataset in df[["set", "dataset"]].drop_duplicates().itertuples(index=False):
        size = next((n for name, n in TEST_IMAGES.items() if str(dataset).lower().startswith(name)), None)
        if size:
            out[set_] = size
    return out


def load_results(path: Path | str | None = None) -> pd.DataFrame | None:
    """A committed ``results.csv`` (default: the real-data one, :data:`REAL_DATA_CSV` under the project root),
    or None when the file does not exist."""
    path = Path(path) if path is not None else _default_real_data()
    return pd.read_csv(path) if path.exists() else None


@dataclass(frozen=True)
class Claim:
    """One claim of the coursework's conclusions, as a test on a results table.

    ``kind="order"``: our ``hi`` row must beat the best of the ``lo`` rows (as it did in the coursework);
    ``kind="value"``: our ``hi`` row must reach the coursework's value (only on its data and budget).
    ``fallback``: the encoder to test instead when this run has no rows of the claim's own encoder.
    ``why``: the reasoning from the literature, true whatever our numbers are.
    """

    name: str
    text: str
    kind: str
    hi: tuple
    lo: tuple = ()
    fallback: str | None = None
    why: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("supervised N1 beats N2",
          f"Supervised N1 beats supervised N2 (its ResNet-18) on CIFAR-10: {_cw(_SUP_N1)} % vs {_cw(_SUP_R18)} %.",
          "order", _SUP_N1, (_SUP_R18,),
          why=f"A ResNet-18 trained with a standard schedule reaches about {LITERATURE[_SUP_R18][0]} % on CIFAR-10, "
              "far above both: after 30 epochs the 11 M-parameter network is under-trained, so this ordering "
              "measures the schedule, not the architecture."),
    Claim("VICReg on N2 is best",
          f"VICReg on N2 (its ResNet-18) gives the best CIFAR-10 encoder: {_cw(_VIC_R18)} % linear top-1, above both "
          f"supervised networks ({_cw(_SUP_N1)} %, {_cw(_SUP_R18)} %) and VICReg on N1 ({_cw(_VIC_N1)} %).",
          "order", _VIC_R18, (_SUP_N1, _SUP_R18, _VIC_N1),
          why=f"solo-learn's VICReg ResNet-18 reaches {LITERATURE[_VIC_R18][0]} % only after 1000 epochs, with "
              "colour jitter, grayscale and solarization; the coursework's value after 30 epochs of crops and flips "
              "alone (an augmentation Chen et al., 2020, found far weaker than crops with colour distortion) is "
              "implausibly close to it. And in the literature a linear probe on self-supervised features stays "
              f"below the supervised network trained as long ({LITERATURE[_VIC_R18][0]} % vs about "
              f"{LITERATURE[_SUP_R18][0]} %): the coursework's lead of VICReg over supervision measures the "
              "supervised networks' short training."),
    Claim("VICReg on N1 below supervised N1",
          f"VICReg on N1 stays below supervised N1 on CIFAR-10: {_cw(_VIC_N1)} % vs {_cw(_SUP_N1)} %.",
          "order", _SUP_N1, (_VIC_N1,),
          why="The supervised network is trained for exactly the labels the probe measures; self-supervised "
              "features close that gap only with long training (ResNet-18 on CIFAR-10: "
              f"{LITERATURE[_VIC_R18][0]} % for VICReg after 1000 epochs against about {LITERATURE[_SUP_R18][0]} % "
              "supervised)."),
    Claim("Tiny ImageNet linear probe",
          f"A linear probe on VICReg's N2 (its ResNet-18) reaches {_cw(_B_LIN)} % top-1 ({COURSEWORK[_B_LIN][1]} % top-5) on "
          "Tiny ImageNet, whose 200 categories the encoder never saw.",
          "value", _B_LIN,
          why="Chance is 0.5 % among 200 categories, and at 32 px many of them are hard to tell apart even with "
              "labels; we know no published number for this transfer, so only a run with the coursework's data "
              "and budget can check the value."),
    Claim("Tiny ImageNet 1 % fine-tuning",
          f"Fine-tuning on Tiny ImageNet with 1 % of the labels (5 images per class) reaches {_cw(_B_FT1)} %, "
          f"{_cw(_B_FT1) - _cw(_B_LIN):.1f} points above the linear probe trained on all of them ({_cw(_B_LIN)} %).",
          "order", _B_FT1, (_B_LIN,), fallback="N1",
          why="Implausible on its face: 1,000 labelled images cannot train a 200-class classifier far better than "
              "100,000 do on the same encoder. The coursework's result points to a flaw in its evaluation "
              "(e.g. test images seen in training), not to a real effect."),
    Claim("Tiny ImageNet 10 % fine-tuning",
          f"Fine-tuning on Tiny ImageNet with 10 % of the labels reaches {_cw(_B_FT10)} %, "
          f"{_cw(_B_FT10) - _cw(_B_LIN):.1f} points above the linear probe on all of them ({_cw(_B_LIN)} %).",
          "order", _B_FT10, (_B_LIN,), fallback="N1",
          why=f"{_cw(_B_FT10)} % among 200 categories would be above what the coursework's own supervised networks "
              f"reached among CIFAR-10's 10 classes with every label ({_cw(_SUP_N1)} %, {_cw(_SUP_R18)} %): "
              "not credible without an error in the evaluation."),
    Claim("30 epochs is best",
          "Of 20, 30 and 40 epochs of VICReg, 30 gave the best encoder; with more, \"overfitting began\" "
          "(section 7.3).",
          "epochs", _VIC_R18, (20, 30, 40), fallback="N1",
          why="Self-supervised encoders of CIFAR-10 are trained for hundreds of epochs (solo-learn: 1000) and their "
              "linear accuracy keeps rising long after 40; a drop from 30 to 40 epochs in one run of each is as "
              "likely to be noise (a seed, a test split) as overfitting, which would need several seeds to show."),
)


@dataclass(frozen=True)
class Verdict:
    """A claim, the verdict our table gives it (one of :data:`VERDICTS`), and the sentences that justify it."""

    claim: Claim
    verdict: str
    evidence: str
    reason: str = ""

    def markdown(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        why = f" Why: {self.claim.why}" if self.claim.why else ""
        return f"- *{self.claim.text}* **{self.verdict.capitalize()}.** {self.evidence}{reason}{why}"




def _label(key) -> str:
    """``("A", "N1", "vicreg", "linear")`` -> ``"VICReg N1 + linear probe"``."""
    _, enc, method, protocol = key
    if protocol == "supervised":
        return f"supervised {enc}"
    name = METHOD_TITLES.get(method, method)
    if protocol.startswith("finetune-"):
        return f"{name} {enc} fine-tuned on {protocol.removeprefix('finetune-').replace('%', ' %')} of the labels"
    return f"{name} {enc} + {'linear probe' if protocol == 'linear' else protocol}"


def _encoder_label(key) -> str:
    """``("A", "N1", "vicreg", "linear")`` -> ``"VICReg N1"`` (the encoder a row's protocol ran on)."""
    _, enc, method, _ = key
    return f"{'supervised' if method == 'supervised' else METHOD_TITLES.get(method, method)} {enc}"


def _seen(row) -> int | None:
    """Training images an encoder saw: epochs x images (None when the row does not record its budget)."""
    epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
    return None if epochs is None or images is None else epochs * images


def _budget(row) -> str:
    text = budget_text(row)
    return "" if text == "—" else f" ({text})"


def _trained(a, b, labels: tuple[str, str], same: bool = False) -> str:
    """"; both encoders trained 4 epochs on 675 images" (or each's, named by ``labels``; ``same``: the two rows
    share one encoder), "" when a row does not record it."""
    said = []
    for row in (a, b):
        epochs, images = _int(row.get("encoder_epochs")), _int(row.get("encoder_images"))
        if epochs is None or images is None:
            return ""
        said.append(f"trained {epochs} epoch{'s' if epochs != 1 else ''} on {images:,} images" if epochs else "untrained")
    if same:
        return f"; one encoder, {said[0]}"
    if said[0] == said[1]:
        return f"; both encoders {said[0]}"
    return f"; the {labels[0]} {said[0]}, the {labels[1]} {said[1]}"


def _with_encoder(key, encoder) -> tuple:
    return (key[0], encoder, *key[2:])


def check_claim(df: pd.DataFrame, claim: Claim, tol: float = 1.0) -> Verdict:
    """The verdict ``df`` gives ``claim``; two accuracies within ``tol`` points are "within noise"."""
    if claim.kind == "epochs":
        return _check_epochs(df, claim, tol)
    keys = (claim.hi, *claim.lo)
    note = ""
    resolved = tuple(resolve_key(df, k) for k in keys)
    stood = sorted({k[1] for k, r in zip(keys, resolved) if k != r})
    if stood:
        keys = resolved
        note = "".join(f" (our {STAND_INS[e]} with the CIFAR stem stands in for {e}: this run has no {e} rows)"
                       for e in stood)
    if any(pick(df, *k) is None for k in keys) and claim.fallback:
        other = tuple(_with_encoder(k, claim.fallback) for k in keys)
        if all(pick(df, *k) is not None for k in other):
            note = f" (with {claim.fallback}: this run has no {claim.hi[1]} rows for it)"
            keys = other
    rows = {k: pick(df, *k) for k in keys}
    missing = [k for k, r in rows.items() if r is None]
    if missing:
        return Verdict(claim, NOT_RUN, f"This run has no {listing([_label(k) for k in missing])} row.")
    hi_key, lo_keys = keys[0], keys[1:]
    hi = rows[hi_key]
    dataset = str(hi.get("dataset", ""))
    on = "" if _coursework_data(hi_key[0], dataset) else f" on {dataset}"

    if claim.kind == "value":
        comp = comparability(hi) if "encoder_epochs" in hi else "no: budget not recorded"
        theirs, ours = _cw(claim.hi), float(hi["top1"])
        evidence = f"Ours{note}: {pct(ours)}{on}{_budget(hi)}."
        if comp.startswith("no: other data"):
            return Verdict(claim, OTHER_DATA, evidence, "A value measured on other data says nothing about "
                                                        "the coursework's.")
        if comp != "yes":
            return Verdict(claim, NOT_COMPARABLE, evidence, f"Our row is {comp.removeprefix('no: ')}.")
        if stood:
            return Verdict(claim, NOT_COMPARABLE, evidence, "Another architecture's value says nothing about the "
                                                            "coursework's.")
        verdict = HELD if ours >= theirs - tol else NOT_HELD
        return Verdict(claim, verdict, f"Ours{note}: {pct(ours)}, {points(ours, theirs, tol)} the coursework's "
                                       f"(noise tolerance ±{tol:.1f} points){_budget(hi)}.")

    lo_key = max(lo_keys, key=lambda k: float(rows[k]["top1"]))  # the strongest competitor
    lo = rows[lo_key]
    a, b = float(hi["top1"]), float(lo["top1"])
    evidence = (f"Ours{note}{on}: {_label(hi_key)} ({pct(a)}) is {points(a, b, tol)} {_label(lo_key)} ({pct(b)})"
                + (", the strongest of the rows it should beat" if len(lo_keys) > 1 else "")
                + f"; noise tolerance ±{tol:.1f} points"
                + _trained(hi, lo, (_encoder_label(hi_key), _encoder_label(lo_key)), hi_key[1:3] == lo_key[1:3])
                + ".")
    if abs(a - b) <= tol:
        return Verdict(claim, NOISE, evidence, "This run cannot tell the two apart.")
    (win_key, win), (lose_key, lose) = ((hi_key, hi), (lo_key, lo)) if a > b else ((lo_key, lo), (hi_key, hi))
    ws, ls = _seen(win), _seen(lose)
    if ws is not None and ls and ws > BUDGET_FACTOR * ls:  # (an untrained loser is what a pretraining claim tests)
        more = f"{ws / ls:,.0f}x"
        return Verdict(claim, NOT_COMPARABLE, evidence,
                       f"The {_encoder_label(win_key)} saw {more} the training images of the "
                       f"{_encoder_label(lose_key)}: "
                       "the gap may be the budget's.")
    return Verdict(claim, HELD if a > b else NOT_HELD, evidence)


def _check_epochs(df: pd.DataFrame, claim: Claim, tol: float) -> Verdict:
    """The epochs claim: the linear probe on A of the encoders kept after 20, 30 and 40 epochs (notebook 04's epochs
    study rows); judged on the claim's encoder if it has all three counts, else on its ``fallback``."""
    set_, _, method, protocol = claim.hi
    counts = claim.lo  # the epoch counts, the claimed best one in the middle
    curves = {}
    for enc in dict.fromkeys((claim.hi[1], claim.fallback, "N1", "ResNet-18")):
        if enc is None:
            continue
        rows = {e: pick(df, set_, enc, method, protocol, epochs=e) for e in counts}
        if any(r is not None for r in rows.values()):
            curves[enc] = rows
    if not curves:
        return Verdict(claim, NOT_RUN, f"This run has no epochs study ({', '.join(map(str, counts))} epochs of "
                                       f"{METHOD_TITLES.get(method, method)}; the coursework preset has one).")
    said = "; ".join(f"{enc}: " + ", ".join(f"{e} epochs {pct(float(r['top1']))}" for e, r in rows.items()
                                            if r is not None) for enc, rows in curves.items())
    full = [enc for enc, rows in curves.items() if all(r is not None for r in rows.values())]
    if not full:
        return Verdict(claim, NOT_RUN, f"Ours (linear probe on {set_}): {said}.",
                       f"No encoder has all of {', '.join(map(str, counts))} epochs.")
    enc = full[0]
    rows = curves[enc]
    note = "" if enc == claim.hi[1] else f" Judged on {enc}: {claim.hi[1]} has no {counts[-1]}-epoch point."
    evidence = f"Ours (linear probe on {set_}, noise tolerance ±{tol:.1f} points): {said}.{note}"
    comp = [comparability(r) for r in rows.values()]
    if any(c.startswith("no: other data") for c in comp):
        return Verdict(claim, OTHER_DATA, evidence, "An epochs curve on other data says nothing about the coursework's.")
    if any(c != "yes" and "epochs" not in c for c in comp):  # fewer epochs than 30 is the study's point, not a defect
        short = next(c for c in comp if c != "yes" and "epochs" not in c)
        return Verdict(claim, NOT_COMPARABLE, evidence, f"Our rows are {short.removeprefix('no: ')}.")
    lo, best, hi = (float(rows[e]["top1"]) for e in counts)
    if hi > best + tol:
        return Verdict(claim, NOT_HELD, evidence, f"{counts[-1]} epochs beat {counts[1]} by more than the noise: "
                                                  "no sign of overfitting.")
    if best > hi + tol and best >= lo - tol:
        return Verdict(claim, HELD, evidence)
    return Verdict(claim, NOISE, evidence, f"This run cannot tell {counts[1]} from {counts[-1]} epochs apart.")


def check_claims(df: pd.DataFrame, tolerance: dict[str, float] | float | None = None,
                 claims: tuple[Claim, ...] = CLAIMS) -> list[Verdict]:
    """Every claim's verdict. ``tolerance``: points per set (or one for all); None: from the data sets'
    names (:func:`test_split_sizes`, :func:`noise_tolerance`)."""
    if tolerance is None:
        sizes = test_split_sizes(df)
        tolerance = {s: noise_tolerance(sizes.get(s)) for s in ("A", "B")}
    tol = (lambda s: tolerance) if isinstance(tolerance, (int, float)) else (
        lambda s: tolerance.get(s, noise_tolerance(None)))
    return [check_claim(df, c, tol(c.hi[0])) for c in claims]


def verdict_summary(verdicts: list[Verdict]) -> str:
    """``"2 held, 1 did not hold and 3 not comparable at this budget"`` (the verdicts that occur, in order)."""
    counts = {v: sum(x.verdict == v for x in verdicts) for v in VERDICTS}
    return listing(f"{n} {v}" for v, n in counts.items() if n)


def verdict_table(tables: dict[str, list[Verdict]]) -> pd.DataFrame:
    """One row per claim, one column of verdicts per table (e.g. this run and the real-data one)."""
    names = [v.claim.name for v in next(iter(tables.values()))]
    return pd.DataFrame({title: [v.verdict for v in vs] for title, vs in tables.items()}, index=names)


def _default_real_data() -> Path:
    found = [project_root() / p for p in REAL_DATA_CSVS if (project_root() / p).exists()]
    return found[0] if found else project_root() / REAL_DATA_CSV


VERDICT_LEGEND = (
    "How to read a verdict. **Held** / **did not hold**: our ordering of the two numbers agrees / disagrees "
    "with the coursework's by more than the noise tolerance (two standard errors of an accuracy on the test "
    "split, at least 1 point); **within noise**: closer than that, so this run cannot tell; **not comparable at "
    "this budget**: the number that came out ahead had more than twice the training of the other, or a value "
    "was measured with less than the coursework's budget; **not comparable: other data**: a value measured on "
    "other data than the coursework's; **not run**: this run has no such row. An ordering on other data (the "
    "digits) is a verdict on that data: it says whether the coursework's reasoning carries over, not whether "
    "its numbers were right."
)


def _shown(path: Path) -> Path:
    """``path`` relative to the project root when it lies under it (as a reader of the repository sees it)."""
    try:
        return path.resolve().relative_to(project_root().resolve())
    except ValueError:
        return path


def verdict_flips(ours: list[Verdict], theirs: list[Verdict]) -> list[str]:
    """The claims whose verdict differs between two tables, as "claim (ours -> theirs)"."""
    return [f'"{a.claim.name}" ({a.verdict} -> {b.verdict})' for a, b in zip(ours, theirs) if a.verdict != b.verdict]


def conclusions_section(df: pd.DataFrame, sizes: dict[str, int] | None = None,
                        real_data: Path | str | None = None) -> list[str]:
    """The report's conclusions as Markdown lines: this table's verdicts, and, when ``real_data`` is given, the
    verdicts of that results.csv (or a line saying it is absent) and which verdicts differ between the two."""
    sizes = test_split_sizes(df) if sizes is None else sizes
    ours = check_claims(df, {s: noise_tolerance(sizes.get(s)) for s in ("A", "B")})
    datasets = ", ".join(f"set {s} = {d}" for s, d in df[["set", "dataset"]].drop_duplicates().itertuples(index=False))
    lines = ["## Conclusions: the coursework's claims, checked", "", VERDICT_LEGEND, "",
             f"### This run ({datasets})", "",
             f"Of the coursework's {len(ours)} claims, this run gives: {verdict_summary(ours)}.", "",
             *[v.markdown() for v in ours]]
    if real_data is None:
        return lines
    real_data = Path(real_data)
    shown = _shown(real_data)
    real = load_results(real_data)
    lines += ["", f"### On the coursework's data (`{shown}`)", ""]
    if real is None:
        return lines + [f"There is no real-data table at `{shown}` in this checkout, so nothing here is checked on "
                        "CIFAR-10 and Tiny ImageNet; `make report-cifar DATA=...` makes one."]
    theirs = check_claims(real)
    flips = verdict_flips(ours, theirs)
    real_sets = ", ".join(f"set {s} = {d}" for s, d in real[["set", "dataset"]].drop_duplicates().itertuples(index=False))
    return lines + [
        f"The committed real-data run ({real_sets}) gives: {verdict_summary(theirs)}. "
        + (f"Its verdicts differ from this run's for {listing(flips)}." if flips else
           "Its verdicts are the same as this run's."), "",
        *[v.markdown() for v in theirs]]


def _md(df: pd.DataFrame) -> str:
    def fmt(v):
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return "—"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(fmt(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def write_report(cfg: Config, real_data: Path | str | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/report/results.csv`` and ``results.md`` from the saved rows.

    A run on other data than the coursework's (the digits) also checks the claims on the real-data table
    ``real_data`` (default: the committed :data:`REAL_DATA_CSV`), or says that it is absent."""
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
        f"{cfg.finetune_steps} steps; batch {cfg.batch_size}; seed {cfg.seed}. Every number below comes from "
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
        "## What pretraining added, and the floor",
        "",
        *findings(df, baselines, {s: noise_tolerance(n) for s, n in test_split_sizes(df, cfg).items()}),
    ]
    tuned = finetune_findings(df, {s: noise_tolerance(n) for s, n in test_split_sizes(df, cfg).items()})
    if tuned:
        text += ["", "## What fine-tuning added, on the same labelled images", "",
                 "Each fine-tune starts from the linear probe fitted on its labelled images (LP-FT); beside it, that "
                 "probe and kNN with the same images as memory.", "", *tuned]
    if few_classes:
        text += ["", f"Top-5 is 100 % by construction on {', '.join(few_classes)}: it has no more than five classes."]
    text += ["", *conclusions_section(df, test_split_sizes(df, cfg), real_data=None if same_data else (
        real_data if real_data is not None else _default_real_data()))]
    md_path.write_text("\n".join(text) + "\n")
    return csv_path, md_path
