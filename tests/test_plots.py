"""Figures: every saved figure is a PNG of at least 150 dpi plus PDF and SVG, byte-stable; the overview's layout."""
import struct
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from course_lib import plots  # noqa: E402


def _png_dpi(path: Path) -> float:
    """Dots per inch from the PNG's pHYs chunk (pixels per metre)."""
    data = path.read_bytes()
    i = data.index(b"pHYs")
    ppm_x, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    assert unit == 1, "pHYs in metres"
    return ppm_x * 0.0254


def test_save_writes_png_pdf_svg_and_is_stable(tmp_path):
    def draw():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.scatter([0, 1, 2], [1, 0, 2], rasterized=True)
        ax.set_title("three points")
        return fig

    path = tmp_path / "points.png"
    plots.save(draw(), path)
    files = {p.suffix: p for p in tmp_path.iterdir()}
    assert set(files) == {".png", ".pdf", ".svg"}
    assert _png_dpi(files[".png"]) >= 150
    assert files[".pdf"].read_bytes().startswith(b"%PDF")
    assert b"<svg" in files[".svg"].read_bytes()[:2000]
    before = {s: p.read_bytes() for s, p in files.items()}
    plots.save(draw(), path)  # drawn again: no timestamp, no random id, the same bytes
    assert {s: p.read_bytes() for s, p in files.items()} == before
    plt.close("all")


def test_a_presets_figure_formats_decide_the_files(tmp_path):
    import course_lib

    for preset, suffixes in (("test", {".png"}), ("cpu", {".png", ".pdf", ".svg"})):
        cfg = course_lib.resolve(preset, out_dir=str(tmp_path / preset))
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [1, 0])
        plots.save(fig, plots.figure_path(cfg, "line"))
        assert {p.suffix for p in (tmp_path / preset / "figures").iterdir()} == suffixes, preset
    cfg = course_lib.resolve("cpu", out_dir=str(tmp_path / "mine"), figure_formats="png,svg")
    plots.save(fig, plots.figure_path(cfg, "line"))
    assert sorted(p.name for p in (tmp_path / "mine" / "figures").iterdir()) == ["line.png", "line.svg"]
    plt.close("all")


def _table():
    rows = [("A", "linear", "N1", "vicreg", 68.0, 12), ("A", "linear", "N1", "vicreg", 54.1, 3),
            ("A", "linear", "N1", "random-init", 48.0, 0), ("A", "supervised", "N1", "supervised", 77.7, 8),
            ("B", "linear", "N1", "vicreg", 18.1, 12), ("B", "linear", "N1", "vicreg", 10.6, 3),
            ("B", "linear", "N1", "random-init", 8.5, 0), ("A", "finetune-1%", "N1", "vicreg", 31.3, 12)]
    df = pd.DataFrame(rows, columns=["set", "protocol", "encoder", "method", "top1", "encoder_epochs"])
    return df.assign(classes=df["set"].map({"A": 10, "B": 200}), dataset=df["set"].map({"A": "cifar", "B": "tiny"}))


def test_accuracy_overview_aligns_rows_across_sets_and_never_averages():
    fig = plots.accuracy_bars(_table())
    ax_a, ax_b = fig.axes[:2]
    labels = [t.get_text() for t in ax_a.get_yticklabels()]
    # one bold header per protocol, in reading order, then its rows; the twice-run VICReg gets two rows
    assert labels[:3] == ["linear probe", "fine-tuned, 1 % of labels", "supervised (own head)"]
    # method titles, not code names; a twice-run method's rows in order of epochs (3 before 12, not as text)
    vicreg_rows = [label for label in labels if "VICReg" in label]
    assert vicreg_rows[:2] == ["N1 · VICReg (3 ep)", "N1 · VICReg (12 ep)"]
    assert not any("vicreg" in label for label in labels)
    bars_a = sorted(round(p.get_width(), 1) for p in ax_a.patches)
    bars_b = sorted(round(p.get_width(), 1) for p in ax_b.patches)
    assert bars_a == [31.3, 48.0, 54.1, 68.0, 77.7]  # the values, not a mean of the two VICReg runs
    assert bars_b == [8.5, 10.6, 18.1]
    # the same row sits at the same height in both panels (shared y), so A and B read across
    y_a = {round(p.get_width(), 1): p.get_y() for p in ax_a.patches}
    y_b = {round(p.get_width(), 1): p.get_y() for p in ax_b.patches}
    assert y_a[68.0] == y_b[18.1] and y_a[48.0] == y_b[8.5]
    # chance lines at 100 / classes; B's axis is scaled to its own bars (readable), A's to its own
    assert [l.get_xdata()[0] for l in ax_a.get_lines() if l.get_label() == "chance"] == [10.0]
    assert [l.get_xdata()[0] for l in ax_b.get_lines() if l.get_label() == "chance"] == [0.5]
    assert ax_b.get_xlim()[1] < 40 < ax_a.get_xlim()[1]
    plt.close("all")


def test_text_is_legible_at_the_sites_width():
    import numpy as np
    import torch

    # by hand: a 15-inch-wide figure is shown at 7.5 in, half size, so 8-pt ticks would read as 4 pt
    fig, ax = plt.subplots(figsize=(15, 3))
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=8)
    ax.set_title("t", fontsize=8)
    fig.tight_layout()
    assert plots.smallest_text_pt(fig) < 5
    plots.legible(fig)
    assert plots.smallest_text_pt(fig) >= plots.MIN_TEXT_PT - 1e-6
    plt.close(fig)
    # every figure the course saves goes through it: wide multi-panel figures with small legends included
    rng = np.random.default_rng(0)
    h = [{"epoch": 1, "iteration": i + 1, "loss": 30.0 - i, "invariance": 0.2, "variance": 0.5, "covariance": 3.0}
         for i in range(20)]
    names = [f"class {i}" for i in range(10)]
    figs = [
        plots.loss_curves({"N1": h, "ResNet-18": h}, title="VICReg on set A"),
        plots.image_grid(torch.randint(0, 255, (20, 3, 8, 8), dtype=torch.uint8), torch.arange(20) % 10, names),
        plots.tsne_panels({"a": rng.normal(size=(40, 5)), "b": rng.normal(size=(40, 5)), "c": rng.normal(size=(40, 5))},
                          np.arange(40) % 10, names),
    ]
    for fig in figs:
        assert plots.smallest_text_pt(fig) >= plots.MIN_TEXT_PT - 0.05, fig.get_size_inches()
        plt.close(fig)


def test_diagnostics_with_fewer_than_three_epochs_are_bars_not_single_point_curves():
    from matplotlib.container import BarContainer

    from course_lib import plots

    rec = lambda e, s: {"epoch": e, "std": s, "effective_rank": 10 * s, "knn_top1": 50 * s}
    short = plots.plot_diagnostics({"vicreg": [rec(3, 0.8)], "invariance_only": [rec(3, 0.01)]},
                                   baseline={"std": 0.5, "effective_rank": 5, "knn_top1": 30})
    ax = short.axes[0]
    assert not [line for line in ax.get_lines() if len(line.get_xdata()) == 1]  # no dot pretending to be a curve
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_height() for c in bars for b in c] == [0.8, 0.01]
    assert "vicreg\n(epoch 3)" in [t.get_text() for t in ax.get_xticklabels()]
    long = plots.plot_diagnostics({"vicreg": [rec(e, 0.1 * e) for e in (1, 2, 3)]})
    assert len(long.axes[0].get_lines()[0].get_xdata()) == 3 and not long.axes[0].containers


def test_label_bars_names_the_methods_as_sentences_do():
    rows = [dict(set=s, encoder="N1", method=m, protocol=p, top1=v, classes=10)
            for s in ("A", "B") for m in ("vicreg", "random-init")
            for p, v in (("knn-10%", 30.0), ("linear-10%", 40.0), ("finetune-10%", 50.0), ("linear", 60.0))]
    fig = plots.label_bars(pd.DataFrame(rows))
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels[:2] == ["VICReg", "random-init"] and "chance" in labels
    plt.close(fig)
