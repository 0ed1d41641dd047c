"""The course as a website (`make book`): built from the notebooks' stored outputs, whole, and offline.

One build per session (about 20 s on 2 cores) into a temporary folder; every check below reads it. The
browser check opens every page in headless Chromium (Debian's, driven by playwright) and fails on a
JavaScript error, a console error or a file that does not load.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("jupyter_book", reason="the site's tests need the book extras: pip install -e '.[book]'")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FIGURES = sorted((ROOT / "figures").rglob("*.png"))


def _load_build():
    spec = importlib.util.spec_from_file_location("book_build", ROOT / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_py = _load_build()


class _Page(HTMLParser):
    """The ids, links and loaded resources of one HTML page."""

    LOADS = {("script", "src"), ("link", "href"), ("img", "src"), ("source", "src"), ("iframe", "src"),
             ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data")}

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src", "data"):
            if attrs.get(key) is not None:
                self.refs.append((tag, key, attrs[key]))
        if tag == "img" and attrs.get("srcset"):
            self.refs += [("img", "srcset", part.split()[0]) for part in attrs["srcset"].split(",") if part.strip()]


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _external(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    src = build_py.stage(out, ROOT / "notebooks")
    proc = build_py.build(src, out, strict=True)
    log = proc.stdout + proc.stderr
    html = out / "_build" / "html"
    # the site's pages; the themes also copy Jinja templates (*.html) into _static/: not pages
    pages = {p: _parse(p) for p in sorted(html.rglob("*.html")) if p.relative_to(html).parts[0] != "_static"}
    return {"out": out, "src": src, "html": html, "log": log, "returncode": proc.returncode, "pages": pages}


def test_the_site_builds_without_a_warning(site):
    warnings = build_py.warnings_of(site["log"])
    assert site["returncode"] == 0 and not warnings, "\n".join(warnings) or site["log"][-3000:]
    assert (site["html"] / "index.html").exists()


def test_every_notebook_has_a_page_in_the_navigation(site):
    assert len(NOTEBOOKS) >= 7
    intro = site["pages"][site["html"] / "intro.html"]
    linked = {unquote(urlsplit(url).path) for _, _, url in intro.refs}
    for nb in NOTEBOOKS:
        assert (site["html"] / "notebooks" / f"{nb.stem}.html").exists(), nb.name
        assert f"notebooks/{nb.stem}.html" in linked, f"{nb.name} is not in the site's navigation"


def test_the_report_pages_and_the_intro_are_there(site):
    for md in ("report/results.md", "report/cpu-cifar/results.md"):
        if (ROOT / md).exists():
            assert (site["html"] / md.replace(".md", ".html")).exists(), md
    intro = (site["html"] / "intro.html").read_text(encoding="utf-8")
    assert "the committed notebooks in" in intro and "nothing was re-executed" in intro
    assert "What you will learn" in intro and "references.html" in intro  # the course's front door
    assert "Two commands" in (site["html"] / "developers.html").read_text(encoding="utf-8")  # README, its own page


def test_every_figure_png_is_reachable_from_the_site(site):
    """Each PNG of figures/ is shown or linked by some page (Sphinx renames the copies: compare bytes)."""
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    reached = set()
    for page, parsed in site["pages"].items():
        for _, _, url in parsed.refs:
            if not _external(url) and urlsplit(url).path.endswith(".png"):
                target = (page.parent / unquote(urlsplit(url).path)).resolve()
                if target.is_file():
                    reached.add(digest(target))
    missing = [str(p.relative_to(ROOT)) for p in FIGURES if digest(p) not in reached]
    assert FIGURES and not missing, f"figures no page shows or links: {missing}"
    for ext in ("pdf", "svg"):  # the print versions beside a PNG are linked from the Figures page
        for png in FIGURES:
            if png.with_suffix("." + ext).exists():
                name = png.with_suffix("." + ext).name
                assert name in (site["html"] / "figures.html").read_text(encoding="utf-8"), name


def test_every_internal_link_and_resource_resolves(site):
    html, broken = site["html"], []
    for page, parsed in site["pages"].items():
        for tag, attr, url in parsed.refs:
            if _external(url) or url.startswith(("mailto:", "javascript:", "data:")):
                continue
            parts = urlsplit(url)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            where = f"{page.relative_to(html)}: <{tag} {attr}={url!r}>"
            if not target.exists():
                broken.append(where + " (no such file)")
            elif target.is_dir():
                if not (target / "index.html").exists():
                    broken.append(where + " (a folder)")
            elif parts.fragment and target.suffix == ".html":
                ids = site["pages"][target].ids if target in site["pages"] else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(where + " (no such anchor)")
    assert not broken, "\n".join(broken[:40])


def test_the_site_loads_nothing_from_the_web(site):
    """Opened from file:// with no network, every script, style sheet, font and picture is local."""
    html, outside = site["html"], []
    for page, parsed in site["pages"].items():
        for tag, attr, url in parsed.refs:
            if (tag, attr) in _Page.LOADS or attr == "srcset":
                if _external(url):
                    outside.append(f"{page.relative_to(html)}: <{tag} {attr}={url}>")
        text = page.read_text(encoding="utf-8")
        for hit in re.findall(r"(?:unpkg\.com|cdn\.jsdelivr|cdnjs\.|fonts\.googleapis|require\.js)[^\"' ]*", text):
            outside.append(f"{page.relative_to(html)}: names {hit}")
    for css in html.rglob("*.css"):
        for hit in re.findall(r"(?:@import\s+(?:url\()?|url\()\s*['\"]?((?:https?:)?//[^'\")]+)", css.read_text(errors="replace")):
            outside.append(f"{css.relative_to(html)}: {hit}")
    assert not outside, "\n".join(outside[:40])


def test_search_page_and_index(site):
    html = site["html"]
    assert (html / "search.html").exists()
    index = (html / "searchindex.js").read_text(encoding="utf-8")
    assert "vicreg" in index.lower() and "collapse" in index.lower()


def test_formulas_come_with_a_local_mathjax(site):
    page = site["html"] / "notebooks" / f"{NOTEBOOKS[0].stem}.html"
    text = page.read_text(encoding="utf-8")
    assert len(re.findall(r'class="math', text)) >= 10, "notebook 00's formulas are missing"
    scripts = [url for tag, _, url in site["pages"][page].refs if tag == "script" and "mathjax" in url.lower()]
    assert scripts and not any(_external(u) for u in scripts), scripts
    assert all((page.parent / urlsplit(u).path).is_file() for u in scripts)


def test_staging_shows_an_executed_run_without_widgets_or_web_pictures(tmp_path):
    """`make book NOTEBOOKS=build/cpu/notebooks`: a report run's notebooks carry progress-bar widgets."""
    runs = tmp_path / "run" / "notebooks"
    runs.mkdir(parents=True)
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    code = next(c for c in nb["cells"] if c["cell_type"] == "code" and "colab-install" not in c["metadata"].get("tags", []))
    code["outputs"].append({"output_type": "display_data", "metadata": {},
                            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "bar"}})
    (runs / NOTEBOOKS[0].name).write_text(json.dumps(nb))
    src = build_py.stage(tmp_path / "site", runs)
    staged = json.loads((src / "notebooks" / NOTEBOOKS[0].name).read_text(encoding="utf-8"))
    assert "widgets" not in staged["metadata"]
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for c in staged["cells"] for o in c.get("outputs", []))
    badge = "".join(staged["cells"][0]["source"])
    assert "colab-badge.svg" not in badge and "colab.research.google.com" in badge  # a plain link
    assert "remove-cell" in staged["cells"][1]["metadata"]["tags"]  # the Colab-only install cell
    import yaml

    note = yaml.safe_load((src / "_config.yml").read_text())["parse"]["myst_substitutions"]["site_note"]
    assert f"the executed notebooks in `{runs}/`" in note


def test_a_folder_link_points_at_its_figures_section(tmp_path):
    (tmp_path / "figures" / "cpu-cifar").mkdir(parents=True)
    text = "see [figures](figures/cpu-cifar/) and [all](figures/) and [a file](report/results.md)"
    assert build_py.link_folders(text, tmp_path) == (
        "see [figures](#figures-cpu-cifar) and [all](#figures) and [a file](report/results.md)")


def test_the_figures_page_links_the_pdf_and_svg_beside_each_png(tmp_path):
    figures = tmp_path / "figures"
    (figures / "cpu-cifar").mkdir(parents=True)
    for name in ("figures/a.png", "figures/a.pdf", "figures/a.svg", "figures/cpu-cifar/b.png"):
        (tmp_path / name).write_bytes(b"")
    page = build_py.figures_page(figures, tmp_path)
    assert "[PDF](figures/a.pdf)" in page and "[SVG](figures/a.svg)" in page
    assert "```{image} figures/cpu-cifar/b.png" in page and "b.pdf" not in page
    assert page.index("(figures)=") < page.index("(figures-cpu-cifar)=")


def test_the_table_of_contents_follows_the_reports_present(tmp_path):
    (tmp_path / "report" / "colab-t4").mkdir(parents=True)
    for name in ("report/results.md", "report/colab-t4/results.md", "figures.md"):
        (tmp_path / name).write_text("# Results\n")
    results = next(p for p in build_py.site_toc(tmp_path)["parts"] if p["caption"] == "Results")
    files = [c["file"] for c in results["chapters"]]
    assert files == ["report/results", "report/colab-t4/results", "figures"]  # no cpu-cifar: not there


# --- the browser check ---------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("no chromium on PATH: install it to open every page headless "
                    "(Debian/Ubuntu, as root: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[book-check]' (playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def test_every_page_opens_in_chromium_without_an_error(site, browser):
    html = site["html"]
    page = browser.new_page()
    problems: list[str] = []
    current = {"url": ""}
    page.on("pageerror", lambda e: problems.append(f"{current['url']}: uncaught {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"{current['url']}: console: {m.text}"))
    page.on("requestfailed", lambda r: problems.append(f"{current['url']}: {r.url} failed ({r.failure})"))
    for path in site["pages"]:
        current["url"] = str(path.relative_to(html))
        if path.name == "index.html" and path.parent == html:  # a redirect to the intro page
            page.goto(path.as_uri(), wait_until="commit")
            page.wait_for_url("**/intro.html")
        else:
            page.goto(path.as_uri(), wait_until="load")
    page.goto((html / "notebooks" / f"{NOTEBOOKS[0].stem}.html").as_uri(), wait_until="load")
    page.wait_for_function("document.querySelectorAll('mjx-container').length > 10", timeout=20_000)
    current["url"] = "search.html?q=VICReg"
    page.goto((html / "search.html").as_uri() + "?q=VICReg", wait_until="load")
    page.wait_for_function("document.querySelectorAll('#search-results li').length > 0", timeout=20_000)
    page.close()
    assert not problems, "\n".join(problems[:40])
