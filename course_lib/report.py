"""The report: ``report/results.csv`` and ``results.md`` rendered from a run's saved rows, and each page's top line.

Introduced in notebook 05. A notebook records every number it measures (:mod:`course_lib.results`); the report is
built from those files only, so nothing in ``report/`` is typed by hand. The coursework's and the literature's
numbers it shows beside ours are *references*, and its conclusions are the verdicts of
:mod:`course_lib.claims`. This module only writes Markdown: :func:`findings` and :func:`finetune_findings` in
sentences, :func:`conclusions_section` and :func:`write_report`.

The notebooks reach rows and claims through this module (``report.make_row``, ``report.check_claims``): it
re-exports the names of :mod:`course_lib.results` and :mod:`course_lib.claims` they use (:data:`__all__`).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import noise
from .claims import (
    CLAIMS, COURSEWORK, COURSEWORK_TRAIN_IMAGES, HELD, LITERATURE, NOISE, NOT_COMPARABLE, NOT_HELD, NOT_RUN,
    OTHER_DATA, Claim, _coursework_data, check_claim, check_claims, comparability, comparison_table, noise_tolerance,
    resolve_key, verdict_flips, verdict_summary, verdict_table,
)
from .config import METHOD_TITLES, Config, project_root
from .narrate import listing
from .results import (
    COLUMNS, PROTOCOL_ORDER, REAL_DATA_CSV, _default_real_data, encoder_budget, load_baselines, load_data_description,
    load_results, load_rows, make_row, metrics_dir, pick, real_data_path, save_baselines, save_data_description,
    save_rows, test_split_sizes, top1_of,
)

# What the notebooks and tests reach through this module: the names of .results and .claims they use, then the
# report's own.
__all__ = [
    "COLUMNS", "PROTOCOL_ORDER", "REAL_DATA_CSV", "encoder_budget", "load_baselines", "load_results", "load_rows",
    "make_row", "metrics_dir", "pick", "real_data_path", "save_baselines", "save_data_description", "save_rows", "test_split_sizes",
    "top1_of",
    "CLAIMS", "COURSEWORK", "COURSEWORK_TRAIN_IMAGES", "HELD", "LITERATURE", "NOISE", "NOT_COMPARABLE", "NOT_HELD",
    "NOT_RUN", "OTHER_DATA", "Claim", "check_claim", "check_claims", "comparability", "comparison_table",
    "noise_tolerance", "resolve_key", "verdict_flips", "verdict_summary", "verdict_table",
    "DATASET_TITLES", "REPORT_FIGURES", "VERDICT_LEGEND", "conclusions_section", "findings", "finetune_findings", "page_line",
    "write_report",
]

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


def _data_lines(description: dict | None) -> list[str]:
    """The report's "Data:" lines, one per set, from :func:`~course_lib.results.load_data_description`."""
    if description is None:
        return []
    lines = []
    for k, v in description.items():
        files = v.get("files")
        lines.append(f"- set {k}: {v['name']}, {v['train']:,} training images ({v['train'] / v['classes']:,.0f} per "
                     f"class) and {v['test']:,} test images, {v['classes']} classes, {v['px']} px as the encoders see it"
                     + (f"; read from {files}" if files else "")
                     + ("; JPEG re-encodings differ from the original pixels (CIFAR-10's originals are lossless), so "
                        "numbers can differ slightly from a run on the originals"
                        if files and files.startswith("JPEG") and k == "A" and "cifar" in v["name"].lower() else ""))
    return lines


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
    # `why` (course_lib.claims.CLAIMS), which the report's conclusions print beside the verdict.
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
        knn_row = pick(df, r.set, r.encoder, r.method, f"knn-{share}")
        if probe is None:
            continue
        tol = tolerance.get(r.set, noise_tolerance(None))
        said = {"higher": "fine-tuning adds", "same": "within noise of its probe",
                "lower": "**below its own probe: the fine-tuning recipe failed here**"}[noise.verdict(r.top1, probe, tol)]
        per_class = getattr(r, "per_class", None)
        labels = f" ({per_class:g} per class)" if isinstance(per_class, (int, float)) and per_class == per_class else ""
        k = None if knn_row is None else knn_row.get("k")  # the neighbours it voted with (rows before: no column)
        k_text = f" ({int(k)}-NN)" if k is not None and not pd.isna(k) else ""
        knn_text = f", kNN{k_text} {knn_row['top1']:.1f} %" if knn_row is not None else ""
        who = f"{METHOD_TITLES.get(r.method, r.method)} {r.encoder}"
        lines.append(f"- {who}, set {r.set}, {share.replace('%', ' %')} of the labels{labels}: "
                     f"fine-tuned {r.top1:.1f} %, linear probe {probe:.1f} %{knn_text} ({r.top1 - probe:+.1f} points "
                     f"over the probe, noise tolerance ±{tol:.1f}: {said}).")
    return lines


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


#: The figures a report page shows under its header when the run drew them (notebooks 06 and 04), with their captions.
REPORT_FIGURES = (("accuracy_overview", "Every result at a glance: top-1 on the test splits per protocol, encoder and "
                   "method, with chance and the raw-pixel floor"),
                  ("semi_supervised", "What a few labels buy: kNN, linear probe and fine-tuning on the same "
                   "labelled images"))


def rows_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every row as the report page lists it, narrow enough for a page: the data set is in the header, the method
    as papers write it, and the encoder's training as one column ("30 ep x 50,000")."""
    def trained(row) -> str:
        epochs, images = row.get("encoder_epochs"), row.get("encoder_images")
        if pd.isna(epochs) or not epochs:
            return "—"
        return f"{int(epochs)} ep" + (f" x {int(images):,}" if not pd.isna(images) and images else "")

    out = pd.DataFrame({
        "set": df["set"], "encoder": df["encoder"],
        "method": df["method"].map(lambda m: METHOD_TITLES.get(m, m)), "protocol": df["protocol"],
        "top-1": df["top1"], "top-5": df["top5"],
        "encoder trained": df.apply(trained, axis=1) if len(df) else pd.Series(dtype=str),
        "protocol epochs": df["epochs"], "seconds": df["seconds"],
    })
    return out.reset_index(drop=True)


def _figure_lines(cfg: Config) -> list[str]:
    """Markdown images of :data:`REPORT_FIGURES` that this run drew, linked where the report is promoted to
    (``report/<folder>/results.md`` -> ``figures/<folder>/``)."""
    up = "../" if not cfg.report_folder else "../../"
    where = f"figures/{cfg.report_folder}/" if cfg.report_folder else "figures/"
    return [f"**Figure.** {caption}.\n\n![{caption}]({up}{where}{name}.png)\n"
            for name, caption in REPORT_FIGURES if (cfg.out_path / "figures" / f"{name}.png").exists()]


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
        *_data_lines(load_data_description(cfg)),
        "",
        "Budgets (the coursework: every encoder 30 epochs on all 50,000 CIFAR-10 training images, probe and "
        "fine-tuning 20 epochs):",
        "",
        *[f"- {b}" for b in budgets],
        "",
        *_figure_lines(cfg),
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
    text += ["", "## Every measured row", "",
             f"{len(df)} rows; the data sets are named above, and `results.csv` has every column. *Encoder trained*: "
             "the epochs and training images the encoder had before the protocol ran (— for none).", "",
             _md(rows_table(df))]
    if few_classes:
        text += ["", f"Top-5 is 100 % by construction on {', '.join(few_classes)}: it has no more than five classes."]
    text += ["", *conclusions_section(df, test_split_sizes(df, cfg), real_data=None if same_data else (
        real_data if real_data is not None else _default_real_data()))]
    md_path.write_text("\n".join(text) + "\n")
    return csv_path, md_path
