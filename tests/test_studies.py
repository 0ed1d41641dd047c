"""Notebook 07's studies: the grid around the baseline, snapshots, reuse, the table and how it is read."""
import math

import pandas as pd
import pytest
import torch

from course_lib import CourseError, data, resolve, run, studies, train
from course_lib.config import with_overrides
from course_lib.runs import snapshot_path


def test_every_study_but_the_epochs_one_contains_the_baseline():
    for preset in ("test", "cpu"):
        cfg = resolve(preset)
        grid = studies.studies(cfg)
        assert [s.name for s in grid][:2] == ["epochs", "loss_terms"]
        for study in grid:
            labels = [p.label for p in study.points]
            assert len(set(labels)) == len(labels) >= 2, study.name
            configs = [studies.point_config(cfg, p, 0) for p in study.points]
            baseline = with_overrides(cfg, seed=0, monitor_every=0)
            if study.name == "epochs":
                assert cfg.pretrain_epochs in [c.pretrain_epochs for c in configs]
            else:  # the shared point: trained once, reused by every study
                assert baseline in configs, study.name
    full = {s.name: len(s.points) for s in studies.studies(resolve("cpu"))}
    assert full["epochs"] == 7 and full["loss_weights"] == 9 and full["projector_depth"] == 4
    assert studies.seeds_for(resolve("cpu")) == (0, 1, 2) and len(studies.seeds_for(resolve("test"))) == 2


def test_the_ablations_are_the_papers():
    terms = next(s for s in studies.studies(resolve("cpu")) if s.name == "loss_terms")
    assert [p.overrides.get("loss_weights") for p in terms.points] == [
        None, (25.0, 0.0, 1.0), (25.0, 25.0, 0.0), (25.0, 0.0, 0.0)]
    depth = next(s for s in studies.studies(resolve("cpu")) if s.name == "projector_depth")
    assert depth.points[0].overrides["projector"] == ()  # no projector at all


def _tiny(tmp_path, **changes):
    return resolve("test", device="cpu", runs_dir=str(tmp_path / "runs"), out_dir=str(tmp_path / "out"),
                   batch_size=64, projector=(32, 32), probe_epochs=5, comparison_images=200, **changes)


def test_a_snapshot_is_the_shorter_run(tmp_path):
    # With the constant learning rate, epoch 2 of a 3-epoch run is the 2-epoch run: the epochs study's shortcut.
    cfg = _tiny(tmp_path, monitor_every=0)
    a = data.load_dataset("digits-a")
    long = train.pretrain(with_overrides(cfg, pretrain_epochs=3), "N1", a, progress=False, keep_epochs=(2, 3))
    short = train.pretrain(with_overrides(cfg, pretrain_epochs=2), "N1", a, progress=False)
    kept = torch.load(snapshot_path(long.run_dir, 2), weights_only=True)
    for key, value in short.encoder.state_dict().items():
        assert torch.allclose(kept[key].float(), value.float().cpu(), atol=1e-5), key
    last = torch.load(snapshot_path(long.run_dir, 3), weights_only=True)
    assert not torch.allclose(last["fc.weight"], kept["fc.weight"])  # and epoch 3 moved on


def test_a_grid_trains_once_and_is_reused(tmp_path, monkeypatch):
    cfg = _tiny(tmp_path)
    grid = [studies.Study("epochs", "e", "epochs", "?", (studies.Point("1", {"pretrain_epochs": 1}, 1),
                                                         studies.Point("2", {"pretrain_epochs": 2}, 2))),
            studies.Study("crop_scale", "c", "crop", "?", (studies.Point("0.3", {"crop_scale": (0.3, 1.0)}, 0.3),
                                                          studies.Point("1", {"crop_scale": (1.0, 1.0)}, 1.0)))]
    monkeypatch.setattr(studies, "studies", lambda cfg: grid)
    monkeypatch.setattr(studies, "seeds_for", lambda cfg: (0, 1))
    a, b = data.load_sets(cfg)
    df = studies.run(cfg, a, b, progress=False)
    assert list(df.columns) == list(studies.COLUMNS)
    assert len(df) == 2 * 2 * 2 and set(df["seed"]) == {0, 1}  # studies x points x seeds
    assert df["top1_a"].between(20, 100).all() and df["top1_b"].notna().all()
    assert (df.loc[df["study"] == "epochs", "epochs"].tolist() == [1, 2, 1, 2])
    # one run per seed for the epochs study (snapshots), one per point and seed for the crops
    assert df.loc[df["study"] == "epochs"].groupby("seed")["run"].nunique().eq(1).all()
    trained = {p.name for p in (tmp_path / "runs").iterdir()}
    calls = []
    real = studies.linear_probe
    monkeypatch.setattr(studies, "linear_probe", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = studies.run(cfg, a, b, progress=False)
    assert {p.name for p in (tmp_path / "runs").iterdir()} == trained and calls == []  # runs and probes reused
    pd.testing.assert_frame_equal(again.drop(columns="train_seconds"), df.drop(columns="train_seconds"))
    path = studies.save(df, tmp_path / "report" / "studies.csv")
    assert studies.load(path).shape == df.shape


def test_summary_and_the_noise_rule_on_a_hand_made_table():
    rows = []
    for point, values in (("a", (80.0, 82.0, 84.0)), ("b", (85.0, 86.0, 87.0))):
        for seed, v in enumerate(values):
            rows.append({"study": "s", "point": point, "x": None, "seed": seed, "top1_a": v, "top1_b": v - 10,
                         "knn_top1": v, "effective_rank": 10.0, "std": 0.3})
    s = studies.summary(pd.DataFrame(rows))
    assert s["point"].tolist() == ["a", "b"] and s["seeds"].tolist() == [3, 3]
    assert s["top1_a_mean"].tolist() == [82.0, 86.0] and s["top1_a_std"].tolist() == [2.0, 1.0]
    tol = 2 * math.sqrt((2.0 ** 2 + 1.0 ** 2) / 3)  # 2.58
    c = studies.compare(s.iloc[1], s.iloc[0])
    assert c["diff"] == 4.0 and c["tol"] == pytest.approx(tol) and c["verdict"] == "higher"
    assert studies.compare(s.iloc[0], s.iloc[1])["verdict"] == "lower"
    closer = s.copy()
    closer.loc[1, "top1_a_mean"] = 84.0  # 2 points apart: within 2.58
    assert studies.compare(closer.iloc[1], closer.iloc[0])["verdict"] == "same"
    assert studies.steps(s)[0] == {"from": "a", "to": "b", **c}
    assert studies.difference_noise(0.0, float("nan"), 3) == 0.5  # one seed: no spread known, the floor


def test_collapse_is_read_from_std_or_rank():
    row = pd.Series({"std_mean": 0.3, "effective_rank_mean": 12.0})
    assert not studies.collapsed(row)
    assert studies.collapsed(row.copy().replace(0.3, 0.05))
    assert studies.collapsed(pd.Series({"std_mean": 0.3, "effective_rank_mean": 1.4}))


def test_a_preset_without_a_table_shows_the_digits_one_and_never_copies_it(tmp_path):
    cifar = resolve("cpu-cifar", data_root=str(tmp_path))
    with pytest.raises(CourseError, match="make studies"):
        studies.find_table(cifar, tmp_path)
    digits = pd.DataFrame([{c: 1 for c in studies.COLUMNS}])
    studies.save(digits, tmp_path / "studies.csv")
    path, df = studies.find_table(cifar, tmp_path)
    assert path == tmp_path / "studies.csv" and path != studies.table_path(cifar, tmp_path)
    assert studies.table_path(cifar, tmp_path) == tmp_path / "cpu-cifar" / "studies.csv"
    (tmp_path / "bad.csv").write_text("study,point\nx,y\n")
    with pytest.raises(CourseError, match="lacks the columns"):
        studies.load(tmp_path / "bad.csv")


def test_make_studies_trains_only_notebook_07_and_make_report_reads_the_table(tmp_path, monkeypatch):
    import papermill as pm

    seen = []
    monkeypatch.setattr(pm, "execute_notebook", lambda src, dst, parameters, **kw: seen.append(
        (src.rsplit("/", 1)[-1], parameters.get("run_grid"))))
    monkeypatch.setattr(run, "_promote_files", lambda *a: None)
    assert run.main(["--studies", "--preset", "test", "-p", f"out_dir={tmp_path / 'a'}"]) == 0
    assert seen == [("07_studies.ipynb", True)]
    seen.clear()
    assert run.main(["--preset", "test", "--no-promote", "-p", f"out_dir={tmp_path / 'b'}"]) == 0
    assert ("07_studies.ipynb", False) in seen and all(g is None for n, g in seen if not n.startswith("07"))


def test_promoting_the_studies_replaces_only_their_files(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "studies.csv").write_text("new")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "results.csv").write_text("kept")
    (tmp_path / "report" / "studies.csv").write_text("old")
    run._promote_files(tmp_path / "out", tmp_path / "report", ["studies.csv"])
    assert (tmp_path / "report" / "studies.csv").read_text() == "new"
    assert (tmp_path / "report" / "results.csv").read_text() == "kept"
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["results.csv", "studies.csv"]
