"""The studies of notebook 07: one setting of VICReg pretraining varied at a time, every point over several seeds.

The coursework varied one thing, the pretraining epochs (20/30/40, its section 7.3), with one run
each. Here each :class:`Study` varies one setting of the preset's VICReg run (N1 on set A,
``comparison_images`` training images like notebook 05), keeps everything else, and trains every
point with :data:`SEEDS` seeds; each trained encoder is probed on set A and set B and its
collapse diagnostics measured. :func:`run` returns one tidy table, a row per (study, point, seed),
that ``make studies`` saves as ``report/studies.csv`` (``report/<preset>/`` for real data).

Reuse: every point is an ordinary run of :func:`course_lib.train.pretrain`, keyed by its settings,
so a point shared by two studies (the preset's own settings are in every one) trains once, a
finished point loads, an interrupted one resumes, and probe results are kept in the run folder
(``probes.json``). The epochs study trains one run per seed to the largest epoch count and probes
the snapshots kept on the way (with a constant learning rate, the first E epochs of a longer run
are the E-epoch run); with a schedule that depends on the total (cosine), each point is its own run.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import data as data_mod
from . import noise
from .config import Config, project_root, with_overrides
from .diagnostics import measure
from .errors import CourseError
from .evaluate import linear_probe
from .images import ImageDataset
from .models import build_encoder
from .runs import cached, data_fingerprint, load_snapshot, snapshot_path, write_text_atomically
from .runtime import to_device
from .train import pretrain

#: The seeds of every point (the test preset's smoke grid uses the first two).
SEEDS = (0, 1, 2)
#: The table's columns, in order.
COLUMNS = ("study", "point", "x", "seed", "top1_a", "top5_a", "top1_b", "top5_b", "knn_top1", "effective_rank",
           "std", "epochs", "train_seconds", "run", "preset", "set_a", "set_b", "classes_a", "classes_b")
TABLE = "studies.csv"
#: The file in a run folder that keeps the probes of its encoders (a dict by :func:`_probe_key`).
PROBES = "probes.json"


@dataclass(frozen=True)
class Point:
    """One point of a study: its label, the settings it changes, and its place on a numeric axis (if any)."""

    label: str
    overrides: dict = field(default_factory=dict)
    x: float | None = None
    quick: bool = False  # part of the test preset's smoke grid


@dataclass(frozen=True)
class Study:
    """A setting varied over ``points``; ``kind`` says how notebook 07 draws it ("curve", "bars" or "grid")."""

    name: str
    title: str
    axis: str
    question: str
    points: tuple[Point, ...]
    kind: str = "curve"
    log_x: bool = False


def studies(cfg: Config) -> list[Study]:
    """The studies of notebook 07 around ``cfg``'s settings; ``cfg.studies_grid == "quick"`` keeps the points marked
    quick and shorter epochs (the ``test`` preset's smoke grid)."""
    projector, crop_scale = cfg.model.projector, cfg.pretrain.crop_scale
    base_w = projector[0] if projector else 1024
    depth = len(projector)
    lam, mu, nu = cfg.pretrain.loss_weights
    quick = cfg.studies_grid == "quick"
    epochs = (1, 2, 4) if quick else (1, 2, 5, 10, 20, 30, 40)
    out = [
        Study("epochs", "Pretraining epochs", "pretraining epochs",
              "Does more pretraining keep helping (the coursework's 20/30/40)?",
              tuple(Point(str(e), {"pretrain_epochs": e}, e, quick=True) for e in epochs), "curve", log_x=True),
        Study("loss_terms", "VICReg's terms, one removed at a time", "loss",
              "Which term's removal collapses the embeddings?",
              (Point(f"all three ({lam:g}, {mu:g}, {nu:g})", {}, quick=True),
               Point(f"no variance ({lam:g}, 0, {nu:g})", {"loss_weights": (lam, 0.0, nu)}),
               Point(f"no covariance ({lam:g}, {mu:g}, 0)", {"loss_weights": (lam, mu, 0.0)}),
               Point(f"invariance only ({lam:g}, 0, 0)", {"loss_weights": (lam, 0.0, 0.0)}, quick=True)),
              "bars"),
        Study("loss_weights", "Invariance weight λ x variance weight μ (ν = 1)", "λ, μ",
              "How sensitive is VICReg to the weights of its first two terms?",
              tuple(Point(f"λ={a:g}, μ={b:g}", {"loss_weights": (a, b, nu)}, quick=(a, b) in ((lam, mu), (5, 50)))
                    for a in (5.0, 25.0, 50.0) for b in (5.0, 25.0, 50.0)), "grid"),
        Study("covariance_weight", "Covariance weight ν (λ = μ = 25)", "ν",
              "How much decorrelation does VICReg need?",
              tuple(Point(f"ν={v:g}", {"loss_weights": (lam, mu, v)}, v, quick=v in (nu, 4.0))
                    for v in (0.0, 0.25, 1.0, 4.0)), "curve"),
        Study("batch_size", "Batch size (same epochs, same learning rate)", "batch size",
              "Do larger batches (better variance and covariance estimates, fewer steps) help?",
              tuple(Point(str(b), {"batch_size": b}, b, quick=b in (64, cfg.batch_size))
                    for b in (32, 64, 128, 256)), "curve", log_x=True),
        Study("projector_depth", f"Projector depth (width {base_w})", "Linear layers in the projector",
              "Does the projector matter, and how deep should it be?",
              tuple(Point("none" if d == 0 else f"{d} x {base_w}", {"projector": (base_w,) * d}, d,
                          quick=d in (0, depth)) for d in (0, 1, 2, 3)), "curve"),
        Study("projector_width", f"Projector width ({depth} layers)", "projector width",
              "Do wider projectors help, as the VICReg paper found on ImageNet?",
              tuple(Point(str(w), {"projector": (w,) * depth}, w, quick=w in (base_w // 8, base_w))
                    for w in sorted({base_w // 8, base_w // 2, base_w, base_w * 2})), "curve", log_x=True),
        Study("crop_scale", "Smallest crop (fraction of the image's area)", "smallest crop area",
              "How aggressive should the crops be?",
              tuple(Point(f"{s:g}", {"crop_scale": (s, 1.0)}, s, quick=s in (crop_scale[0], 1.0))
                    for s in sorted({0.08, 0.2, crop_scale[0], 0.5, 0.8, 1.0})), "curve"),
        Study("augmentation", "Augmentation recipe", "augmentation",
              "Do the stronger SSL recipes beat the coursework's crop + flip?",
              tuple(Point(a, {"augmentation": a}, quick=a in ("crop-flip", "ssl"))
                    for a in ("crop-flip", "ssl", "ssl-cifar")), "bars"),
    ]
    if quick:
        out = [Study(s.name, s.title, s.axis, s.question, tuple(p for p in s.points if p.quick), s.kind, s.log_x)
               for s in out]
    return out


def seeds_for(cfg: Config) -> tuple[int, ...]:
    """The seeds of every point: two on the quick grid, :data:`SEEDS` otherwise."""
    return SEEDS[:2] if cfg.studies_grid == "quick" else SEEDS


def point_config(cfg: Config, point: Point, seed: int) -> Config:
    """The settings of one point and seed: the preset's, the point's changes, the monitor off."""
    return with_overrides(cfg, **point.overrides, seed=seed, monitor_every=0)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _evaluate(encoder, cfg: Config, a: ImageDataset, b: ImageDataset | None) -> dict:
    """Linear probes on A and B (the preset's probe) and the collapse diagnostics on A."""
    pa = linear_probe(encoder, a, cfg)
    pb = linear_probe(encoder, b, cfg) if b is not None else {"top1": float("nan"), "top5": float("nan")}
    diag = measure(encoder, a, cfg)
    return {"top1_a": pa["top1"], "top5_a": pa["top5"], "top1_b": pb["top1"], "top5_b": pb["top5"],
            "knn_top1": diag["knn_top1"], "effective_rank": diag["effective_rank"], "std": diag["std"]}


def _probe_key(cfg: Config, a: ImageDataset, b: ImageDataset | None, epoch: int) -> str:
    protocol = cfg.evaluation
    return _key(epoch, protocol.probe_epochs, protocol.probe_lr, protocol.knn_k, cfg.seed, _identity(a),
                _identity(b) if b is not None else None)


def _identity(ds: ImageDataset) -> str:
    return f"{data_fingerprint(ds)}|test {len(ds.y_test)}|{int(ds.x_test.flatten()[::997].sum())}"


def _rows_for_epochs(study: Study, cfg: Config, seed: int, a, b, encoder_name: str, progress: bool) -> list[dict]:
    """The epochs study for one seed: one run to the largest count, its snapshots probed (constant lr)."""
    counts = [int(p.overrides["pretrain_epochs"]) for p in study.points]
    if cfg.pretrain.schedule != "constant":  # a schedule over the total: every length is a run of its own
        return [r for p in study.points for r in _rows_for_point(study, p, cfg, seed, a, b, encoder_name, progress)]
    longest = with_overrides(point_config(cfg, study.points[-1], seed), pretrain_epochs=max(counts))
    run = pretrain(longest, encoder_name, a, progress=progress, keep_epochs=tuple(counts))
    rows = []
    for point, count in zip(study.points, counts):
        path = snapshot_path(run.run_dir, count)
        if not path.exists():  # a run trained without keeping this epoch: train that length on its own
            rows += _rows_for_point(study, point, cfg, seed, a, b, encoder_name, progress)
            continue
        encoder = build_encoder(encoder_name)
        encoder.load_state_dict(load_snapshot(run.run_dir, count))
        encoder = to_device(encoder, longest).eval()
        key = _probe_key(longest, a, b, count)
        metrics = cached(run.run_dir, PROBES, key, lambda: _evaluate(encoder, longest, a, b))
        seconds = run.seconds * count / max(counts)
        rows.append(_row(study, point, seed, metrics, count, seconds, run.run_dir, cfg, a, b))
    return rows


def _rows_for_point(study, point, cfg, seed, a, b, encoder_name, progress) -> list[dict]:
    pcfg = point_config(cfg, point, seed)
    run = pretrain(pcfg, encoder_name, a, progress=progress)
    key = _probe_key(pcfg, a, b, run.epochs)
    metrics = cached(run.run_dir, PROBES, key, lambda: _evaluate(run.encoder, pcfg, a, b))
    return [_row(study, point, seed, metrics, run.epochs, run.seconds, run.run_dir, cfg, a, b)]


def _row(study, point, seed, metrics, epochs, seconds, run_dir, cfg, a, b) -> dict:
    return {"study": study.name, "point": point.label, "x": point.x, "seed": seed, **metrics, "epochs": epochs,
            "train_seconds": round(seconds, 2), "run": Path(run_dir).name, "preset": cfg.preset, "set_a": a.name,
            "set_b": b.name if b is not None else "", "classes_a": a.num_classes,
            "classes_b": b.num_classes if b is not None else None}


def training_sets(cfg: Config, a: ImageDataset, b: ImageDataset | None):
    """The studies' data: ``comparison_images`` of A's (and B's) training images, like notebook 05's methods."""
    images = cfg.comparison.images
    return data_mod.limit_train(a, images), (data_mod.limit_train(b, images) if b is not None else None)


def run(cfg: Config, a: ImageDataset, b: ImageDataset | None, only: tuple[str, ...] | None = None,
        progress: bool = True) -> pd.DataFrame:
    """Every study's points for every seed: the tidy table (one row per study, point and seed)."""
    encoder_name = cfg.comparison.encoder
    cfg = cfg.for_encoder(encoder_name)
    a, b = training_sets(cfg, a, b)
    chosen = [s for s in studies(cfg) if only is None or s.name in only]
    rows: list[dict] = []
    t0 = time.perf_counter()
    jobs = [(s, seed) for s in chosen for seed in seeds_for(cfg)]
    for study, seed in tqdm(jobs, desc="studies", disable=not progress):
        if study.name == "epochs":
            rows += _rows_for_epochs(study, cfg, seed, a, b, encoder_name, progress=False)
        else:
            for point in study.points:
                rows += _rows_for_point(study, point, cfg, seed, a, b, encoder_name, progress=False)
    # rounded as saved, so that figures drawn now and from the saved table are the same files
    df = pd.DataFrame(rows, columns=list(COLUMNS)).round(3)
    df.attrs["wall_seconds"] = time.perf_counter() - t0
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over the seeds of each (study, point), in the grid's order."""
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(df["study"], df["point"])))}
    metrics = ["top1_a", "top1_b", "knn_top1", "effective_rank", "std"]
    g = df.groupby(["study", "point"], sort=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["seeds"] = g["seed"].nunique()
    out["x"] = g["x"].first()
    out = out.reset_index()
    out["_order"] = [order[(s, p)] for s, p in zip(out["study"], out["point"])]
    return out.sort_values("_order").drop(columns="_order").reset_index(drop=True)


def table_path(cfg: Config, root: Path | None = None) -> Path:
    """``report/studies.csv`` for the digits' presets, ``report/<preset>/studies.csv`` for any other."""
    base = Path(root) if root is not None else project_root() / "report"
    return base / cfg.report_folder / TABLE if cfg.report_folder else base / TABLE


def save(df: pd.DataFrame, path: Path) -> Path:
    """Write the table (rounded, atomically) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, df.round(3).to_csv(index=False))


def find_table(cfg: Config, root: Path | None = None) -> tuple[Path, pd.DataFrame]:
    """The committed table of ``cfg``'s preset, else the digits' one (``report/studies.csv``), with its path.

    A preset whose studies were never run (real data: hours) shows the digits' studies, and says so.
    """
    for path in dict.fromkeys((table_path(cfg, root), table_path(with_overrides(cfg, preset="cpu"), root))):
        df = load(path)
        if df is not None:
            return path, df
    raise CourseError(f"no studies table at {table_path(cfg, root)}: run `make studies` (digits, about 10 min) "
                      "or pass run_grid=True")


def load(path: Path) -> pd.DataFrame | None:
    """The saved table, or None when there is none yet (``make studies`` writes it)."""
    path = Path(path)
    if not path.exists():
        return None
    df = pd.read_csv(path, keep_default_na=True)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise CourseError(f"{path} lacks the columns {', '.join(sorted(missing))}: run `make studies` again")
    return df


# --------------------------------------------------------------------------- reading the table

#: Below this normalized per-dimension std (or an effective rank below 2) an encoder counts as collapsed,
#: the threshold notebook 05 uses.
COLLAPSED_STD = 0.1


def difference_noise(std_a: float, std_b: float, seeds: int, floor: float = 0.5,
                     test_images: int | None = None) -> float:
    """Points within which two means over ``seeds`` seeds count as equal: :func:`course_lib.noise.tolerance`
    with the seeds' standard deviations, ``2 * sqrt((std_a^2 + std_b^2) / seeds)`` (a missing std counts as 0),
    and, when ``test_images`` is given, the test split's ``100 / sqrt(n)``; never below ``floor``."""
    return noise.tolerance(test_images, (std_a, std_b), seeds, floor=floor, unknown=0.0)


def compare(a: pd.Series, b: pd.Series, key: str = "top1_a", test_images: int | None = None) -> dict:
    """``a`` against ``b`` (two rows of :func:`summary`): the difference of their means, its noise
    (:func:`difference_noise`), the verdict (:func:`course_lib.noise.verdict`)."""
    a_mean, b_mean = float(a[f"{key}_mean"]), float(b[f"{key}_mean"])
    tol = difference_noise(float(a[f"{key}_std"]), float(b[f"{key}_std"]), int(min(a["seeds"], b["seeds"])),
                           test_images=test_images)
    return {"diff": a_mean - b_mean, "tol": tol, "verdict": noise.verdict(a_mean, b_mean, tol)}


def steps(rows: pd.DataFrame, key: str = "top1_a") -> list[dict]:
    """Each point of a curve against the one before it (``rows``: one study's :func:`summary` rows, in order)."""
    out = []
    for (_, prev), (_, cur) in zip(rows.iloc[:-1].iterrows(), rows.iloc[1:].iterrows()):
        out.append({"from": prev["point"], "to": cur["point"], **compare(cur, prev, key)})
    return out


def collapsed(row: pd.Series) -> bool:
    """Whether a :func:`summary` row's encoder collapsed: normalized std below 0.1 or effective rank below 2."""
    return bool(row["std_mean"] < COLLAPSED_STD or row["effective_rank_mean"] < 2.0)


def seed_spread(df: pd.DataFrame, key: str = "top1_a") -> pd.Series:
    """The std over seeds of every (study, point): how much the seed alone moves a result."""
    return df.groupby(["study", "point"], sort=False)[key].std()
