"""The settings in parts: each declared once, read by part or by flat name, every bad value refused in one line.

``Config`` holds a few parts (``cfg.data``, ``cfg.pretrain`` ...); the flat names (``pretrain_epochs``) stay the
public ones. These tests check the values that reach a run, not the wiring: a part's field and its flat read are
one value, every flat name has exactly one home, and a bad value of each kind is one line that names the fix.
"""
import dataclasses

import pytest

from course_lib import CourseError, resolve
from course_lib.config import PRESETS, SETTINGS, Config, parse_param, with_overrides

#: The public names of the settings, as presets, notebooks' parameters cells and ``-p`` spell them. Pinned: a
#: rename breaks every notebook and command line that sets one, so it must be a decision.
FLAT_NAMES = {
    "preset", "dataset_a", "dataset_b", "data_root", "download", "image_size", "encoders", "seed", "device",
    "precision", "deterministic", "channels_last", "compile", "sync_batchnorm", "batch_size", "pretrain_epochs",
    "pretrain_lr", "pretrain_weight_decay", "pretrain_schedule", "pretrain_warmup_epochs", "epochs_study",
    "projector", "augmentation", "crop_scale", "loss_weights", "supervised_epochs", "supervised_lr", "probe_epochs",
    "probe_lr", "finetune_steps", "finetune_lr", "finetune_head", "label_fractions", "tsne_points", "train_images",
    "encoder_overrides", "studies_grid", "monitor_every", "knn_k", "methods", "comparison_encoder",
    "comparison_epochs", "comparison_images", "collapse_epochs", "barlow_lambda", "wmse_hidden", "wmse_dim",
    "wmse_w_size", "simclr_temperature", "moco_queue", "moco_momentum", "moco_temperature", "out_dir", "runs_dir",
    "shipped_encoders", "checkpoint_every_s", "checkpoint_within_epoch_s", "figure_formats",
}


def test_every_flat_name_has_exactly_one_part_and_field():
    assert set(SETTINGS) == FLAT_NAMES
    homes = [(s.part, s.field) for s in SETTINGS.values()]
    assert len(homes) == len(set(homes)) == len(FLAT_NAMES)
    # ... and every field of every part is some flat name's home
    parts = {f.name: f.type for f in dataclasses.fields(Config) if "part" in f.metadata}
    assert set(parts) == {"data", "model", "pretrain", "supervised", "evaluation", "comparison", "hardware", "paths"}
    declared = {(p, f.name) for p in parts for f in dataclasses.fields(getattr(Config("x"), p))}
    assert declared == {h for h in homes if h[0] is not None}
    assert {h[1] for h in homes if h[0] is None} == {"preset", "seed", "batch_size", "studies_grid",
                                                     "encoder_overrides"}
    assert SETTINGS["pretrain_epochs"].dotted == "pretrain.epochs" and SETTINGS["data_root"].dotted == "data.root"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_parts_field_is_its_flat_read_in_every_preset(preset):
    cfg = resolve(preset)
    for c in (cfg, *(cfg.for_encoder(name) for name in cfg.encoder_overrides)):
        flat = c.to_dict()
        assert set(flat) == FLAT_NAMES
        for name, s in SETTINGS.items():
            value = getattr(c, s.field) if s.part is None else getattr(getattr(c, s.part), s.field)
            assert getattr(c, name) == value == flat[name], name
        for name, value in PRESETS[preset].items():  # what the preset says is what the run reads
            if name != "encoder_overrides":
                assert getattr(cfg, name) == value, name
    assert cfg.pretrain.epochs == cfg.pretrain_epochs == PRESETS[preset].get("pretrain_epochs", 30)


def test_the_budget_of_one_encoder_lands_in_its_part():
    cfg = resolve("cpu-cifar")
    small = cfg.for_encoder("ResNet-18")
    assert (small.data.train_images, small.pretrain.epochs, small.supervised.epochs) == (4_000, 2, 2)
    assert (small.evaluation.monitor_every, small.evaluation.label_fractions) == (0, ())
    assert (cfg.data.train_images, cfg.pretrain.epochs, cfg.evaluation.label_fractions) == (None, 12, (0.01, 0.1))
    # describe() reads the parts and says what it said when the settings were flat (the notebooks print it)
    assert cfg.describe() == (
        "preset 'cpu-cifar': set A = cifar10, set B = tiny-imagenet, encoders N1, ResNet-18, native size\n"
        "VICReg 12 epochs (Adam, lr 0.001, ssl-cifar), supervised 8 epochs, linear probe 100 epochs, fine-tuning 300 "
        "steps, batch 256, seed 0\nResNet-18 on a smaller budget: train_images 4000, pretrain_epochs 2, "
        "supervised_epochs 2, monitor_every 0, label_fractions ()")


def test_dotted_names_are_the_flat_ones():
    cfg = resolve("test", **{"pretrain.epochs": 7, "evaluation.knn_k": 5, "data.root": None})
    assert (cfg.pretrain.epochs, cfg.pretrain_epochs, cfg.knn_k) == (7, 7, 5)
    assert parse_param("pretrain.epochs=7") == ("pretrain_epochs", 7)
    assert parse_param("comparison.encoder=n2") == ("comparison_encoder", "n2")
    assert with_overrides(cfg, **{"supervised.lr": 0.1}).supervised_lr == 0.1
    assert resolve("test", encoder_overrides={"N1": {"pretrain.epochs": 2}}).for_encoder("N1").pretrain.epochs == 2
    with pytest.raises(CourseError, match=r"unknown setting\(s\) pretrain\.epoch: see course_lib\.config\.Config"):
        resolve("test", **{"pretrain.epoch": 7})


def test_with_overrides_takes_values_as_resolve_does():
    cfg = resolve("test")
    changed = with_overrides(cfg, crop_scale="(0.2, 1.0)", projector=[64, 64], methods="vicreg, simclr",
                             comparison_encoder="resnet18", dataset_b="none", encoders="n1")
    assert changed.pretrain.crop_scale == (0.2, 1.0) and changed.model.projector == (64, 64)
    assert changed.comparison.methods == ("vicreg", "simclr") and changed.comparison.encoder == "ResNet-18"
    assert changed.data.dataset_b is None and changed.model.encoders == ("N1",)
    # a flag as a command line writes it (`make encoders` passes -p shipped_encoders=false): False, not the text
    assert resolve("test", shipped_encoders="false", download="True").paths.shipped_encoders is False
    assert with_overrides(cfg, download="true").data.download is True
    assert cfg.pretrain.crop_scale == (0.3, 1.0)  # a copy: the original is unchanged (frozen parts)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.pretrain.epochs = 3


# (setting=value, the one line): a hand-picked bad value of each kind, through resolve (what -p and the notebooks use)
BAD = [
    ({"pretrain_epochs": 0}, "pretrain_epochs must be a whole number >= 1, got 0: e.g. pretrain_epochs=30"),
    ({"batch_size": 64.0}, "batch_size must be a whole number >= 1, got 64.0: e.g. batch_size=64"),
    ({"image_size": "big"}, "image_size must be a whole number >= 1 (or None), got 'big': e.g. image_size=32"),
    ({"comparison_images": 5}, "comparison_images must be a whole number >= 10 (or None), got 5: "
                               "e.g. comparison_images=1000"),
    ({"probe_lr": 0}, "probe_lr must be a finite number > 0, got 0: e.g. probe_lr=0.1"),
    ({"moco_momentum": 1.0}, "moco_momentum must be a finite number >= 0 and < 1, got 1.0: e.g. moco_momentum=0.99"),
    ({"barlow_lambda": float("nan")}, "barlow_lambda must be a finite number > 0, got nan: e.g. barlow_lambda=0.005"),
    ({"compile": "yes"}, "compile must be True or False, got 'yes'"),
    ({"shipped_encoders": "no"}, "shipped_encoders must be True or False, got 'no'"),
    ({"channels_last": "maybe"}, "channels_last must be auto, True or False, got 'maybe'"),
    ({"augmentation": 3}, "augmentation must be a name (text), got 3"),
    ({"studies_grid": "half"}, "unknown studies_grid 'half': use full or quick"),
    ({"finetune_head": "noisy"}, "unknown finetune_head 'noisy': use views or clean"),
    ({"sync_batchnorm": "some"}, "unknown sync_batchnorm 'some': use none, projector or all"),
    ({"runs_dir": 3}, "runs_dir must be a name or a path (text) or None, got 3"),
    ({"crop_scale": "wide"}, "crop_scale must be a list of values, e.g. crop_scale=(0.2, 1.0): got 'wide'"),
    ({"label_fractions": (0.5, 2)}, "label_fractions must be fractions in (0, 1], e.g. label_fractions=(0.01, 0.1): "
                                    "got (0.5, 2)"),
    ({"epochs_study": (10, 0)}, "epochs_study must list whole epoch counts >= 1, e.g. epochs_study=(20, 30, 40): "
                                "got (10, 0)"),
    ({"methods": [1]}, "methods must list names, e.g. methods=('vicreg', 'simclr'): got (1,)"),
    ({"methods": "vicreg,byol"}, "unknown method(s) byol in methods: use some of vicreg, barlow_twins, wmse, simclr, "
                                 "moco_v2, invariance_only"),
    ({"comparison_encoder": "N3"}, "unknown encoder 'N3': use one of N1, N2, ResNet-18 (or 'all')"),
    ({"encoder_overrides": {"N1": {"pretrain_epochs": 0}}},
     "encoder_overrides['N1']: pretrain_epochs must be a whole number >= 1, got 0: e.g. pretrain_epochs=30"),
    ({"encoder_overrides": {"N1": {"encoders": ("N2",)}}},
     "encoder_overrides['N1'] sets encoders: only per-run settings such as pretrain_epochs or train_images can "
     "differ per encoder"),
    ({"pretrain.lr": -1}, "pretrain_lr must be a finite number > 0, got -1: e.g. pretrain_lr=0.001"),
]


@pytest.mark.parametrize("change,line", BAD, ids=[next(iter(c)) + f"={next(iter(c.values()))!r}" for c, _ in BAD])
def test_a_bad_value_of_each_kind_is_one_line_naming_the_fix(change, line):
    with pytest.raises(CourseError) as info:
        resolve("test", **change)
    assert str(info.value) == line
    # the same value through with_overrides (what the library's own changes use) gets the same line
    if "encoder_overrides" not in change:
        with pytest.raises(CourseError) as again:
            with_overrides(resolve("test"), **change)
        assert str(again.value) == line


def test_a_config_from_flat_names_has_the_defaults_elsewhere():
    cfg = Config.from_flat("bench", batch_size=64, channels_last="on", pretrain_epochs=3)
    assert (cfg.preset, cfg.batch_size, cfg.hardware.channels_last, cfg.pretrain.epochs) == ("bench", 64, "on", 3)
    assert cfg.pretrain.lr == SETTINGS["pretrain_lr"].default == 1e-3 and cfg.encoder_overrides == {}
    assert Config("a").encoder_overrides is not Config("b").encoder_overrides  # no dict shared between configs
    with pytest.raises(AttributeError):
        cfg.pretrain_epoch  # noqa: B018 -- a typo is an AttributeError, as on any object
