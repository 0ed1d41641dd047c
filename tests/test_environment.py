"""pyproject.toml and environment.yml name the same packages."""
import re
import tomllib

import yaml
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda name -> pip name


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_pyproject_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = {_name(s) for s in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {
        CONDA_NAMES.get(_name(dep), _name(dep))
        for dep in env["dependencies"]
        if isinstance(dep, str) and _name(dep) not in ("python", "pip")
    }
    assert pip == conda, f"only in pyproject: {pip - conda}; only in environment.yml: {conda - pip}"


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_notebook_opens_in_colab_and_installs_course_lib_there(tmp_path):
    import json

    from course_lib import colab

    url = colab.repository_url(ROOT)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 7
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        badge, install = "".join(cells[0]["source"]), "".join(cells[1]["source"])
        assert cells[0]["cell_type"] == "markdown" and cells[1]["cell_type"] == "code"
        slug = url.removeprefix("https://github.com/")
        assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name})" in badge, path.name
        assert 'if "google.colab" in sys.modules:' in install and f"git+{url}@main" in install, path.name
    # a notebook without them gets them once, in front; applying them again changes nothing
    copy = tmp_path / "07_new.ipynb"
    nb = {"cells": [{"cell_type": "code", "id": "x", "metadata": {"tags": ["parameters"]}, "source": ["a = 1\n"],
                     "execution_count": None, "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    copy.write_text(json.dumps(nb))
    assert colab.apply(copy, url) and not colab.apply(copy, url)
    cells = json.loads(copy.read_text())["cells"]
    assert [c["metadata"]["tags"] for c in cells] == [["colab-badge"], ["colab-install"], ["parameters"]]
    assert "notebooks/07_new.ipynb" in "".join(cells[0]["source"])
