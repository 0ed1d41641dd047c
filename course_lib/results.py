"""Results rows and their files: what a notebook measured, saved under ``<out_dir>/metrics/`` and read back.

Introduced in notebook 01, whose supervised baselines are the first rows; notebook 04 adds the linear probes and
the raw-pixel floor (:func:`save_baselines`), and notebook 06 reads every row back. A notebook makes a row of each
number it measures (:func:`make_row`, with the training :func:`encoder_budget` says its encoder had) and saves its
rows with :func:`save_rows`; the report reads them with :func:`load_rows`, or a committed ``results.csv`` with
:func:`load_results`. This module is the one that reads and writes these files: the reading functions create no
folder, only the ``save_*`` functions do. :func:`pick` and :func:`top1_of` find a row in a table.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .config import Config, project_root

COLUMNS = ["dataset", "set", "encoder", "method", "protocol", "top1", "top5", "epochs", "seconds"]

#: Every protocol a results table can hold, in the order the tables list them.
PROTOCOL_ORDER = ("supervised", "linear", "knn", "knn-1%", "linear-1%", "finetune-1%", "knn-10%", "linear-10%",
                  "finetune-10%")

#: Test-split sizes of the coursework's data sets (CIFAR-10's test split, Tiny ImageNet's validation split), for
#: the noise tolerance of a table whose run left no ``metrics/data.txt`` behind (a committed results.csv).
TEST_IMAGES = {"cifar10": 10_000, "tiny-imagenet": 10_000}

#: Where the real-data tables live, relative to the project root: ``make coursework``'s (the coursework's budget),
#: else ``make report-cifar``'s (the quick one). The first that exists is the report's real-data table.
REAL_DATA_CSVS = (Path("report") / "coursework" / "results.csv", Path("report") / "cpu-cifar" / "results.csv")
REAL_DATA_CSV = REAL_DATA_CSVS[-1]


def metrics_path(cfg: Config) -> Path:
    """Where a run's rows and notes live, ``<out_dir>/metrics`` (not created: reading leaves no folder behind)."""
    return cfg.out_path / "metrics"


def metrics_dir(cfg: Config) -> Path:
    """:func:`metrics_path`, created: the folder the ``save_*`` functions write into."""
    folder = metrics_path(cfg)
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


def load_data_description(cfg: Config) -> dict | None:
    """What :func:`save_data_description` recorded (per set: name, split sizes, classes, side, files), or None
    when this run left no ``metrics/data.txt``."""
    path = metrics_path(cfg) / "data.txt"
    return json.loads(path.read_text()) if path.exists() else None


def load_baselines(cfg: Config) -> dict[str, float] | None:
    path = metrics_path(cfg) / "baselines.txt"
    return json.loads(path.read_text()) if path.exists() else None


def load_rows(cfg: Config) -> pd.DataFrame:
    """Every saved row of this preset's run, in the report's column order."""
    rows = []
    for path in sorted(metrics_path(cfg).glob("*.json")):
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


def real_data_path() -> Path:
    """The committed real-data ``results.csv`` the notebooks and the digits' report read: the first of
    :data:`REAL_DATA_CSVS` that exists (its folder names the preset that made it), else :data:`REAL_DATA_CSV`."""
    return _default_real_data()


def _default_real_data() -> Path:
    found = [project_root() / p for p in REAL_DATA_CSVS if (project_root() / p).exists()]
    return found[0] if found else project_root() / REAL_DATA_CSV


def load_results(path: Path | str | None = None) -> pd.DataFrame | None:
    """A committed ``results.csv`` (default: the real-data one, :data:`REAL_DATA_CSV` under the project root),
    or None when the file does not exist."""
    path = Path(path) if path is not None else _default_real_data()
    return pd.read_csv(path) if path.exists() else None


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


def label_fraction(protocol: str) -> float:
    """The share of a set's training labels a protocol used: "finetune-1%" -> 0.01, "linear" -> 1.0."""
    tail = str(protocol).rsplit("-", 1)[-1]
    return float(tail[:-1]) / 100 if tail.endswith("%") else 1.0


def sizes_from_names(df: pd.DataFrame) -> dict[str, int]:
    """Test images per set from the data sets' names alone (:data:`TEST_IMAGES`); a set whose size is unknown is
    left out. Reads no file: all that a committed results.csv, which has no ``metrics/data.txt``, can tell."""
    out = {}
    for set_, dataset in df[["set", "dataset"]].drop_duplicates().itertuples(index=False):
        size = next((n for name, n in TEST_IMAGES.items() if str(dataset).lower().startswith(name)), None)
        if size:
            out[set_] = size
    return out


def test_split_sizes(df: pd.DataFrame, cfg: Config | None = None) -> dict[str, int]:
    """Test images per set: from the run's ``metrics/data.txt`` when ``cfg`` has one, else from the data set's
    name (:func:`sizes_from_names`); a set whose size is unknown is left out."""
    description = load_data_description(cfg) if cfg is not None else None
    if description is not None:
        return {k: int(v["test"]) for k, v in description.items()}
    return sizes_from_names(df)
