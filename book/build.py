"""Build the course's website (Jupyter Book 1.x) from the notebooks' stored outputs.

    python book/build.py                                   # notebooks/  -> build/book/_build/html/index.html
    python book/build.py --notebooks build/cpu/notebooks   # the executed notebooks of a `make report` run
    python book/build.py --out /tmp/site                   # another build folder

Stages a source tree in ``<out>/src/`` laid out as the repository is (so that the relative links of
README.md, the reports and the notebooks work unchanged): book/'s _config.yml, _toc.yml and intro.md,
README.md (included by the intro page), the notebooks, report/ and figures/, and a generated Figures page
that shows every PNG under figures/ with links to its PDF and SVG twins. Then ``jupyter-book build``
writes ``<out>/_build/html/``. Nothing is executed: the pages show the outputs the notebooks carry.
Every Sphinx warning (a broken link, a missing figure) fails the build, after it has gone to the end.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

#: A Markdown image whose source is on the web: offline it would be a broken picture, so the site keeps
#: its alt text (the Colab badge becomes a plain "Open In Colab" link).
_WEB_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*https?://[^)\s]+(?:\s+\"[^\"]*\")?\s*\)")
_WIDGET = "application/vnd.jupyter.widget-view+json"


def notebook_list(folder: Path) -> list[Path]:
    """The course's notebooks in a folder, in order (the runner's rule: ``NN_name.ipynb``)."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def clean_notebook(nb: dict) -> dict:
    """A notebook as the site shows it: no progress-bar widgets, no picture fetched from the web.

    The cells tagged ``colab-install`` (a ``pip install`` that only runs in Colab) are left out of the page.
    """
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = _WEB_IMAGE.sub(r"\1", source)
        elif cell["cell_type"] == "code":
            if "colab-install" in tags and "remove-cell" not in tags:
                tags.append("remove-cell")
            cell["outputs"] = [o for o in cell.get("outputs", []) if _WIDGET not in o.get("data", {})]
    return nb


def _repository_url() -> str | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10: keep _config.yml's URL
        return None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project.get("urls", {}).get("Repository")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _folder_label(sub: str) -> str:
    """The Figures page's target for ``figures/<sub>/`` (``sub`` "." for figures/ itself)."""
    return "figures" if sub == "." else "figures-" + re.sub(r"[^a-z0-9]+", "-", sub.lower()).strip("-")


def link_folders(text: str, src: Path) -> str:
    """Point Markdown links to a folder of figures (GitHub shows a listing) at that folder's Figures section."""
    def repl(m: re.Match) -> str:
        target = m.group(1)
        path = (src / target).resolve()
        figures = (src / "figures").resolve()
        if path.is_dir() and (path == figures or figures in path.parents):
            return f"](#{_folder_label(path.relative_to(figures).as_posix())})"
        return m.group(0)
    return re.sub(r"\]\(([^)\s:#]+)\)", repl, text)


def figures_page(figures: Path, src: Path) -> str:
    """The Figures page: every PNG under ``figures/``, one section per folder, PDF/SVG links beside it."""
    lines = ["# Figures", "",
             "Every figure of the reports, as `make report` (and `make report-cifar`) saved it. "
             "Each one links to its files: the PNG shown here and, where they exist, the PDF and SVG "
             "versions for print.", ""]
    folders = sorted({p.parent for p in figures.rglob("*.png")}, key=lambda d: (d != figures, str(d)))
    for folder in folders:
        sub = folder.relative_to(figures).as_posix()
        name = "figures/" if sub == "." else f"figures/{sub}/"
        label = _folder_label(sub)
        report = Path("report") if sub == "." else Path("report", sub)
        lines += [f"({label})=", f"## `{name}`", ""]
        if (src / report / "results.md").exists():
            lines += [f"The figures of [{report.as_posix()}/results.md]({report.as_posix()}/results.md).", ""]
        lines += ["::::{grid} 1 1 2 2", ":gutter: 3", ""]
        for png in sorted(folder.glob("*.png")):
            rel = png.relative_to(figures.parent).as_posix()
            links = [f"[PNG]({rel})"]
            for ext in ("pdf", "svg"):
                if png.with_suffix("." + ext).exists():
                    links.append(f"[{ext.upper()}]({png.with_suffix('.' + ext).relative_to(figures.parent).as_posix()})")
            # a sized image links to its full-size copy (Sphinx's html_scaled_image_link)
            lines += [f":::{{grid-item-card}} {png.stem}", "",
                      f"```{{image}} {rel}", f":alt: {png.stem}", ":width: 100%", "```", "",
                      " · ".join(links), ":::", ""]
        lines += ["::::", ""]
    return "\n".join(lines)


def site_toc(src: Path) -> dict:
    """book/_toc.yml less the report pages this checkout lacks, plus any other preset's report/<name>/results.md."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    exists = lambda c: any((src / (c["file"] + ext)).exists() for ext in (".md", ".ipynb"))  # noqa: E731
    for part in toc["parts"]:
        part["chapters"] = [c for c in part["chapters"] if "file" not in c or exists(c)]
    listed = {c["file"] for part in toc["parts"] for c in part["chapters"] if "file" in c}
    extra = [{"file": f"report/{p.parent.name}/results", "title": f"Results: {p.parent.name}"}
             for p in sorted((src / "report").glob("*/results.md")) if f"report/{p.parent.name}/results" not in listed]
    if extra:  # before the Figures page
        results = next(part for part in toc["parts"] if part.get("caption") == "Results")
        at = next((i for i, c in enumerate(results["chapters"]) if c.get("file") == "figures"), len(results["chapters"]))
        results["chapters"][at:at] = extra
    return toc


def stage(out: Path, notebooks: Path) -> Path:
    """Lay out the site's sources in ``out/src`` and return that folder."""
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)

    found = notebook_list(notebooks)
    if not found:
        raise SystemExit(f"error: no notebooks (NN_name.ipynb) in {notebooks}: pass --notebooks FOLDER")
    for nb in found:
        book = clean_notebook(json.loads(nb.read_text(encoding="utf-8")))
        (src / "notebooks" / nb.name).write_text(json.dumps(book, indent=1, ensure_ascii=False), encoding="utf-8")

    for folder in ("report", "figures"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, src / folder,
                            ignore=shutil.ignore_patterns("*.new", "*.old", ".ipynb_checkpoints"))
    (src / "README.md").write_text(link_folders((ROOT / "README.md").read_text(encoding="utf-8"), src),
                                   encoding="utf-8")
    shutil.copy(BOOK / "intro.md", src / "intro.md")
    for folder in ("_ext", "_static"):
        shutil.copytree(BOOK / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "figures.md").write_text(figures_page(src / "figures", src), encoding="utf-8")

    committed = _rel(notebooks) == "notebooks"
    source = ("the committed notebooks in `notebooks/` (run with the `test` preset, the outputs `make test` "
              "compares)" if committed else f"the executed notebooks in `{_rel(notebooks)}/`")
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    config.setdefault("parse", {}).setdefault("myst_substitutions", {})["site_note"] = (
        f"This site was built by `make book` from {source}, showing the outputs stored in them: nothing was "
        "re-executed. The results pages and the Figures page show `report/` and `figures/` as "
        f"`make report` left them. It opens offline, from `{_rel(out / '_build' / 'html' / 'index.html')}`.")
    url = _repository_url()
    if url:
        config.setdefault("repository", {})["url"] = url
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    (src / "_toc.yml").write_text(yaml.safe_dump(site_toc(src), sort_keys=False))
    return src


def build(src: Path, out: Path, strict: bool = True) -> subprocess.CompletedProcess:
    """``jupyter-book build`` of ``src`` into ``out/_build/html``; the log goes to ``out/build.log``."""
    shutil.rmtree(out / "_build", ignore_errors=True)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(src), "--path-output", str(out), "--all", "-n"]
    if strict:
        cmd += ["-W", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    proc.stdout, proc.stderr = (re.sub(r"\x1b\[[0-9;]*m", "", text) for text in (proc.stdout, proc.stderr))
    (out / "build.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return proc


def warnings_of(log: str) -> list[str]:
    """The Sphinx warnings (and errors) in a build's output."""
    return [line for line in log.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python book/build.py", description=__doc__.split("\n")[0])
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks",
                    help="folder of the notebooks to show (default notebooks/; e.g. build/cpu/notebooks)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="build folder (default build/book)")
    ap.add_argument("--no-strict", action="store_true", help="keep the site even if Sphinx warns")
    args = ap.parse_args(argv)

    notebooks = args.notebooks if args.notebooks.is_absolute() else Path.cwd() / args.notebooks
    out = args.out.resolve()
    t0 = time.perf_counter()
    src = stage(out, notebooks)
    proc = build(src, out, strict=not args.no_strict)
    index = out / "_build" / "html" / "index.html"
    problems = warnings_of(proc.stdout + proc.stderr)
    for line in problems:
        print(line, file=sys.stderr)
    if proc.returncode != 0 or not index.exists():
        print(f"error: the site did not build cleanly ({len(problems)} warnings); full log: {_rel(out / 'build.log')}",
              file=sys.stderr)
        return 1
    print(f"site built in {time.perf_counter() - t0:.0f} s from {_rel(notebooks)}/: open {_rel(index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
