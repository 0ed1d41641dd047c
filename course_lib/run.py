"""Run every notebook in order with papermill and regenerate ``report/`` and ``figures/``.

    python -m course_lib.run                       # the cpu preset (what `make report` does)
    python -m course_lib.run --preset test         # seconds, for a smoke run
    python -m course_lib.run -p encoder=N1 -p pretrain_epochs=50 -p dataset_a=imagefolder -p data_root=~/cifar
    python -m course_lib.run --studies             # notebook 07's grids -> report/studies.csv (what `make studies` does)

Executed copies go to ``build/<preset>/notebooks/``; the tables and figures are
built in ``build/<preset>/`` and copied over ``report/`` and ``figures/`` only when
every notebook has succeeded, so a failed run never overwrites an earlier report.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .config import DIGITS_PRESETS, PRESETS, parse_param, project_root, resolve
from .errors import CourseError

#: The notebook whose grids ``--studies`` trains (``make studies``).
STUDIES_NOTEBOOK = "07_"

#: The knobs every notebook's ``parameters`` cell names; other settings travel in ``settings``.
KNOBS = ("preset", "data_root", "dataset_a", "dataset_b", "encoder", "pretrain_epochs", "probe_epochs",
         "batch_size", "seed", "device", "out_dir")


def notebook_list(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def _promote(src: Path, dst: Path, keep: tuple[str, ...] = ()) -> None:
    """Replace ``dst`` by a copy of ``src``, swapping folders so a crash leaves one of the two whole.

    The subfolders of ``dst`` named in ``keep`` (other presets' reports) are carried over unchanged.
    """
    if not src.is_dir():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".new")
    old = dst.with_name(dst.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(src, tmp)
    for name in keep:
        if (dst / name).is_dir() and not (tmp / name).exists():
            shutil.copytree(dst / name, tmp / name)
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def _promote_files(src: Path, dst: Path, names: list[str]) -> None:
    """Copy the files ``names`` from ``src`` over ``dst`` one by one (each replaced atomically)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        tmp = dst / f".{name}.new"
        shutil.copyfile(src / name, tmp)
        tmp.replace(dst / name)


def store_outputs(notebooks: list[Path], source: Path | None = None) -> None:
    """Give the committed notebooks stored outputs, keeping only stable ones.

    With ``source`` (a ``make coursework`` / ``make report`` run's ``build/<preset>/notebooks``), each notebook
    takes that run's outputs: what a student reads on the site and in JupyterLab is the real study. Without it,
    the notebooks are re-executed in place with the ``test`` preset. Either way ``pytest --nbval-lax`` (test
    preset) compares only the cells tagged ``nbval-check-output``, which print preset-independent checks. Progress
    bars (and their widget state), warnings (stderr) and execution timings are dropped.
    """
    import os
    import tempfile

    import nbformat
    import papermill as pm

    os.environ["COURSE_PRESET"] = "test"
    for nb in notebooks:
        with tempfile.TemporaryDirectory() as tmp:
            if source is not None:
                out = source / nb.name
                if not out.exists():
                    raise CourseError(f"{out} does not exist: run `make coursework` (or `make report`) first")
                print(f"storing outputs of {nb.name} from {out} ...", flush=True)
            else:
                print(f"storing outputs of {nb.name} ...", flush=True)
                out = Path(tmp) / nb.name
                pm.execute_notebook(str(nb), str(out), cwd=str(nb.parent), progress_bar=False, kernel_name="python3")
            book = nbformat.read(out, as_version=4)
        if source is not None:  # this notebook as committed (its text), with the run's outputs in its code cells
            mine = nbformat.read(nb, as_version=4)
            ran = [c for c in book.cells if c.cell_type == "code"
                   and "injected-parameters" not in c.metadata.get("tags", [])]
            code = [c for c in mine.cells if c.cell_type == "code"]
            if [c.source for c in code] != [c.source for c in ran]:
                raise CourseError(f"{out} was run from another version of {nb.name}'s code: rerun it "
                                  "(make report), then store again")
            for cell, done in zip(code, ran):
                cell.outputs, cell.execution_count = done.outputs, done.execution_count
            mine.metadata.update({k: v for k, v in book.metadata.items() if k in ("kernelspec", "language_info")})
            book = mine
        book.metadata.pop("papermill", None)
        book.metadata.pop("widgets", None)  # progress bars' widget state: noise in every diff
        for cell in book.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
            if cell.cell_type == "code":
                cell.outputs = [
                    o for o in cell.outputs
                    if not (o.output_type == "stream" and o.name == "stderr")
                    and "application/vnd.jupyter.widget-view+json" not in o.get("data", {})
                ]
        nbformat.write(book, nb)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_lib.run", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (default: cpu)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a knob or any Config setting (repeatable)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="run only notebooks whose name contains one of these, on top of the last run's rows and "
                         "figures in build/<preset>/ (nothing promoted); with --store-outputs, store only these")
    ap.add_argument("--no-promote", action="store_true", help="leave report/ and figures/ alone")
    ap.add_argument("--studies", action="store_true",
                    help="train notebook 07's study grids and update only report/studies.csv and figures/study_*")
    ap.add_argument("--store-outputs", action="store_true",
                    help="give notebooks/ stored outputs: re-executed with the test preset, or --from a run's")
    ap.add_argument("--from", dest="source", default=None, metavar="FOLDER",
                    help="with --store-outputs: take the outputs of this run's executed notebooks, e.g. "
                         "build/coursework/notebooks (what the site and the committed notebooks show)")
    args = ap.parse_args(argv)

    root = project_root()
    if args.store_outputs:
        try:
            notebooks = notebook_list(root / "notebooks")
            if args.only:  # e.g. only 07's outputs from a run that reran 07 alone (--only 07)
                notebooks = [nb for nb in notebooks if any(s in nb.name for s in args.only)]
            store_outputs(notebooks, Path(args.source) if args.source else None)
        except CourseError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        params = dict(parse_param(p) for p in args.param)
        preset = args.preset or params.pop("preset", None)
        cfg = resolve(preset, **params)  # fails fast, with one line, on any bad name, value or folder
        if not args.store_outputs:
            from .data import check_sets

            check_sets(cfg)  # the data's layout, before build/<preset>/ is touched or any notebook runs
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import papermill as pm

    out = cfg.out_path
    if args.studies and "out_dir" not in params:  # build/<preset>-studies/: make report's build/<preset>/ stays whole
        out = out.with_name(out.name + "-studies")
    if out.resolve() in (root.resolve(), (root / "report").resolve(), (root / "figures").resolve()):
        print(f"error: out_dir {str(out)!r} is where the promoted report lives: pick an empty working folder, "
              "e.g. -p out_dir=build/mine", file=sys.stderr)
        return 2
    if not args.only:  # a whole run starts clean; --only reruns some notebooks on top of the last run's rows
        for sub in ("metrics", "report", "figures", "notebooks"):
            shutil.rmtree(out / sub, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    knobs = {k: v for k, v in params.items() if k in KNOBS and k != "out_dir"}
    # papermill writes a tuple into the injected cell as its text: pass lists (resolve() makes them tuples again)
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if k not in KNOBS}
    parameters = {"preset": cfg.preset, **knobs, "settings": settings, "out_dir": str(out)}
    notebooks = notebook_list(root / "notebooks")
    if args.studies:
        notebooks = [nb for nb in notebooks if nb.name.startswith(STUDIES_NOTEBOOK)]
    if args.only:
        notebooks = [nb for nb in notebooks if any(s in nb.name for s in args.only)]
    print(f"preset {cfg.preset}: {len(notebooks)} notebooks -> {out}")
    t_all = time.perf_counter()
    timings = []
    for i, nb in enumerate(notebooks, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(notebooks)}] {nb.name} ...", end=" ", flush=True)
        executed = out / "notebooks" / nb.name
        try:
            # notebook 07 trains its grids only under --studies; `make report` draws it from the committed table
            extra = {"run_grid": bool(args.studies)} if nb.name.startswith(STUDIES_NOTEBOOK) else {}
            pm.execute_notebook(str(nb), str(executed), parameters={**parameters, **extra}, cwd=str(nb.parent),
                                progress_bar=False, kernel_name="python3")
        except pm.PapermillExecutionError as err:
            print("failed")
            print(f"error: {nb.name} failed with {err.ename}: {err.evalue.splitlines()[0] if err.evalue else ''}; "
                  f"see {executed}; report/ and figures/ left as they were", file=sys.stderr)
            return 1
        timings.append({"notebook": nb.name, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"done in {timings[-1]['seconds']:.0f} s")
    timings.append({"notebook": "all", "seconds": round(time.perf_counter() - t_all, 1)})
    if (out / "report").is_dir():  # wall times of this run beside its tables (not compared by any test)
        (out / "report" / "timings.csv").write_text(
            "notebook,seconds\n" + "".join(f"{t['notebook']},{t['seconds']}\n" for t in timings))
    if args.studies and not args.no_promote:
        sub = cfg.report_folder
        _promote_files(out / "report", root / "report" / sub, ["studies.csv"])
        _promote_files(out / "figures", root / "figures" / sub, sorted(p.name for p in (out / "figures").glob("study_*")))
        print(f"{Path('report', sub, 'studies.csv')} and {Path('figures', sub)}/study_* updated "
              f"({timings[-1]['seconds'] / 60:.1f} min in all)")
        return 0
    if not args.no_promote and not args.only:
        others = tuple(p for p in PRESETS if p not in DIGITS_PRESETS)
        sub = cfg.report_folder  # "" for the digits' report: report/ itself
        for folder in ("report", "figures"):
            _promote(out / folder, root / folder / sub, keep=others)
        where = " and ".join(str(Path(folder, sub)) + "/" for folder in ("report", "figures"))
        print(f"{where} updated ({timings[-1]['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
