"""A run's storage: its folder's key, the fingerprints that go into it, and the files kept in the folder.

The pinned strings below are a regression pin, on purpose: they were computed once with the code of the day
(before the run storage moved into one module, issue 21) and written here by hand. A run folder is found again by
its name, ``<name>-<settings key>``, and the key hashes the fingerprints of the data and of a starting encoder; if
any of these strings changed, every run folder made before (hours of training on a GPU) would silently stop being
found and be trained again. A change that moves one of them must be a decision, taken together with what to do
about the folders already made, not an accident of a refactoring.
"""
import json

import pytest
import torch
from torch import nn

from course_lib import CourseError, data, evaluate, resolve, runs, studies, train
from course_lib.images import ImageDataset

#: A hand-written settings dict of the kind pretrain builds (lists where pretrain has tuples: JSON has no tuples).
SETTINGS = {"method": "vicreg", "encoder": "N1", "lr": 0.001, "epochs": 20, "batch_size": 256,
            "projector": [1024, 1024], "loss_weights": [25.0, 25.0, 1.0], "crop_scale": [0.2, 1.0],
            "precision": "torch.float32", "data": "digits-a|(675, 1, 16, 16)|12345|678901", "monitor_every": 0}


def _dataset(shape) -> ImageDataset:
    """Images with fixed bytes (no random numbers): 0, 1, ..., 250, 0, 1, ..."""
    n = 1
    for side in shape:
        n *= side
    x = (torch.arange(n) % 251).to(torch.uint8).reshape(shape)
    return ImageDataset("pinned", x, torch.zeros(shape[0], dtype=torch.int64), x[:1],
                        torch.zeros(1, dtype=torch.int64), ("a",))


def _module() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))  # float weights and an int64 buffer


def test_the_settings_key_and_the_run_folder_name_are_pinned(tmp_path):
    assert runs.settings_key(SETTINGS) == "b8d84adfec"
    tupled = {**SETTINGS, "projector": (1024, 1024), "loss_weights": (25.0, 25.0, 1.0), "crop_scale": (0.2, 1.0)}
    cfg = resolve("test", device="cpu", runs_dir=str(tmp_path))
    assert runs.run_folder(cfg, "vicreg-N1", tupled) == tmp_path / "vicreg-N1-b8d84adfec"


def test_the_data_fingerprint_is_pinned():
    assert runs.data_fingerprint(_dataset((4, 3, 8, 8))) == "pinned|(4, 3, 8, 8)|94230|39424330"
    # over 100,000 values: every other one is summed
    assert runs.data_fingerprint(_dataset((5, 3, 128, 128))) == "pinned|(5, 3, 128, 128)|15358350|943830505010"


def test_the_weights_fingerprint_is_pinned():
    torch.manual_seed(0)
    assert runs.weights_fingerprint(_module()) == "01cf20b3fc55"  # torch's own initialization, seed 0
    hand = _module()
    with torch.no_grad():  # weights set by hand: pins the hashing alone, whatever torch's initialization does
        for i, value in enumerate(hand.state_dict().values()):
            value.copy_(torch.arange(value.numel()).reshape(value.shape).to(value.dtype) / (i + 2)
                        if value.is_floating_point() else torch.tensor(7))
    assert runs.weights_fingerprint(hand) == "a4b0e2aa932f"


def test_the_reseeded_streams_of_a_resume_on_another_device_are_pinned():
    assert runs.reseed(1, 3) == 7060020502466132290 and runs.reseed(0, 1) == 3373202220108974583


#: The runs each preset starts, by the folder name fit would use (on 60 of the embedded digits, fp32 on the CPU):
#: pinned before the settings moved into parts (issue 21), from a ``Config`` of flat fields. Each preset's main
#: VICReg run and supervised baseline per encoder (with its own budget), notebook 05's methods on the comparison
#: encoder, the first fine-tuning of a random-init N1, and notebook 07's probe key.
PRESET_RUNS = {
    "test": ["vicreg-N1-b0105e54f7", "supervised-N1-ecb02e2ab7", "vicreg-N1-b0105e54f7", "barlow_twins-N1-843beea952",
             "wmse-N1-598cd374d5", "simclr-N1-85261a4772", "moco_v2-N1-5d39df7bac", "invariance_only-N1-f81d08d2ec",
             "finetune-random-init-0.01-48a59561b7", "10ee7b60fd187b6f"],
    "coursework": ["vicreg-N1-bac1497636", "supervised-N1-6d6274214b", "vicreg-N2-5c2c37b008",
                   "supervised-N2-085d823ae2", "vicreg-N1-8182fedc2f", "barlow_twins-N1-be7ff14239",
                   "wmse-N1-eeed3fcd42", "simclr-N1-bccc06df74", "moco_v2-N1-e8f41ea96b",
                   "invariance_only-N1-907a08233c", "finetune-random-init-0.01-60cbe71cab", "10ee7b60fd187b6f"],
    "cpu-cifar": ["vicreg-N1-7478c79841", "supervised-N1-472b548463", "vicreg-ResNet-18-8770df7bc0",
                  "supervised-ResNet-18-cf9d860c16", "vicreg-N1-7478c79841", "barlow_twins-N1-d93edc8e1c",
                  "wmse-N1-b16a644df4", "simclr-N1-80d9f8b3b6", "moco_v2-N1-1937524e3d",
                  "invariance_only-N1-4362a4e0a1", "finetune-random-init-0.01-a9197f3fa8", "33a9aed78beecc70"],
}


class _Started(Exception):
    """Raised by a stand-in for fit: the run's folder name, and nothing trained."""


@pytest.mark.parametrize("preset", list(PRESET_RUNS))
def test_the_runs_a_preset_starts_are_pinned(preset, tmp_path, monkeypatch):
    def started(name, settings, *args, **kwargs):
        raise _Started(runs.run_folder(cfg, name, settings).name)

    monkeypatch.setattr(train, "fit", started)
    a = data.limit_train(data.load_dataset("digits-scattered-a"), 60)
    cfg = resolve(preset, device="cpu", precision="fp32", runs_dir=str(tmp_path), shipped_encoders=False)
    names = []

    def name_of(start, *args, **kwargs):
        with pytest.raises(_Started) as run:
            start(*args, progress=False, **kwargs)
        names.append(str(run.value))

    for encoder in cfg.encoders:
        name_of(train.pretrain_vicreg, cfg.for_encoder(encoder), encoder, a)
        name_of(train.train_supervised, cfg.for_encoder(encoder), encoder, a)
    for method in (*cfg.methods, "invariance_only"):
        name_of(train.pretrain, cfg.for_encoder(cfg.comparison_encoder), cfg.comparison_encoder, a, method)
    torch.manual_seed(0)
    name_of(evaluate.semi_supervised, train.random_encoder(cfg, "N1"), a, cfg.replace(probe_epochs=2),
            cfg.label_fractions[0], "random-init")
    assert names + [studies._probe_key(cfg, a, None, 3)] == PRESET_RUNS[preset]


# ----------------------------------------------------------------------------- atomic writes
class _Unsaveable:
    """Pickling it raises ``error`` in the middle of ``torch.save``: the archive is already partly written."""

    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        raise self.error


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_an_atomic_save_that_fails_leaves_the_old_file_and_nothing_partial(tmp_path, error):
    path = runs.atomic_save({"epoch": 1, "weights": torch.ones(3)}, tmp_path / runs.CHECKPOINT)
    before = path.read_bytes()
    with pytest.raises(type(error)):
        runs.atomic_save({"epoch": 2, "weights": torch.zeros(1000), "broken": _Unsaveable(error)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [runs.CHECKPOINT] and path.read_bytes() == before
    with pytest.raises(UnicodeEncodeError):  # the text is refused half-way, after its file was opened
        runs.write_text_atomically(tmp_path / "probes.json", "{}" * 1000 + "\ud800")
    assert sorted(p.name for p in tmp_path.iterdir()) == [runs.CHECKPOINT]  # no empty probes.json, no .tmp
    assert runs.write_text_atomically(tmp_path / "probes.json", "{}").read_text() == "{}"


# ----------------------------------------------------------------------------- the checkpoint
def test_a_checkpoint_with_other_settings_is_refused_naming_the_settings_that_differ(tmp_path):
    cfg = resolve("test", device="cpu", runs_dir=str(tmp_path), encoder="N1", batch_size=64, projector=(32, 32),
                  pretrain_epochs=1)
    run = train.pretrain_vicreg(cfg, "N1", data.load_dataset("digits-a"), progress=False)
    ckpt = run.run_dir / runs.CHECKPOINT
    with pytest.raises(CourseError, match="other settings"):
        runs.load_checkpoint(ckpt, {"method": "vicreg", "lr": 123})
    settings = json.loads((run.run_dir / "settings.json").read_text())
    assert runs.load_checkpoint(ckpt, settings)["epoch"] == 1
    other = {**{k: v for k, v in settings.items() if k != "seed"}, "lr": 123, "new_setting": 1}
    with pytest.raises(CourseError) as refused:
        runs.load_checkpoint(ckpt, other)
    assert str(refused.value) == (f"checkpoint {ckpt} was made with other settings (lr, new_setting, seed): "
                                  "delete it or pick another runs_dir to train afresh")


def test_a_damaged_or_foreign_checkpoint_is_refused_in_one_line(tmp_path):
    path = tmp_path / runs.CHECKPOINT
    path.write_bytes(b"")
    with pytest.raises(CourseError) as damaged:
        runs.load_checkpoint(path, {})
    assert str(damaged.value) == (f"checkpoint {path} is damaged or half-written (0 bytes): delete it and run again "
                                  "to train that run afresh")
    torch.save({"epoch": 3, "state_dict": {}}, path)  # a checkpoint, but not one of this course
    with pytest.raises(CourseError) as foreign:
        runs.load_checkpoint(path, {})
    assert str(foreign.value) == (f"checkpoint {path} is not a checkpoint of this course: delete it and run again "
                                  "to train that run afresh")
    assert "\n" not in str(damaged.value) + str(foreign.value)


def test_a_run_state_saves_when_due_and_a_finished_run_loads_without_its_optimizer(tmp_path):
    cfg = resolve("test", device="cpu", runs_dir=str(tmp_path), checkpoint_every_s=3600)

    def state(epochs=3):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        return runs.RunState(cfg, "toy", {"lr": 0.1, "sizes": (2, 2)}, epochs, {"model": model},
                             torch.optim.SGD(model.parameters(), lr=0.1))

    run = state()
    assert run.resume(progress=False) == "trained" and run.folder == runs.run_folder(cfg, "toy", run.settings)
    saved = []
    for epoch in (1, 2, 3):
        run.log(epoch, [{"epoch": epoch, "iteration": epoch, "loss": 1.0 / epoch}], seconds=0.5)
        run.record(epoch, {"knn_top1": 10.0 * epoch} if epoch == 2 else {})
        saved.append(run.save())
    assert saved == [False, False, True]  # an hour between saves: only the last epoch's is written
    run.finish()
    ckpt = runs.load_checkpoint(run.path, run.settings)
    assert ckpt["epoch"] == 3 and ckpt["optimizer"] is None and ckpt["layout"] == {"world_size": 1}
    assert json.loads((run.folder / "metrics.json").read_text()) == {
        "epochs": 3, "seconds": 1.5, "epoch_metrics": [{"epoch": 2, "knn_top1": 20.0}]}
    assert len((run.folder / "log.jsonl").read_text().splitlines()) == 3
    again = state()
    with torch.no_grad():
        again.modules["model"].weight.zero_()
    assert again.resume(progress=False) == "loaded" and again.epoch == 3 and again.history == run.history
    assert torch.equal(again.modules["model"].weight, run.modules["model"].weight)


# ----------------------------------------------------------------------------- caches in a run folder
def test_the_probes_cache_returns_the_stored_value_without_computing_it_again(tmp_path):
    calls = []

    def probe(value):
        def compute():
            calls.append(value)
            return {"top1_a": value}
        return compute

    assert runs.cached(tmp_path, studies.PROBES, "epoch 2", probe(81.5)) == {"top1_a": 81.5}
    assert runs.cached(tmp_path, studies.PROBES, "epoch 2", probe(0.0)) == {"top1_a": 81.5}  # read back
    assert runs.cached(tmp_path, studies.PROBES, "epoch 3", probe(84.0)) == {"top1_a": 84.0}  # another key
    assert calls == [81.5, 84.0]
    assert json.loads((tmp_path / "probes.json").read_text()) == {"epoch 2": {"top1_a": 81.5},
                                                                  "epoch 3": {"top1_a": 84.0}}


def test_a_kept_encoder_is_saved_and_loaded_on_the_cpu(tmp_path):
    torch.manual_seed(0)
    encoder = _module()
    path = runs.save_snapshot(tmp_path, 7, encoder)
    assert path == runs.snapshot_path(tmp_path, 7) == tmp_path / "snapshots" / "encoder-epoch0007.pt"
    kept = runs.load_snapshot(tmp_path, 7)
    assert kept.keys() == encoder.state_dict().keys()
    assert all(torch.equal(kept[k], v) for k, v in encoder.state_dict().items())
