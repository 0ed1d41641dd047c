"""Build the course's website (Jupyter Book 1.x) from the notebooks' stored outputs.

    python book/build.py                                   # notebooks/  -> build/book/_build/html/index.html
    python book/build.py --notebooks build/cpu/notebooks   # the executed notebooks of a `make report` run
    python book/build.py --out /tmp/site                   # another build folder

Stages a source tree in ``<out>/src/`` laid out as the repository is (so that the relative links of
README.md, the reports and the notebooks work unchanged): book/'s _config.yml and _toc.yml, the course's
front page intro.md (with its notebooks table and results list generated here, see :func:`front_page`),
developers.md (which includes README.md), book/references.md (at the same path as in the repository, so
that a notebook's ``../book/references.md`` link works on GitHub and on the site), the notebooks, report/
and figures/, and a generated Figures page that shows every PNG under figures/ with links to its PDF and
SVG twins. Then ``jupyter-book build`` writes ``<out>/_build/html/``. Nothing is executed: the pages show
the outputs the notebooks carry. Every Sphinx warning (a broken link, a missing figure) fails the build,
after it has gone to the end.
"""
from __future__ import annotations

import argparse
import csv
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


_HEADING = re.compile(r"^(#{1,3})[ \t]+(.+?)[ \t]*$", re.M)


def heading_anchor(text: str) -> str:
    """The anchor MyST gives a heading (``myst_heading_anchors``): lower case, punctuation dropped, spaces -> ``-``."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def figure_section(nb: dict, key: str) -> str | None:
    """The heading (``#``-``###``) above the first code cell of ``nb`` that names the figure ``key`` (a file stem or
    stem prefix of :data:`course_lib.plots.CAPTIONS`), or None."""
    heading = None
    for cell in nb.get("cells", []):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            found = _HEADING.findall(source)
            heading = found[-1][1] if found else heading
        elif f'"{key}' + ('' if key.endswith("_") else '"') in source:  # a prefix key starts an f-string name
            return heading
    return None


def figure_caption_lines(stem: str, notebooks: Path) -> list[str]:
    """The Figures page's caption of one figure: what it shows, and a link to the notebook section that draws it."""
    from course_lib.plots import CAPTIONS, caption_key

    key = caption_key(stem)
    if key is None:
        return []
    text, notebook = CAPTIONS[key]
    path = notebooks / f"{notebook}.ipynb"
    if not path.exists():
        return [text, ""]
    nb = json.loads(path.read_text(encoding="utf-8"))
    section = figure_section(nb, key)
    title = notebook_title(nb) or notebook
    where = f"notebooks/{notebook}.ipynb" + (f"#{heading_anchor(section)}" if section else "")
    label = f"{notebook[:2]} · {title}" + (f", *{section}*" if section else "")
    return [f"{text} Made in [{label}]({where}).", ""]


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
                      *figure_caption_lines(png.stem, src / "notebooks"),
                      " · ".join(links), ":::", ""]
        lines += ["::::", ""]
    return "\n".join(lines)


#: A notebook's title heading, ``# NN · Title``.
_TITLE = re.compile(r"^#[ \t]+(\d\d)[ \t]*·[ \t]*(.+?)[ \t]*$", re.M)

#: The run-time columns of the front page's notebooks table: (timings file under the staged tree, header).
TIMINGS = (("report/timings.csv", "CPU: digits (`cpu`)"),
           ("report/cpu-cifar/timings.csv", "CPU: CIFAR-10 → Tiny ImageNet (`cpu-cifar`)"))

#: The report pages the front page lists when they exist: (results page, what it is, the command that makes it).
REPORTS = (("report/results.md", "the scattered digits, the default data", "make report"),
           ("report/cpu-cifar/results.md", "CIFAR-10 → Tiny ImageNet on a CPU budget", "make report-cifar DATA=..."),
           ("report/coursework/results.md", "CIFAR-10 → Tiny ImageNet at the coursework's own budget",
            "make coursework DATA=..."))


def _markdown_sources(nb: dict):
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            yield "".join(source) if isinstance(source, list) else source


def notebook_title(nb: dict) -> str | None:
    """The title of a course notebook: its first ``# NN · Title`` heading, without the number."""
    for source in _markdown_sources(nb):
        m = _TITLE.search(source)
        if m:
            return m.group(2)
    return None


def learning_goals(nb: dict) -> list[str]:
    """The items of a notebook's "## Learning goals" cell, each joined onto one line."""
    for source in _markdown_sources(nb):
        lines = source.strip().splitlines()
        if not lines or not re.match(r"#+\s+Learning goals\b", lines[0]):
            continue
        goals: list[str] = []
        for line in lines[1:]:
            if re.match(r"\s*[-*]\s+", line):
                goals.append(re.sub(r"^\s*[-*]\s+", "", line).strip())
            elif goals and line.strip():
                goals[-1] += " " + line.strip()
        return [g.rstrip(";.").strip() for g in goals]
    return []


def read_timings(path: Path) -> dict[str, float]:
    """A ``make report`` timings file (columns notebook, seconds) as {notebook file or "all": seconds}."""
    if not path.is_file():
        return {}
    times = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                times[row["notebook"].strip()] = float(row["seconds"])
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
    return times


def format_seconds(seconds: float) -> str:
    """A run time as a reader says it: "25 s", "12 min", "1.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _one_liners() -> dict[str, str]:
    path = BOOK / "notebooks.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    return {str(k): str(v) for k, v in (data or {}).items()}


def notebooks_section(notebooks: list[Path], timings: list[tuple[str, dict[str, float]]],
                      one_liners: dict[str, str]) -> str:
    """The front page's notebooks table (title, one line, run times) and each notebook's learning goals.

    ``timings`` holds one (column header, read_timings(...)) per run-time column; columns with no times
    are left out. Titles and goals come from the notebooks, so the page follows them as they change.
    """
    timings = [(header, times) for header, times in timings if times]
    rows = []
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        number = path.name[:2]
        goals = learning_goals(nb)
        line = one_liners.get(number) or (goals[0] if goals else "")
        rows.append((path, number, notebook_title(nb) or path.stem, line, goals))

    header = ["", "notebook", "what you learn"] + [h for h, _ in timings]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for path, number, title, line, _ in rows:
        cells = [number, f"[{title}](notebooks/{path.name})", line]
        cells += [format_seconds(t[path.name]) if path.name in t else "not measured" for _, t in timings]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if timings:
        totals = []
        for _, t in timings:
            total = t.get("all", sum(t.get(p.name, 0.0) for p, *_ in rows))
            totals.append(f"**{format_seconds(total)}**")
        lines.append("| | **all of them** | | " + " | ".join(totals) + " |")
    out = lines + [""]
    if timings:
        sources = " and ".join(f"`{name}`" for name, header in TIMINGS if any(header == h for h, _ in timings))
        out += [f"Run times: the wall time of each notebook in the run that wrote {sources}, on the 2 CPU cores "
                "the project runs on. A notebook that finds a finished training run in `runs/` loads it instead "
                "of training, so a first run on your machine may take longer. On a Colab T4 GPU the times are "
                "not measured yet: no GPU has been available to the project.", ""]
    else:
        out += ["No run times in this checkout (`make report` writes them to `report/timings.csv`). On a Colab "
                "T4 GPU the times are not measured yet: no GPU has been available to the project.", ""]
    out += ["Each notebook's learning goals, as it states them:", ""]
    for path, number, title, _, goals in rows:
        out += [f":::{{dropdown}} {number} · {title}"]
        out += [f"- {g}" for g in goals] if goals else ["(no learning goals stated)"]
        out += [":::", ""]
    return "\n".join(out)


def results_section(src: Path) -> str:
    """The front page's list of the results pages present in the staged tree, then the Figures page."""
    items = []
    known = {page for page, _, _ in REPORTS}
    for page, what, command in REPORTS:
        if (src / page).exists():
            items.append(f"- [{what}]({page}) (`{command}`), with its table `{page[:-3]}.csv`")
    for page in sorted((src / "report").glob("*/results.md")):
        rel = page.relative_to(src).as_posix()
        if rel not in known:
            items.append(f"- [preset `{page.parent.name}`]({rel})")
    if (src / "figures.md").exists():
        items.append("- [Figures](figures.md): every figure of the reports, with its PDF and SVG for print")
    if not items:
        return "No report in this checkout yet: `make report` writes `report/results.md`.\n"
    return ("Each report sets this course's numbers beside the coursework's and the literature's, with the "
            "budget that produced them, and says which of the coursework's conclusions held:\n\n"
            + "\n".join(items) + "\n")


def front_page(template: str, src: Path, notebooks: list[Path]) -> str:
    """book/intro.md with its generated parts: ``<!-- build.py: notebooks -->`` and ``<!-- build.py: results -->``."""
    timings = [(header, read_timings(src / name)) for name, header in TIMINGS]
    parts = {"notebooks": lambda: notebooks_section(notebooks, timings, _one_liners()),
             "results": lambda: results_section(src)}
    return re.sub(r"^<!-- build\.py: (\w+) -->[ \t]*$", lambda m: parts[m.group(1)]().rstrip("\n"),
                  template, flags=re.M)


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
    for folder in ("_ext", "_static"):
        shutil.copytree(BOOK / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "figures.md").write_text(figures_page(src / "figures", src), encoding="utf-8")
    shutil.copy(BOOK / "developers.md", src / "developers.md")
    (src / "book").mkdir()
    shutil.copy(BOOK / "references.md", src / "book" / "references.md")
    (src / "intro.md").write_text(front_page((BOOK / "intro.md").read_text(encoding="utf-8"), src,
                                             notebook_list(src / "notebooks")), encoding="utf-8")

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
