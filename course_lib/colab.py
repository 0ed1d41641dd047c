"""Colab: the badge and the install cell at the top of every notebook.

Each notebook opens with a markdown cell holding an "Open in Colab" badge for its own
path in the repository, then a code cell that installs ``course_lib`` from the
repository when (and only when) it runs in Colab. Both are written by this module
from one setting, the ``Repository`` URL in ``pyproject.toml``'s ``[project.urls]``;
a fork changes that URL and runs ``python -m course_lib.colab`` (``make colab``)
to point every badge and install cell at itself. ``tests/test_environment.py``
checks that every notebook carries both, for its own path.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path

from .config import project_root
from .errors import CourseError

BRANCH = "main"
BADGE_TAG = "colab-badge"
INSTALL_TAG = "colab-install"


def repository_url(root: Path | None = None) -> str:
    """The ``Repository`` URL of ``pyproject.toml`` (``https://github.com/<owner>/<name>``)."""
    pyproject = (root or project_root()) / "pyproject.toml"
    found = re.search(r'^Repository\s*=\s*"([^"]*)"', pyproject.read_text(), re.M)
    url = found.group(1) if found else ""
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise CourseError(
            f"pyproject.toml's [project.urls] Repository is {url!r}: set it to https://github.com/<owner>/<name>"
        )
    return url


def badge_markdown(url: str, notebook: str) -> str:
    """The "Open in Colab" badge of ``notebooks/<notebook>`` in the repository at ``url``."""
    slug = url.removeprefix("https://github.com/")
    target = f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/notebooks/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({target})"


def install_source(url: str) -> str:
    """The first code cell: in Colab, pip-install course_lib from the repository; elsewhere, nothing."""
    return (
        "# In Colab: install course_lib from the repository (a T4 runtime: Runtime > Change runtime type).\n"
        "# Anywhere else this cell does nothing: `make report` / `pip install -e .` installed it.\n"
        "# Colab forgets /content when it disconnects: to keep trained runs (they resume from their last epoch),\n"
        "# mount Drive and set settings = {\"runs_dir\": \"/content/drive/MyDrive/ssl-course/runs\"} below.\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    !pip install --quiet \"course-lib @ git+{url}@{BRANCH}\"\n"
    )


def _cell(kind: str, source: str, tag: str) -> dict:
    cell = {"cell_type": kind, "id": uuid.uuid4().hex[:8], "metadata": {"tags": [tag]}, "source": source.splitlines(True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _tagged(nb: dict, tag: str) -> int | None:
    for i, cell in enumerate(nb["cells"]):
        if tag in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def apply(path: Path, url: str) -> bool:
    """Put the badge (first cell) and the install cell (second) into one notebook; True if it changed."""
    nb = json.loads(path.read_text())
    before = json.dumps(nb["cells"])
    wanted = [(BADGE_TAG, "markdown", badge_markdown(url, path.name)), (INSTALL_TAG, "code", install_source(url))]
    for position, (tag, kind, source) in enumerate(wanted):
        i = _tagged(nb, tag)
        cell = nb["cells"].pop(i) if i is not None else _cell(kind, source, tag)
        cell["source"] = source.splitlines(True)
        nb["cells"].insert(position, cell)
    if json.dumps(nb["cells"]) == before:
        return False
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Colab badge and install cell into every notebook.")
    parser.add_argument("--repo", help="https://github.com/<owner>/<name> (default: pyproject's Repository URL)")
    args = parser.parse_args(argv)
    try:
        url = args.repo or repository_url()
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        print(f"{path.name}: {'updated' if apply(path, url) else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
