"""A run's storage: its folder's key, the fingerprints that go into it, and the files kept in the folder.

The pinned strings below are a regression pin, on purpose: they were computed once with the code of the day
(before the run storage moved into one module, issue 21) and written here by hand. A run folder is found again by
its name, ``<name>-<settings key>``, and the key hashes the fingerprints of the data and of a starting encoder; if
any of these strings changed, every run folder made before (hours of training on a GPU) would silently stop being
found and be trained again. A change that moves one of them must be a decision, taken together with what to do
about the folders already made, not an accident of a refactoring.
"""
import torch
from torch import nn

from course_lib import resolve, runs
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
