"""Shipped encoders (course_lib.shipped): exported from a finished run, loaded in its place on a machine without one."""
import pytest
import torch

from course_lib import CourseError, data, resolve, shipped, train
from course_lib import pretrain as pretrain_cli
from course_lib.config import with_overrides
from course_lib.runs import snapshot_path
from course_lib.runtime import embed


@pytest.fixture
def encoders(tmp_path, monkeypatch):
    folder = tmp_path / "encoders"
    monkeypatch.setattr(shipped, "folder", lambda: folder)
    return folder


def _tiny(runs, **changes):
    settings = dict(device="cpu", runs_dir=str(runs), out_dir=str(runs.parent / "out"), batch_size=64,
                    projector=(32, 32), probe_epochs=2, monitor_every=1, pretrain_epochs=2, epochs_study=(1, 2, 3),
                    supervised_epochs=1)
    return resolve("test", **{**settings, **changes})


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def test_a_vicreg_run_exported_is_loaded_where_there_is_no_run(tmp_path, encoders):
    a = data.load_dataset("digits-a")
    cfg = _tiny(tmp_path / "mine")
    mine = train.pretrain_vicreg(cfg, "N1", a, progress=False)
    assert mine.status == "trained" and mine.encoder_epoch == 2 and mine.epochs == 3
    settings = (mine.run_dir / "settings.json").read_text()
    kept = {e: torch.load(snapshot_path(mine.run_dir, e), weights_only=True) for e in (1, 3)}
    out = shipped.export(mine, "test", __import__("json").loads(settings),
                         {"encoder": mine.encoder.state_dict(), "snapshots": kept}, "digits-a", encoders / "test" / "vicreg-N1.pt")
    assert out.is_file()

    # a student's machine: no runs of its own
    theirs = train.pretrain_vicreg(with_overrides(cfg, runs_dir=str(tmp_path / "student")), "N1", a, progress=False)
    assert theirs.status == "shipped" and "method" not in theirs.modules  # no projector ships
    assert _same_weights(theirs.encoder, mine.encoder)
    assert (theirs.epochs, theirs.encoder_epoch, round(theirs.seconds, 6)) == (3, 2, round(mine.seconds, 6))
    assert [r["loss"] for r in theirs.history] == pytest.approx([r["loss"] for r in mine.history])
    assert theirs.history[-1]["epoch"] == 3 and isinstance(theirs.history[-1]["iteration"], int)
    assert [m.keys() for m in theirs.epoch_metrics] == [m.keys() for m in mine.epoch_metrics]
    assert all(t == pytest.approx(m) for t, m in zip(theirs.epoch_metrics, mine.epoch_metrics))
    for epoch in (1, 2, 3):  # the epochs study's encoders are where snapshot_encoder looks
        assert _same_weights(train.snapshot_encoder(theirs, epoch, cfg), train.snapshot_encoder(mine, epoch, cfg))

    # their own run wins once it exists, and -p shipped_encoders=false trains one
    own = train.pretrain_vicreg(with_overrides(cfg, runs_dir=str(tmp_path / "own"), shipped_encoders=False), "N1", a,
                                progress=False)
    assert own.status == "trained"
    # other settings (fewer epochs) are another run: the shipped one does not serve them
    other = with_overrides(cfg, runs_dir=str(tmp_path / "other"), pretrain_epochs=1, epochs_study=())
    assert train.pretrain_vicreg(other, "N1", a, progress=False).status == "trained"


def test_the_supervised_baseline_ships_with_its_head(tmp_path, encoders):
    a = data.load_dataset("digits-a")
    cfg = _tiny(tmp_path / "mine")
    mine = train.train_supervised(cfg, "N1", a, progress=False)
    settings = __import__("json").loads((mine.run_dir / "settings.json").read_text())
    shipped.export(mine, "test", settings, {"model": mine.modules["model"].state_dict()}, "digits-a")
    theirs = train.train_supervised(with_overrides(cfg, runs_dir=str(tmp_path / "student")), "N1", a, progress=False)
    assert theirs.status == "shipped" and _same_weights(theirs.modules["model"], mine.modules["model"])
    assert theirs.encoder is theirs.modules["model"].encoder


def test_same_settings_ignores_precision_and_the_copy_of_the_data_only():
    ours = {"method": "vicreg", "lr": 1e-3, "precision": "torch.bfloat16",
            "data": "cifar10 (image folder)|(50000, 3, 32, 32)|123|456"}
    assert shipped.same_settings({**ours, "precision": "torch.float16"}, ours)
    assert shipped.same_settings({**ours, "data": "cifar10|(50000, 3, 32, 32)|999|1"}, ours)  # the pickles
    assert not shipped.same_settings({**ours, "data": "cifar10|(45000, 3, 32, 32)|999|1"}, ours)  # fewer images
    assert not shipped.same_settings({**ours, "data": "tiny-imagenet|(50000, 3, 32, 32)|123|456"}, ours)
    assert not shipped.same_settings({**ours, "lr": 3e-3}, ours)
    assert not shipped.same_settings({**ours, "epochs": 30}, ours)  # a key only one side has


def test_a_damaged_shipped_file_is_refused_in_one_line(tmp_path, encoders):
    (encoders / "coursework").mkdir(parents=True)
    (encoders / "coursework" / "vicreg-N1.pt").write_bytes(b"")
    with pytest.raises(CourseError, match="damaged.*shipped_encoders=false"):
        shipped.find("vicreg-N1", {})


def test_export_refuses_a_run_that_was_itself_shipped(tmp_path, encoders):
    a = data.load_dataset("digits-a")
    cfg = _tiny(tmp_path / "mine", epochs_study=())
    run = train.pretrain_vicreg(cfg, "N1", a, progress=False)
    run.status = "shipped"
    with pytest.raises(CourseError, match="shipped_encoders=false"):
        pretrain_cli._export(run, cfg, a, {"encoder": run.encoder.state_dict()})


def test_the_export_command_writes_what_the_notebooks_load(tmp_path, encoders, capsys):
    params = ["-p", f"runs_dir={tmp_path / 'runs'}", "-p", "device=cpu", "-p", "batch_size=64",
              "-p", "projector=(32,32)", "-p", "pretrain_epochs=1", "-p", "supervised_epochs=1",
              "-p", "shipped_encoders=false"]
    for method in ("vicreg", "supervised"):
        assert pretrain_cli.main(["--preset", "test", "--encoder", "N1", "--method", method, "--no-probe", "--export",
                                  *params]) == 0
    assert "exported vicreg-N1" in capsys.readouterr().out
    assert sorted(p.name for p in (encoders / "test").iterdir()) == ["supervised-N1.pt", "vicreg-N1.pt"]
    record = torch.load(encoders / "test" / "vicreg-N1.pt", weights_only=True)
    assert record["preset"] == "test" and record["epochs"] == 1 and "encoder" in record


def test_a_large_state_ships_in_float16_and_loads_as_float32(tmp_path, encoders, monkeypatch):
    """N2's files would be 45 MB per encoder in float32: above HALF_ABOVE numbers the weights are stored in float16.
    What loads is float32, each weight the trained one rounded to float16, and the encoder's embeddings barely move."""
    a = data.load_dataset("digits-a")
    cfg = _tiny(tmp_path / "mine")
    mine = train.pretrain_vicreg(cfg, "N1", a, progress=False)
    settings = __import__("json").loads((mine.run_dir / "settings.json").read_text())
    trained = mine.encoder.state_dict()
    out = shipped.export(mine, "test", settings, {"encoder": trained}, "digits-a", encoders / "test" / "vicreg-N1.pt")
    assert torch.load(out, weights_only=True)["stored"] == "float32"  # N1: under the threshold, exact
    small = out.stat().st_size

    monkeypatch.setattr(shipped, "HALF_ABOVE", 1000)
    out = shipped.export(mine, "test", settings, {"encoder": trained}, "digits-a", out)
    raw = torch.load(out, weights_only=True)
    assert raw["stored"] == "float16" and raw["encoder"]["blocks.0.0.weight"].dtype == torch.float16
    assert out.stat().st_size < 0.6 * small
    record = shipped.find("vicreg-N1", settings)
    assert "float16" in shipped.describe(record)
    for k, w in trained.items():
        got = record["encoder"][k]
        if w.is_floating_point():
            assert got.dtype == torch.float32 and torch.equal(got, w.cpu().half().float()), k
            big = w.abs() > 6.2e-5  # float16's normal range: relative rounding error at most 2^-11
            assert torch.all((got - w.cpu()).abs()[big] <= w.cpu().abs()[big] * 2 ** -11), k
            assert not torch.equal(got, w.cpu()) or w.numel() < 10, k  # it was rounded, not kept
        else:
            assert torch.equal(got, w.cpu()), k  # counters stay integers

    theirs = train.pretrain_vicreg(with_overrides(cfg, runs_dir=str(tmp_path / "student")), "N1", a, progress=False)
    assert theirs.status == "shipped"
    ref, got = embed(mine.encoder, a.x_test, cfg), embed(theirs.encoder, a.x_test, cfg)
    assert not torch.equal(got, ref)
    assert float((got - ref).norm(dim=1).max() / ref.norm(dim=1).min()) < 1e-2


def test_a_tensor_float16_cannot_hold_stays_float32():
    state = {"w": torch.tensor([1.0, 7e4]), "v": torch.tensor([0.5, -2.0]), "n": torch.tensor(3)}
    narrowed = shipped._narrow(state)
    assert narrowed["w"].dtype == torch.float32 and narrowed["v"].dtype == torch.float16
    assert narrowed["n"].dtype == torch.int64
    assert shipped._widen(narrowed)["v"].dtype == torch.float32
