"""Figures: loss curves, image grids, augmented pairs and t-SNE panels.

Introduced in notebook 01. Every function draws one figure and, given a ``path``,
saves it there with :func:`save`: a PNG at :data:`DPI` for the notebooks and the website, and the same
figure as PDF and SVG beside it (vector files for papers and slides; scatter clouds inside them are
rasterized, so a t-SNE panel stays a small file). :func:`figure_path` says where a preset's figures go.
A figure is drawn and saved only here, never re-drawn in a notebook.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .config import FIGURE_FORMATS, METHOD_TITLES, Config

TERMS = ("loss", "invariance", "variance", "covariance")


#: Every figure the notebooks save, by file-name prefix (longest match wins): (caption, notebook that draws it).
#: The website's Figures page prints the caption and links the section of that notebook which makes the figure.
CAPTIONS: dict[str, tuple[str, str]] = {
    "vicreg_terms_toy": ("VICReg's three terms on toy embeddings: which term reacts to collapse, to a mismatch "
                         "between the views and to redundant dimensions.", "00_survey"),
    "collapse": ("Collapse diagnostics during pretraining (embedding std, effective rank, kNN) for every method, "
                 "against the untrained network.", "02_vicreg_pretraining"),
    "samples_set_a": ("A sample of set A's training images with their labels.", "01_supervised_baseline"),
    "loss_supervised": ("The supervised baseline's training loss per step, for each encoder.",
                        "01_supervised_baseline"),
    "augmented_pairs": ("Two augmented views of each image: what VICReg is asked to map close together.",
                        "02_vicreg_pretraining"),
    "augmented_pairs_": ("Two views per image under another augmentation (VICReg's ImageNet views or the CIFAR "
                         "recipe's), to set beside the coursework's crop + flip.", "02_vicreg_pretraining"),
    "loss_vicreg_": ("VICReg's loss and its three terms during pretraining, per step, for one encoder.",
                     "02_vicreg_pretraining"),
    "tsne_set_": ("t-SNE of test embeddings, coloured by class: raw pixels, random weights, supervised and "
                  "VICReg encoders side by side.", "03_tsne"),
    "semi_supervised": ("What a few labels buy: kNN, linear probe and fine-tuning on the same 1 % / 10 % of "
                        "labelled images, VICReg against random weights.", "04_evaluation"),
    "epochs_study_real_data": ("The coursework's epochs study on the real data: probe and kNN after 20, 30 and 40 "
                               "epochs of VICReg.", "07_studies"),
    "comparison_diagnostics": ("The five methods' diagnostics during pretraining at one budget.", "05_comparison"),
    "accuracy_overview": ("Every result at a glance: top-1 per protocol, encoder and method, with chance and the "
                          "raw-pixel floor.", "06_report"),
    "study_": ("One VICReg setting varied at a time (three seeds per point): its effect on the linear probe and "
               "kNN.", "07_studies"),
}


def caption_key(stem: str) -> str | None:
    """The :data:`CAPTIONS` key of a saved figure's file stem: the stem itself, else the longest key ending in ``_``
    that starts it (``loss_vicreg_`` for ``loss_vicreg_N1``); None when the figure has no caption."""
    keys = [k for k in CAPTIONS if stem == k or (k.endswith("_") and stem.startswith(k))]
    return max(keys, key=len) if keys else None


class FigurePath(type(Path())):
    """A figure's ``.png`` path that carries the formats its figure is saved in (``formats``, :func:`save`)."""

    formats: tuple[str, ...] = ()


def figure_path(cfg: Config, name: str) -> Path:
    """``<out_dir>/figures/<name>.png`` (the folder is made if needed), saved in ``cfg``'s ``figure_formats``."""
    folder = cfg.out_path / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = FigurePath(folder / f"{name}.png")
    path.formats = tuple(cfg.paths.figure_formats)
    return path


#: Resolution of the PNG files (and of the rasterized parts of the PDF and SVG files).
DPI = 200
#: The files every saved figure gets: PNG first (notebooks, website), then the vector versions.
FORMATS = FIGURE_FORMATS
# No timestamps or tool versions in the files, so an unchanged figure is an unchanged file.
_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
             "svg": {"Creator": None, "Date": None}}


#: The width a figure is shown at on the course's website (its content column, ~720 px at 96 px per inch) and in
#: a notebook at the page's width; wider figures are scaled down to it, and their text with them.
SITE_WIDTH_IN = 7.5
#: The smallest text a reader should meet at that width, in points.
MIN_TEXT_PT = 9.0


def _texts(fig: plt.Figure):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _shown_scale(fig: plt.Figure) -> float:
    """How much the figure shrinks to fit :data:`SITE_WIDTH_IN` (1 when it already fits), from its tight box."""
    renderer = fig.canvas.get_renderer()
    width = fig.get_tightbbox(renderer).width  # inches
    return min(1.0, SITE_WIDTH_IN / width) if width > 0 else 1.0


def smallest_text_pt(fig: plt.Figure) -> float:
    """The size, in points, of the figure's smallest text as a reader sees it at :data:`SITE_WIDTH_IN`."""
    texts = _texts(fig)
    return min(t.get_fontsize() for t in texts) * _shown_scale(fig) if texts else float("inf")


def legible(fig: plt.Figure, min_pt: float = MIN_TEXT_PT) -> plt.Figure:
    """Enlarge every text that would be shown below ``min_pt`` at the site's width (titles, ticks, legends,
    labels), then lay the figure out again. A wide figure's text is scaled up by the factor it will be shrunk."""
    for _ in range(3):  # larger text widens the figure a little: settle in a few rounds
        scale = _shown_scale(fig)
        small = [t for t in _texts(fig) if t.get_fontsize() * scale < min_pt - 1e-6]
        if not small:
            break
        for t in small:
            t.set_fontsize(min_pt / scale)
        try:  # a figure that keeps room for a legend under its panels says so in course_layout_rect
            fig.tight_layout(rect=getattr(fig, "course_layout_rect", None))
        except Exception:  # noqa: BLE001 - a layout the figure cannot tighten keeps its own
            pass
    return fig


def save(fig: plt.Figure, path: Path | None, formats: Sequence[str] | None = None) -> plt.Figure:
    """Make ``fig``'s text legible at the site's width (:func:`legible`), then save it as ``path`` (a ``.png``)
    and as each other format beside it (same stem): ``formats``, else the preset's when ``path`` comes from
    :func:`figure_path`, else :data:`FORMATS`.

    Introduced in notebook 00. Returns the figure, so a plotting function can end with ``return save(...)``.
    """
    legible(fig)
    if path is not None:
        formats = formats or getattr(path, "formats", ()) or FORMATS
        path = Path(path)
        with plt.rc_context({"svg.hashsalt": "ssl-course", "svg.fonttype": "none"}):  # stable ids, editable text
            for fmt in formats:
                fig.savefig(path.with_suffix(f".{fmt}"), dpi=DPI, bbox_inches="tight", metadata=_METADATA[fmt])
    return fig


def _finish(fig: plt.Figure, title: str | None, path: Path | None) -> plt.Figure:
    """The common ending of every plot: the title over all panels, a tight layout, the file."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def loss_curves(
    histories: dict[str, Sequence[dict[str, float]]],
    terms: Sequence[str] = TERMS,
    title: str = "",
    path: Path | None = None,
) -> plt.Figure:
    """One panel per logged term, one line per run, per iteration (light) and smoothed (dark)."""
    terms = [t for t in terms if any(t in h[0] for h in histories.values() if h)]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.6 * len(terms), 3.0), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for i, (name, hist) in enumerate(histories.items()):
            if not hist or term not in hist[0]:
                continue
            y = np.array([h[term] for h in hist])
            x = np.arange(1, len(y) + 1)
            color = f"C{i}"
            ax.plot(x, y, color=color, alpha=0.25, lw=0.8)
            w = max(1, len(y) // 30)
            ys = _smooth(y, w)
            ax.plot(x[len(x) - len(ys):], ys, color=color, lw=1.6, label=name)
        ax.set_title(term)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _finish(fig, title, path)


def image_grid(
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    ncols: int = 10,
    title: str = "",
    path: Path | None = None,
) -> plt.Figure:
    """A grid of uint8 (or [-1, 1] float) images, captioned with their class names."""
    images = images.detach().cpu()
    if images.dtype != torch.uint8:  # network input in [-1, 1]
        images = ((images.float() * 0.5 + 0.5).clamp(0, 1) * 255).to(torch.uint8)
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
            if labels is not None and classes is not None:
                ax.set_title(classes[int(labels[i])], fontsize=8)
    return _finish(fig, title, path)


def augmented_pairs(
    images: torch.Tensor, views, generator: torch.Generator, title: str = "", path: Path | None = None
) -> plt.Figure:
    """Rows: the original image, then its two augmented views (what the encoder is asked to match)."""
    view_a, view_b = views(images, generator)
    n = len(images)
    stacked = torch.cat([((images.float() / 255) * 2 - 1).cpu(), view_a.cpu(), view_b.cpu()])
    fig = image_grid(stacked, ncols=n, title=title)
    for ax, label in zip(fig.axes[::n], ("original", "view 1", "view 2")):
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=9)
    return save(fig, path)


def tsne_sample(labels: torch.Tensor, points: int, seed: int = 0, max_classes: int = 10) -> tuple[torch.Tensor, set[int]]:
    """Indices of up to ``points`` test images for a t-SNE figure, from at most ``max_classes`` classes.

    With more classes than that (Tiny ImageNet's 200), a seeded choice of ``max_classes`` of them: a t-SNE
    panel of 200 classes has ~10 points per class, and no palette tells 200 colours apart. Returns the
    indices (on ``labels``' device) and the set of classes shown.
    """
    g = torch.Generator().manual_seed(seed)
    y = labels.cpu()
    classes = y.unique(sorted=True)
    if len(classes) > max_classes:
        classes = classes[torch.randperm(len(classes), generator=g)[:max_classes]].sort().values
    pool = torch.isin(y, classes).nonzero().flatten()
    idx = pool[torch.randperm(len(pool), generator=g)[:points]]
    return idx.to(labels.device), set(classes.tolist())


def tsne_panels(
    panels: dict[str, np.ndarray],
    labels: np.ndarray,
    classes: Sequence[str],
    seed: int = 0,
    title: str = "",
    path: Path | None = None,
) -> plt.Figure:
    """t-SNE (scikit-learn, PCA init) of each feature matrix, side by side, coloured by class."""
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    present = len(np.unique(labels))
    palette = plt.get_cmap("tab10" if present <= 10 else "tab20")
    for ax, (name, feats) in zip(axes[0], panels.items()):
        perplexity = min(30.0, (len(feats) - 1) / 3)
        xy = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed, n_jobs=2).fit_transform(
            np.asarray(feats, dtype=np.float32)
        )
        shown = [c for c in range(len(classes)) if (labels == c).any()]
        for i, c in enumerate(shown):  # colours by rank among the classes present, so no two share one
            m = labels == c
            ax.scatter(xy[m, 0], xy[m, 1], s=6, color=palette(i % palette.N), label=classes[c] or str(c),
                       rasterized=True)  # thousands of dots: pixels in the vector files, text stays vector
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    if present <= 20:
        axes[0][-1].legend(markerscale=2, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _finish(fig, title, path)


#: The order and the words of the protocols in :func:`accuracy_bars`.
PROTOCOLS = {"linear": "linear probe", "knn": "k-NN",
             "knn-1%": "k-NN, 1 % of labels", "linear-1%": "linear probe, 1 % of labels",
             "finetune-1%": "fine-tuned, 1 % of labels",
             "knn-10%": "k-NN, 10 % of labels", "linear-10%": "linear probe, 10 % of labels",
             "finetune-10%": "fine-tuned, 10 % of labels", "supervised": "supervised (own head)"}
#: One colour per method in every figure: the trained-with-labels reference, VICReg, the other
#: self-supervised methods, and grey for the untrained network.
METHOD_COLORS = {"supervised": "#4c4c4c", "vicreg": "#d62728", "barlow_twins": "#1f77b4", "wmse": "#2ca02c",
                 "simclr": "#9467bd", "moco_v2": "#ff7f0e", "random-init": "#b0b0b0"}


def _budget(df, encoder: str, method: str) -> str:
    """A row's training budget as a label suffix (", 10 ep"), from ``encoder_epochs``; "" for an untrained encoder
    or a table without the column. A method trained at two budgets already carries "(N ep)" in its name."""
    if "encoder_epochs" not in df or " ep)" in str(method):
        return ""
    ep = df.loc[(df["encoder"] == encoder) & (df["method"] == method), "encoder_epochs"].dropna()
    return f", {int(ep.iloc[0])} ep" if len(ep) and int(ep.iloc[0]) > 0 else ""


def _overview_rows(df) -> list[tuple[str, str, str, str]]:
    """(protocol, row label, method, key) in reading order: protocol, encoder, method; each label carries the
    encoder's training epochs (a short-trained row says so)."""
    import re

    methods = list(METHOD_COLORS)

    def order(m: str) -> tuple:  # method as METHOD_COLORS lists them, then a twice-run method's budgets in epochs
        base, _, rest = m.partition(" (")
        epochs = re.match(r"(\d+) ep\)", rest)
        return (methods.index(base) if base in methods else len(methods), base, int(epochs.group(1)) if epochs else -1, m)

    def title(m: str) -> str:  # "vicreg (30 ep)" -> "VICReg (30 ep)"
        base, sep, rest = m.partition(" (")
        return METHOD_TITLES.get(base, base) + sep + rest

    rows = []
    protocols = [p for p in PROTOCOLS if p in set(df["protocol"])] + sorted(set(df["protocol"]) - set(PROTOCOLS))
    for protocol in protocols:
        sub = df[df["protocol"] == protocol]
        pairs = sorted({(e, m) for e, m in zip(sub["encoder"], sub["method"])}, key=lambda em: (em[0], order(em[1])))
        rows += [(protocol, f"{e} · {title(m)}{_budget(df, e, m)}", m, f"{protocol}|{e}|{m}") for e, m in pairs]
    return rows


def accuracy_bars(df, path: Path | None = None, title: str = "", floor: dict[str, float] | None = None) -> plt.Figure:
    """The results table at a glance: top-1 per (protocol, encoder, method), one panel per set.

    Introduced in notebook 06. Rows are grouped by protocol and aligned across the panels, so a row
    reads "how does this encoder do on A, and on B"; each bar carries its value; the dashed line is
    chance (100 / classes), the dotted one ``floor[set]``: a linear probe on the raw pixels (notebook 04), which
    any encoder's probe should beat. Each row's label carries its encoder's training epochs. A method run
    twice at different budgets (04's and 05's VICReg) gets two rows, labelled by their epochs, never one
    averaged bar.
    """
    key = ["set", "protocol", "encoder", "method"]
    if "encoder_epochs" in df and df.duplicated(key).any():
        twice = df.duplicated(key, keep=False)
        df = df.assign(method=df["method"].where(~twice, df["method"] + " (" + df["encoder_epochs"].astype("Int64")
                                                  .astype(str) + " ep)"))
    rows = _overview_rows(df)
    # y positions: a header line per protocol, then its rows
    ypos, headers, y = {}, [], 0
    for protocol in dict.fromkeys(r[0] for r in rows):
        headers.append((y, PROTOCOLS.get(protocol, protocol)))
        y += 1
        for r in rows:
            if r[0] == protocol:
                ypos[r[3]] = y
                y += 1
        y += 0.4
    sets = sorted(set(df["set"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets) + 1.6, 0.27 * y + 1.3),
                             sharey=True, squeeze=False)
    for ax, set_ in zip(axes[0], sets):
        sub = df[df["set"] == set_]
        for _, r in sub.iterrows():
            k = f"{r['protocol']}|{r['encoder']}|{r['method']}"
            color = METHOD_COLORS.get(str(r["method"]).split(" (")[0], "#8c564b")
            ax.barh(ypos[k], r["top1"], height=0.75, color=color)
            ax.text(r["top1"] + 1, ypos[k], f"{r['top1']:.1f}", va="center", fontsize=8)
        if "classes" in sub and sub["classes"].notna().any():
            ax.axvline(100 / float(sub["classes"].dropna().iloc[0]), color="k", ls="--", lw=0.8, label="chance")
        if floor and set_ in floor:
            values = ", ".join(f"{k} {v:.1f} %" for k, v in sorted(floor.items()) if k in sets)
            ax.axvline(floor[set_], color="#1f77b4", ls=":", lw=1.4, label=f"raw pixels, linear probe ({values})")
        name = sub["dataset"].iloc[0] if "dataset" in sub else ""
        ax.set_title(f"set {set_}" + (f": {name}" if name else ""), fontsize=10)
        ax.set_xlim(0, min(108.0, 1.15 * float(sub["top1"].max()) + 6))  # each set its own scale: B's bars stay readable
        ax.set_xlabel("top-1 on the test split (%)")
        ax.grid(axis="x", alpha=0.3)
        for hy, _ in headers:
            ax.axhline(hy - 0.7, color="0.85", lw=0.8)
    ticks = [(yy, text) for yy, text in headers] + [(ypos[r[3]], r[1]) for r in rows]
    ax0 = axes[0][0]
    ax0.set_yticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=8)
    for label, (yy, _) in zip(ax0.get_yticklabels(), ticks):
        if any(yy == h[0] for h in headers):
            label.set_fontweight("bold")
    ax0.set_ylim(y - 0.4, -0.8)  # first row at the top
    ax0.tick_params(axis="y", length=0)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if handles:  # one legend for the panels, under them: inside, it would cover the last rows' bars
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.course_layout_rect = (0, 0.6 / fig.get_figheight() if handles else 0, 1, 1)  # kept by legible()
    fig.tight_layout(rect=fig.course_layout_rect)
    return save(fig, path)


#: The semi-supervised protocols of one label fraction, in the order the figure groups them.
_LABEL_PROTOCOLS = (("knn", "k-NN"), ("linear", "probe"), ("finetune", "fine-tune"))


def label_bars(df, path: Path | None = None, title: str = "", methods: Sequence[str] = ("vicreg", "random-init"),
               ) -> plt.Figure:
    """What a few labels buy (notebook 04): one panel per (set, encoder); for each label fraction, kNN, the linear
    probe and the fine-tune on the *same* labelled images, one bar per starting point (``methods``), its value
    on top; the probe on all labels as a line per method, chance dashed. Bars, not curves: two fractions are
    two points.
    """
    import re

    fractions = sorted({m.group(1) for p in df["protocol"] for m in [re.fullmatch(r"finetune-(\d+)%", str(p))] if m},
                       key=float)
    panels = [(s, e) for s in sorted(set(df["set"])) for e in dict.fromkeys(df["encoder"])
              if not df[(df["set"] == s) & (df["encoder"] == e) & df["protocol"].str.startswith("finetune-")].empty]
    if not fractions or not panels:
        raise ValueError("no fine-tuning rows (protocol 'finetune-1%', ...) to draw: run notebook 04's fine-tuning first")
    cols = min(2, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.9 * cols, 3.0 * rows_n + 0.6), squeeze=False, sharey=True)
    groups = [(f, p, short) for f in fractions for p, short in _LABEL_PROTOCOLS]
    width = 0.8 / len(methods)
    for ax, (set_, enc) in zip(axes.flat, panels):
        sub = df[(df["set"] == set_) & (df["encoder"] == enc)]
        for j, method in enumerate(methods):
            color = METHOD_COLORS.get(method, "#8c564b")
            for i, (f, protocol, _) in enumerate(groups):
                v = sub.loc[(sub["method"] == method) & (sub["protocol"] == f"{protocol}-{f}%"), "top1"]
                if len(v):
                    x = i + (j - (len(methods) - 1) / 2) * width
                    ax.bar(x, float(v.iloc[0]), width=width * 0.95, color=color,
                           label=METHOD_TITLES.get(method, method) if i == 0 else None)
                    ax.text(x, float(v.iloc[0]) + 1, f"{float(v.iloc[0]):.0f}", ha="center", va="bottom", fontsize=7)
            full = sub.loc[(sub["method"] == method) & (sub["protocol"] == "linear"), "top1"]
            if len(full):
                ax.axhline(float(full.iloc[0]), color=color, lw=1.2, ls="-.", alpha=0.9)
        if "classes" in sub and sub["classes"].notna().any():
            ax.axhline(100 / float(sub["classes"].dropna().iloc[0]), color="k", ls="--", lw=0.8)
        ax.set_xticks(range(len(groups)), [f"{short}\n{f} %" for f, _, short in groups], fontsize=8)
        for k in range(1, len(fractions)):
            ax.axvline(k * len(_LABEL_PROTOCOLS) - 0.5, color="0.8", lw=0.8)
        ax.set_title(f"set {set_}, {enc}", fontsize=10)
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 on the test split (%)")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="0.3", ls="-.", lw=1.2), plt.Line2D([], [], color="k", ls="--", lw=0.8)]
    labels += ["probe on all labels (per method's colour)", "chance"]
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(title or "what a few labels buy: the same labelled images, three ways", fontsize=11)
    fig.course_layout_rect = (0, 0.1 / rows_n, 1, 1)  # room for the legend under the panels, kept by legible()
    fig.tight_layout(rect=fig.course_layout_rect)
    return save(fig, path)


#: Diagnostics of :mod:`course_lib.diagnostics`, as panel titles.
DIAGNOSTICS = {
    "std": "per-dimension std (normalized; 0 = collapse)",
    "effective_rank": "effective rank",
    "knn_top1": "kNN top-1 (%)",
}


def plot_diagnostics(
    runs: dict[str, Sequence[dict[str, float]]],
    baseline: dict[str, float] | None = None,
    keys: Sequence[str] = tuple(DIAGNOSTICS),
    title: str = "",
    path: Path | None = None,
) -> plt.Figure:
    """One panel per diagnostic, one line per run, against the epoch (``run.epoch_metrics`` records).

    ``baseline`` (e.g. ``diagnostics.measure`` of the untrained encoder) is drawn as a
    dashed grey line labelled "random init". When no run recorded three epochs or more (a short budget, a
    sparse monitor) a curve would be a dot or a segment: each run's last record is drawn as a bar instead,
    labelled with its epoch.
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(3.8 * len(keys), 3.1), squeeze=False)
    if max((len(r) for r in runs.values()), default=0) < 3:
        names = [n for n, r in runs.items() if r]
        for ax, key in zip(axes[0], keys):
            for i, name in enumerate(names):
                last = [r for r in runs[name] if key in r][-1:]
                if last:
                    ax.bar(i, last[0][key], color=f"C{list(runs).index(name)}", width=0.7)
            if baseline is not None and key in baseline:
                ax.axhline(baseline[key], color="grey", ls="--", lw=1, label="random init")
                ax.legend(fontsize=7)
            ax.set_xticks(range(len(names)), [f"{n}\n(epoch {runs[n][-1]['epoch']})" for n in names],
                          fontsize=7, rotation=30 if len(names) > 3 else 0)
            ax.set_title(DIAGNOSTICS.get(key, key), fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        return _finish(fig, title, path)
    for ax, key in zip(axes[0], keys):
        for i, (name, records) in enumerate(runs.items()):
            points = [(r["epoch"], r[key]) for r in records if key in r]
            if points:
                x, y = zip(*points)
                ax.plot(x, y, marker="o", ms=3, lw=1.5, color=f"C{i}", label=name)
        if baseline is not None and key in baseline:
            ax.axhline(baseline[key], color="grey", ls="--", lw=1, label="random init")
        ax.set_title(DIAGNOSTICS.get(key, key), fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return _finish(fig, title, path)


def study_figure(rows, study, chance: float | None = None, path: Path | None = None) -> plt.Figure:
    """One study of notebook 07: its linear-probe top-1 on A and B and the effective rank, mean ± std over seeds.

    ``rows`` are the study's rows of :func:`course_lib.studies.run` (one per point and seed); ``study``
    its :class:`~course_lib.studies.Study`. A "curve" puts the points on their numeric axis, "bars"
    side by side; every seed is a small dot beside its mean, so two seeds that disagree are seen. A
    "grid" (λ x μ) is a heat map of set A's mean top-1 with its std in each cell. The dashed line is chance.
    """
    labels = [p.label for p in study.points]
    rows = rows[rows["point"].isin(labels)]
    if study.kind == "grid":
        return _study_grid(rows, study, path)
    numeric = study.kind == "curve" and all(p.x is not None for p in study.points)
    where = {p.label: (float(p.x) if numeric else i) for i, p in enumerate(study.points)}
    fig, (ax, ax_rank) = plt.subplots(1, 2, figsize=(10.5, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    panels = [("top1_a", "set A", "C0", -0.08), ("top1_b", "set B", "C1", 0.08)]
    for key, name, color, shift in panels:
        if rows[key].isna().all():
            continue
        g = rows.groupby("point", sort=False)[key]
        xs = np.array([where[p] for p in g.mean().index])
        offset = 0.0 if numeric else shift
        ax.errorbar(xs + offset, g.mean().values, yerr=g.std().fillna(0).values, marker="o", ms=5, capsize=3,
                    lw=1.5 if numeric else 0, elinewidth=1.2, color=color, label=f"{name}, mean ± std")
        ax.scatter([where[p] + offset for p in rows["point"]], rows[key], s=9, color=color, alpha=0.35, lw=0)
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=0.8, label="chance")
    g = rows.groupby("point", sort=False)["effective_rank"]
    ax_rank.errorbar([where[p] for p in g.mean().index], g.mean().values, yerr=g.std().fillna(0).values,
                     marker="s", ms=4, capsize=3, lw=1.5 if numeric else 0, elinewidth=1.2, color="C2")
    ax_rank.scatter([where[p] for p in rows["point"]], rows["effective_rank"], s=9, color="C2", alpha=0.35, lw=0)
    ax.set_ylabel("linear probe top-1 (%)")
    ax_rank.set_ylabel("effective rank of A's embeddings")
    ax_rank.set_ylim(bottom=0)  # 1 = collapsed to a line: the axis starts where collapse would show
    if not numeric:
        for a in (ax, ax_rank):
            a.set_xlim(-0.5, len(labels) - 0.5)
    for a in (ax, ax_rank):
        a.set_xlabel(study.axis)
        a.grid(alpha=0.3)
        if numeric and study.log_x:
            a.set_xscale("log")
        if numeric:
            a.set_xticks([float(p.x) for p in study.points], [p.label for p in study.points], fontsize=8)
            a.minorticks_off()
        else:
            a.set_xticks(range(len(labels)), labels, fontsize=8, rotation=12 if len(labels) > 3 else 0)
    ax.legend(fontsize=7, frameon=False)
    return _finish(fig, study.title, path)


def _study_grid(rows, study, path: Path | None) -> plt.Figure:
    lam = sorted({p.overrides["loss_weights"][0] for p in study.points})
    mu = sorted({p.overrides["loss_weights"][1] for p in study.points})
    mean = np.full((len(lam), len(mu)), np.nan)
    std = np.full_like(mean, np.nan)
    for p in study.points:
        sub = rows[rows["point"] == p.label]["top1_a"]
        if len(sub):
            i, j = lam.index(p.overrides["loss_weights"][0]), mu.index(p.overrides["loss_weights"][1])
            mean[i, j], std[i, j] = sub.mean(), sub.std() if len(sub) > 1 else 0.0
    fig, ax = plt.subplots(figsize=(4.8, 3.9))
    image = ax.imshow(mean, cmap="viridis", origin="lower", aspect="auto")
    for i in range(len(lam)):
        for j in range(len(mu)):
            if not np.isnan(mean[i, j]):
                light = mean[i, j] < np.nanmean(mean)
                ax.text(j, i, f"{mean[i, j]:.1f}\n± {std[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
    ax.set_xticks(range(len(mu)), [f"{m:g}" for m in mu])
    ax.set_yticks(range(len(lam)), [f"{v:g}" for v in lam])
    ax.set_xlabel("μ (variance weight)")
    ax.set_ylabel("λ (invariance weight)")
    fig.colorbar(image, ax=ax, label="set A linear probe top-1 (%)")
    return _finish(fig, study.title, path)


def epochs_study(rows, path: Path | None = None, noise: float | None = None, title: str = "") -> plt.Figure:
    """The coursework's epochs study on its data: notebook 04's rows (``study == "epochs"``) of each encoder.

    Introduced in notebook 07. Three panels over the pretraining epochs: the linear probe's top-1 on set A
    (solid) and set B (dashed), kNN top-1 on A, and the effective rank of A's training embeddings; one line
    per encoder. ``noise`` (points) draws a band of ± that much around each probe point on A: one run per
    count, so the band is the test split's, not the seeds'.
    """
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    colors = {"N1": "#1f77b4", "N2": "#d62728", "ResNet-18": "#2ca02c"}
    for enc, sub in rows.groupby("encoder", sort=True):
        c = colors.get(enc, "#8c564b")
        for set_, style in (("A", "-"), ("B", "--")):
            lin = sub[(sub["protocol"] == "linear") & (sub["set"] == set_)].sort_values("encoder_epochs")
            if lin.empty:
                continue
            x, y = lin["encoder_epochs"].astype(int), lin["top1"].astype(float)
            axes[0].plot(x, y, style, marker="o", color=c, label=f"{enc}, set {set_}")
            if noise and set_ == "A":
                axes[0].fill_between(x, y - noise, y + noise, color=c, alpha=0.12, lw=0)
            if set_ == "A" and "effective_rank" in lin and lin["effective_rank"].notna().any():
                axes[2].plot(x, lin["effective_rank"].astype(float), marker="o", color=c, label=enc)
        knn = sub[(sub["protocol"] == "knn") & (sub["set"] == "A")].sort_values("encoder_epochs")
        if not knn.empty:
            axes[1].plot(knn["encoder_epochs"].astype(int), knn["top1"].astype(float), marker="o", color=c, label=enc)
    for ax, ylabel, heading in zip(axes, ("top-1 (%)", "top-1 (%)", "effective rank"),
                                   ("linear probe", "kNN on set A", "effective rank, set A")):
        ax.set_xlabel("pretraining epochs")
        ax.set_ylabel(ylabel)
        ax.set_title(heading, fontsize=10)
        ax.set_xticks(sorted(set(rows["encoder_epochs"].astype(int))))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    return _finish(fig, title, path)
