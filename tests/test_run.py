"""The batch runner refuses bad input in one line, before any notebook runs."""
import pytest

from course_lib import run


@pytest.mark.parametrize("argv,message", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["-p", "encoder=VGG"], "unknown encoder 'VGG'"),
    (["-p", "dataset_b=imagenet"], "unknown dataset 'imagenet'"),
    (["-p", "dataset_a=cifar10", "-p", "data_root=/no/such/folder"], "does not exist"),
    (["-p", "pretrain_epochs"], "write it as key=value"),
    (["-p", "crop_scale=0.5"], "crop_scale must be a list of values"),
])
def test_bad_input_is_one_line_and_touches_nothing(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "results.csv").write_text("earlier")
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert (tmp_path / "report" / "results.csv").read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_params_are_python_literals_or_strings():
    assert run.parse_param("pretrain_epochs=5") == ("pretrain_epochs", 5)
    assert run.parse_param("dataset_b=none") == ("dataset_b", "none")
    assert run.parse_param("projector=(64, 64)") == ("projector", (64, 64))
    assert run.parse_param("data_root=~/data") == ("data_root", "~/data")


def _probe_notebook(root, monkeypatch, last_line: str) -> None:
    """A one-notebook project in ``root``: a parameters cell, then resolve() and ``last_line``."""
    import json

    monkeypatch.setenv("COURSE_ROOT", str(root))
    (root / "notebooks").mkdir()
    cells = [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "execution_count": None, "outputs": [],
         "source": ["preset = None\nsettings = {}\nout_dir = None\n"]},
        {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["import pathlib, course_lib\n", "cfg = course_lib.resolve(preset, out_dir=out_dir, **settings)\n",
                    last_line]},
    ]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "notebooks" / "00_probe.ipynb").write_text(json.dumps(nb))


def test_list_settings_reach_the_notebooks_as_tuples(tmp_path, monkeypatch):
    """papermill writes tuples into the injected cell as text; the runner passes lists, resolve() makes tuples."""
    _probe_notebook(tmp_path, monkeypatch, "pathlib.Path(out_dir, 'seen.txt').write_text(repr((cfg.crop_scale, cfg.projector)))\n")
    assert run.main(["--preset", "test", "-p", "crop_scale=(0.2, 1.0)", "-p", "projector=[64, 32]", "--no-promote"]) == 0
    assert (tmp_path / "build" / "test" / "seen.txt").read_text() == "((0.2, 1.0), (64, 32))"


def test_out_dir_is_a_knob_not_a_duplicate_setting(tmp_path, monkeypatch):
    """`-p out_dir=DIR` writes the run there (it used to reach resolve() twice and fail inside notebook 02)."""
    _probe_notebook(tmp_path, monkeypatch, "pathlib.Path(cfg.out_path, 'seen.txt').write_text(str(cfg.out_path))\n")
    mine = tmp_path / "mine"
    assert run.main(["--preset", "test", "-p", f"out_dir={mine}", "--no-promote"]) == 0
    assert (mine / "seen.txt").read_text() == str(mine)
    assert (mine / "notebooks" / "00_probe.ipynb").exists() and not (tmp_path / "build").exists()


def test_out_dir_on_the_report_itself_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    (tmp_path / "report").mkdir()
    assert run.main(["--preset", "test", "-p", f"out_dir={tmp_path / 'report'}"]) == 2
    assert "pick an empty working folder" in capsys.readouterr().err


def test_only_reruns_a_notebook_on_top_of_the_last_runs_rows(tmp_path, monkeypatch):
    """`--only 07` must not delete the rows and figures the other notebooks of the last run wrote."""
    _probe_notebook(tmp_path, monkeypatch, "pathlib.Path(out_dir, 'seen.txt').write_text('ran')\n")
    out = tmp_path / "build" / "test"
    (out / "metrics").mkdir(parents=True)
    (out / "metrics" / "04.json").write_text("[]")
    assert run.main(["--preset", "test", "--only", "00", "--no-promote"]) == 0
    assert (out / "metrics" / "04.json").exists() and (out / "seen.txt").read_text() == "ran"
    assert run.main(["--preset", "test", "--no-promote"]) == 0  # a whole run starts clean
    assert not (out / "metrics" / "04.json").exists()


def test_store_outputs_takes_a_runs_outputs_only_for_the_notebooks_asked_and_refuses_other_code(tmp_path, monkeypatch,
                                                                                              capsys):
    import nbformat

    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    mine, ran = tmp_path / "notebooks", tmp_path / "build" / "notebooks"
    mine.mkdir()
    ran.mkdir(parents=True)
    for name in ("06_report.ipynb", "07_studies.ipynb"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# text"), nbformat.v4.new_code_cell("x = 1")])
        nbformat.write(nb, mine / name)
        done = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=f"ran {name}\n"),
            nbformat.v4.new_output("stream", name="stderr", text="a warning\n")])])
        nbformat.write(done, ran / name)
    assert run.main(["--store-outputs", "--from", str(ran), "--only", "07"]) == 0
    stored = nbformat.read(mine / "07_studies.ipynb", as_version=4)
    assert stored.cells[0].source == "# text"  # the committed text stays, the run's outputs come in
    assert [o["text"] for o in stored.cells[1].outputs] == ["ran 07_studies.ipynb\n"]  # stderr dropped
    assert nbformat.read(mine / "06_report.ipynb", as_version=4).cells[1].outputs == []  # not asked: untouched
    # a run made from other code is refused in one line, and the notebook keeps what it had
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 2")]), ran / "06_report.ipynb")
    assert run.main(["--store-outputs", "--from", str(ran), "--only", "06"]) == 2
    assert "another version of 06_report.ipynb's code" in capsys.readouterr().err
    assert nbformat.read(mine / "06_report.ipynb", as_version=4).cells[1].outputs == []
