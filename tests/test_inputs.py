"""Every bad input, through both entry points: exit code 2, one line that names the fix, nothing changed.

``course_lib.run`` and ``course_lib.pretrain`` are called in-process (``main(argv)``) in a throw-away project
(``COURSE_ROOT``) holding a report, figures, notebooks, the previous run's ``build/<preset>/`` and a run folder,
which must be byte-identical afterwards; papermill is replaced by a tripwire, so a bad input that got through
would fail the test instead of running a notebook. One subprocess checks the real command line end to end.
"""
import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import CourseError, distributed, pretrain, resolve, run, train
from course_lib.runs import CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project whose every folder holds something, and a tripwire instead of papermill."""
    root = tmp_path / "project"
    for rel, content in {
        "report/results.csv": b"earlier report\n", "figures/curve.png": b"\x89PNG earlier figure",
        "notebooks/00_probe.ipynb": b"{}", "build/test/notebooks/00_probe.ipynb": b"previous run",
        "build/cpu-cifar/notebooks/00_probe.ipynb": b"previous run", "runs/vicreg-N1-0123456789/checkpoint.pt": b"x",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    (root / "pyproject.toml").write_text("")
    monkeypatch.setenv("COURSE_ROOT", str(root))
    monkeypatch.delenv("COURSE_PRESET", raising=False)
    import papermill

    def tripwire(*args, **kwargs):
        raise AssertionError("a notebook ran: the bad input was not refused before the notebooks")

    monkeypatch.setattr(papermill, "execute_notebook", tripwire)
    return root


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (report/, figures/, notebooks/, build/, runs/ ...) by its bytes' hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(main, argv, pattern, capsys, root) -> str:
    before = _snapshot(root)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]
    assert _snapshot(root) == before  # report/, figures/, notebooks/, build/<preset>/ and run folders untouched
    return lines[0]


# (input, the fix the one line must name): the settings, through `python -m course_lib.run -p ...`
BAD_SETTINGS = [
    ("pretrain_epochs=abc", r"pretrain_epochs must be a whole number >= 1, got 'abc': e\.g\. pretrain_epochs=\d+"),
    ("batch_size=64.0", r"batch_size must be a whole number >= 1, got 64\.0: e\.g\. batch_size=64$"),
    ("pretrain_epochs=2.5", r"pretrain_epochs must be a whole number >= 1, got 2\.5"),
    ("pretrain_lr=nan", r"pretrain_lr must be a finite number > 0, got 'nan': e\.g\. pretrain_lr=0\.001"),
    ("pretrain_lr=-1", r"pretrain_lr must be a finite number > 0, got -1"),
    ("probe_lr=1e400", r"probe_lr must be a finite number > 0, got inf"),
    ("seed=abc", r"seed must be a whole number >= 0, got 'abc': e\.g\. seed=0"),
    ("batch_size=12.5", r"batch_size must be a whole number >= 1, got 12\.5"),
    ("crop_scale=(1.5, 0.2)", r"crop_scale must be two fractions .* 0 < smallest <= largest <= 1, e\.g\. "
                              r"crop_scale=\(0\.2, 1\.0\): got \(1\.5, 0\.2\)"),
    ("crop_scale=(0.5, 0.2)", r"crop_scale must be two fractions .*got \(0\.5, 0\.2\)"),
    ("crop_scale=(0.2,)", r"crop_scale must be two fractions"),
    ("label_fractions=(0.5, 1.5)", r"label_fractions must be fractions in \(0, 1\], e\.g\. label_fractions=\(0\.01, 0\.1\)"),
    ("label_fractions=(0, 0.1)", r"label_fractions must be fractions in \(0, 1\]"),
    ("moco_momentum=1.5", r"moco_momentum must be a finite number >= 0 and < 1"),
    ("projector=(64, -1)", r"projector must list whole layer widths >= 1"),
    ("loss_weights=(25, 25)", r"loss_weights must be three finite weights >= 0"),
    ("checkpoint_every_s=-5", r"checkpoint_every_s must be a finite number >= 0"),
    ("checkpoint_within_epoch_s=-1", r"checkpoint_within_epoch_s must be a finite number >= 0"),
    ("download=maybe", r"download must be True or False, got 'maybe'"),
    ("precision=fp8", r"unknown precision 'fp8': use auto, fp32, bf16 or fp16"),
    ("encoder_overrides={'N1': {'batch_size': 0.5}}", r"encoder_overrides\['N1'\]: batch_size must be a whole number"),
]


@pytest.mark.parametrize("param,pattern", BAD_SETTINGS, ids=[p for p, _ in BAD_SETTINGS])
def test_a_bad_setting_is_one_line_before_any_notebook(param, pattern, project, capsys):
    print(_refused(run.main, ["--preset", "test", "-p", param], pattern, capsys, project), file=sys.__stdout__)


@pytest.mark.parametrize("param,pattern", [BAD_SETTINGS[0], BAD_SETTINGS[2], BAD_SETTINGS[7]],
                         ids=["pretrain_epochs=abc", "pretrain_epochs=2.5", "batch_size=12.5"])
def test_pretrain_refuses_the_same_settings_and_leaves_no_run_folder(param, pattern, project, capsys):
    _refused(pretrain.main, ["--preset", "test", "--encoder", "N1", "-p", param], pattern, capsys, project)


# ----------------------------------------------------------------------------- data folders
def _data(tmp_path, kind):
    root = tmp_path / "data"
    if kind == "file":
        root.parent.mkdir(parents=True, exist_ok=True)
        root.write_text("not a folder")
        return root
    root.mkdir(parents=True, exist_ok=True)
    if kind == "wrong":  # some other dataset's folders
        (root / "mnist" / "train").mkdir(parents=True)
    if kind == "cifar-only":  # CIFAR-10 as an image folder, but no Tiny ImageNet
        for split in ("train", "test"):
            (root / "cifar10" / split).mkdir(parents=True)
    if kind == "tarball":
        (root / "cifar-10-python.tar.gz").write_bytes(b"")
    return root


DATA_CASES = [
    ("empty", "cpu-cifar", r"no CIFAR-10 in '.*data': data_root must hold cifar10/ with train/ and test/ image "
                           r"folders \(or cifar10/cifar-10-batches-py/\), or cifar-10-batches-py/ directly; "
                           r"download https://.* or set download=True"),
    ("wrong", "cpu-cifar", r"no CIFAR-10 in '.*data': data_root must hold cifar10/ with train/ and test/"),
    ("file", "cpu-cifar", r"data_root '.*data' is a file, not a folder: set data_root to the folder that holds"),
    ("cifar-only", "cpu-cifar", r"no Tiny ImageNet in '.*data': data_root must hold tiny-imagenet-200/ "
                                r"\(or tiny-imagenet-200\.zip\); download https://cs231n\.stanford\.edu/"),
    ("tarball", "cpu-cifar", r"cifar-10-python\.tar\.gz is not extracted: run `tar xzf"),
    ("missing", "cpu-cifar", r"data folder '.*missing' does not exist"),
    ("empty", "imagefolder", r"no image folder in '.*data': dataset 'imagefolder' needs train/<class>/ and "
                             r"test/<class>/ image folders there"),
]


@pytest.mark.parametrize("kind,preset,pattern", DATA_CASES, ids=[f"{k}-{p}" for k, p, _ in DATA_CASES])
def test_a_wrong_data_folder_is_refused_before_build_is_touched(kind, preset, pattern, project, tmp_path, capsys):
    root = tmp_path / "missing" if kind == "missing" else _data(tmp_path, kind)
    argv = ["--preset", preset, "-p", f"data_root={root}"] if preset != "imagefolder" else \
        ["--preset", "test", "-p", "dataset_a=imagefolder", "-p", "dataset_b=none", "-p", f"data_root={root}"]
    line = _refused(run.main, argv, pattern, capsys, project)
    print(line, file=sys.__stdout__)
    if preset == "cpu-cifar" and kind != "missing":  # the pretraining entry point checks the same, first
        _refused(pretrain.main, ["--preset", "coursework", "--encoder", "N1", "-p", f"data_root={root}"], pattern,
                 capsys, project)


# ----------------------------------------------------------------------------- torchrun
def test_a_global_batch_the_processes_cannot_share_is_refused_before_the_workers_join(project, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")

    def start(cfg):
        raise AssertionError("the process group started before the batch was checked")

    monkeypatch.setattr(distributed, "start", start)
    _refused(pretrain.main, ["--preset", "test", "--encoder", "N1", "-p", "batch_size=127"],
             r"batch_size 127 is the global batch of 2 processes, which must share it equally: use a multiple of 2, "
             r"e\.g\. -p batch_size=126$", capsys, project)
    monkeypatch.setenv("RANK", "1")  # the other worker exits with the same code, silently
    assert pretrain.main(["--preset", "test", "--encoder", "N1", "-p", "batch_size=127"]) == 2
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- damaged checkpoints
@pytest.mark.parametrize("damage", ["zero-byte", "half-written"])
def test_a_damaged_checkpoint_is_named_with_the_fix(damage, project, capsys):
    argv = ["--preset", "test", "--encoder", "N1", "--no-probe", "-p", "dataset_a=digits-a", "-p", "dataset_b=none",
            "-p", "pretrain_epochs=1", "-p", "batch_size=64", "-p", "projector=(32, 32)", "-p", "monitor_every=0"]
    assert pretrain.main(argv) == 0
    (ckpt,) = [p for p in (project / "runs").glob(f"*/{CHECKPOINT}") if p.parent.name != "vicreg-N1-0123456789"]
    whole = ckpt.read_bytes()
    ckpt.write_bytes(b"" if damage == "zero-byte" else whole[: len(whole) // 2])
    capsys.readouterr()
    reason = r"0 bytes" if damage == "zero-byte" else r"RuntimeError: PytorchStreamReader failed reading zip archive"
    line = _refused(pretrain.main, argv, rf"checkpoint {re.escape(str(ckpt))} is damaged or half-written "
                                         rf"\({reason}.*\): delete it and run again to train that run afresh$",
                    capsys, project)
    print(line, file=sys.__stdout__)


def test_a_finished_runs_probe_is_computed_once_and_again_when_its_settings_change(project, capsys, monkeypatch):
    from course_lib import evaluate

    argv = ["--preset", "test", "--encoder", "N1", "-p", "dataset_a=digits-a", "-p", "dataset_b=none",
            "-p", "pretrain_epochs=1", "-p", "batch_size=64", "-p", "projector=(32, 32)", "-p", "monitor_every=0",
            "-p", "probe_epochs=3"]
    assert pretrain.main(argv) == 0
    first = [line for line in capsys.readouterr().out.splitlines() if line.startswith("linear probe")]
    calls = []
    real = evaluate.linear_probe
    monkeypatch.setattr(evaluate, "linear_probe", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert pretrain.main(argv) == 0  # the finished run is loaded: its probe is read back, not refitted
    again = [line for line in capsys.readouterr().out.splitlines() if line.startswith("linear probe")]
    assert calls == [] and len(first) == 1 and again == [first[0] + " (stored in probe.json)"]
    assert pretrain.main(argv[:-1] + ["probe_epochs=4"]) == 0  # another probe recipe: fitted again
    assert calls == [1]


# ----------------------------------------------------------------------------- the rest of the list
def test_the_test_preset_checkpoints_every_epoch():
    assert resolve("test").checkpoint_every_s == 0


def test_the_makefile_quotes_every_data_path():
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "report-cifar", "coursework", "book", "notebooks",
                          "DATA=dir with spaces", "NOTEBOOKS=my notebooks", "FROM=my run", "VENV=/nonexistent"],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("data_root=") == out.count('"data_root=dir with spaces"') == 3  # report-cifar, coursework(-runs)
    for line in (line for line in out.splitlines() if "-m course_lib.run" in line and "data_root" in line):
        assert "data_root=dir with spaces" in shlex.split(line)  # one argument, spaces and all
    assert '--notebooks "my notebooks"' in out and '--from "my run"' in out


def test_tiny_imagenet_downloads_over_https_with_its_checksum():
    from course_lib import realdata

    assert realdata.TINY_URL.startswith("https://") and realdata.CIFAR10_URL.startswith("https://")
    assert re.fullmatch(r"[0-9a-f]{32}", realdata.TINY_MD5)


# ----------------------------------------------------------------------------- the real command lines
def test_the_command_line_exits_2_with_one_line(project):
    """``python -m course_lib.run`` for real (course_lib.pretrain shares the code path above; ~9 s to start)."""
    module, param, pattern = "course_lib.run", "pretrain_lr=nan", r"pretrain_lr must be a finite number > 0"
    env = {**os.environ, "COURSE_ROOT": str(project), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    before = _snapshot(project)
    done = subprocess.run([sys.executable, "-m", module, "--preset", "test", "-p", param], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(pattern, lines[0]), done.stderr
    assert _snapshot(project) == before


def test_a_course_error_in_a_notebook_shows_its_one_line_and_still_fails_the_cell(capsys):
    import re

    from IPython.core.interactiveshell import InteractiveShell

    import course_lib

    shell = InteractiveShell()  # not the singleton: get_ipython() must stay None for the tests after this one
    course_lib.short_course_errors(shell)
    code = ("from course_lib import CourseError\n"
            "def deep():\n    raise {}('batch_size must be >= 1, got 0: e.g. batch_size=256')\n"
            "deep()")
    result = shell.run_cell(code.format("CourseError"))
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # without IPython's colours
    assert not result.success  # papermill and nbval still see the cell fail
    assert "CourseError: batch_size must be >= 1, got 0: e.g. batch_size=256" in shown
    assert "Traceback" not in shown and "deep()" not in shown
    result = shell.run_cell(code.format("ValueError"))  # any other error keeps its whole traceback
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert not result.success and "deep()" in shown and "ValueError: batch_size" in shown


def test_a_datasets_folder_is_decided_in_one_place():
    from pathlib import Path

    from course_lib import realdata
    from course_lib.config import parse_spec, project_root

    assert parse_spec("cifar10:/x", "/y") == ("cifar10", Path("/x"))  # the spec's own path first
    assert parse_spec("tiny-imagenet", "/y") == ("tiny-imagenet", Path("/y"))  # then data_root
    assert parse_spec("cifar10", None) == ("cifar10", project_root() / "data")  # then the project's data/
    assert parse_spec("cifar10", None, default=False) == ("cifar10", None)  # what the user named: nothing
    assert parse_spec("digits-a", None) == ("digits-a", None) and parse_spec("imagefolder", None)[1] is None
    assert realdata._need_root("tiny-imagenet", None) == project_root() / "data"  # the loaders ask config
    with pytest.raises(CourseError, match="set data_root to the folder that holds train/<class>/"):
        realdata._need_root("imagefolder", None)
    resolve("coursework")  # no data_root: nothing to check yet (a fresh clone has no data/), no error
