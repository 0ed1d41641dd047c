"""The batch runner refuses bad input in one line, before any notebook runs."""
import pytest

from course_lib import run


@pytest.mark.parametrize("argv,message", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["-p", "encoder=VGG"], "unknown encoder 'VGG'"),
    (["-p", "dataset_b=imagenet"], "unknown dataset 'imagenet'"),
    (["-p", "dataset_a=cifar10", "-p", "data_root=/no/such/folder"], "does not exist"),
    (["-p", "pretrain_epochs"], "write it as key=value"),
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
