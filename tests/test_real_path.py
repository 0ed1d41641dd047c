"""The real protocol's path, end to end, on tiny data the test writes itself in the real on-disk formats.

CIFAR-10 as an image folder (``cifar10/{train,test}/<class>/*.png``, what the JPEG archives of the
course's data folder extract to) and Tiny ImageNet in the official zip's layout (``wnids.txt``,
``train/<wnid>/images/*.JPEG``, ``val/images`` labelled by ``val/val_annotations.txt``), at 64 px so set B
is resized to set A's 32 px at load time. A user's clone has no ``../shared``: nothing here reads it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from course_lib import config, data, report, run
from course_lib.realdata import CIFAR10_CLASSES

WNIDS = [f"n0{i:07d}" for i in range(1, 13)]  # 12 Tiny ImageNet classes, none a CIFAR-10 class name


def _image(rng: np.random.Generator, label: int, size: int) -> Image.Image:
    """A noisy image whose mean colour and a bright square's place depend on the label: learnable, not trivial."""
    x = rng.integers(0, 90, size=(size, size, 3)).astype(np.uint8)
    x[..., label % 3] += 60
    s = size // 4
    top, left = (label * 7) % (size - s), (label * 11) % (size - s)
    x[top: top + s, left: left + s] = 230
    return Image.fromarray(x)


def make_real_data(root: Path, train: int = 12, test: int = 4, tiny_train: int = 6, tiny_val: int = 2) -> Path:
    """``root/cifar10/`` (image folder, PNG, 32 px) and ``root/tiny-imagenet-200/`` (official layout, 64 px JPEG)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / "cifar10" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                _image(rng, label, 32).save(folder / f"{i:04d}.png")
    tiny = root / "tiny-imagenet-200"
    (tiny / "val" / "images").mkdir(parents=True)
    (tiny / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (tiny / "words.txt").write_text("".join(f"{w}\tthing {i}\n" for i, w in enumerate(WNIDS)))
    annotations = []
    for label, w in enumerate(WNIDS):
        (tiny / "train" / w / "images").mkdir(parents=True)
        for i in range(tiny_train):
            _image(rng, label, 64).save(tiny / "train" / w / "images" / f"{w}_{i}.JPEG", quality=90)
        for i in range(tiny_val):
            name = f"val_{label * tiny_val + i}.JPEG"
            _image(rng, label, 64).save(tiny / "val" / "images" / name, quality=90)
            annotations.append(f"{name}\t{w}\t0\t0\t63\t63\n")
    (tiny / "val" / "val_annotations.txt").write_text("".join(annotations))
    return root


def test_cifar10_is_found_as_an_image_folder_under_data_root(tmp_path):
    make_real_data(tmp_path)
    cfg = config.resolve("cpu-cifar", data_root=str(tmp_path), runs_dir=str(tmp_path / "runs"))
    a, b = data.load_sets(cfg)
    assert a.name == "cifar10 (image folder)" and a.classes == CIFAR10_CLASSES
    assert a.x_train.shape == (120, 3, 32, 32) and a.x_test.shape == (40, 3, 32, 32)
    assert b.num_classes == 12 and b.x_train.shape == (72, 3, 32, 32) and b.x_test.shape == (24, 3, 32, 32)
    assert int(b.y_test.bincount().min()) == 2  # labels from val_annotations.txt: two per class
    assert b.classes == tuple(WNIDS) and b.names[:2] == ("thing 0", "thing 1")  # words.txt names the wnids


def test_budget_limits_training_images_per_encoder_and_keeps_test_whole(tmp_path):
    make_real_data(tmp_path, train=20)
    cfg = config.resolve("cpu-cifar", data_root=str(tmp_path),
                         encoder_overrides={"ResNet-18": {"train_images": 50, "pretrain_epochs": 2}})
    a, _ = data.load_sets(cfg)
    n1_cfg, n1_a = data.budget(cfg, "N1", a)
    r_cfg, r_a = data.budget(cfg, "ResNet-18", a)
    assert n1_cfg is cfg and n1_a is a
    assert r_cfg.pretrain_epochs == 2 and r_cfg.supervised_epochs == cfg.supervised_epochs
    assert len(r_a.y_train) == 50 and r_a.y_train.bincount().tolist() == [5] * 10  # class-balanced
    assert torch.equal(r_a.x_test, a.x_test)
    # the subset is a subset: every kept image is one of A's training images
    flat = {bytes(x.flatten().numpy()) for x in a.x_train}
    assert all(bytes(x.flatten().numpy()) in flat for x in r_a.x_train)


def test_validation_split_is_disjoint_from_training_and_never_the_test_split():
    x = torch.arange(200, dtype=torch.uint8).repeat_interleave(3 * 4 * 4).view(200, 3, 4, 4)
    y = torch.arange(200) % 10
    ds = data.ImageDataset("toy", x, y, x[:20] * 0, y[:20], tuple("abcdefghij"))
    split = data.validation_split(ds, 40)
    train_ids = set(split.x_train[:, 0, 0, 0].tolist())
    val_ids = set(split.x_test[:, 0, 0, 0].tolist())
    assert len(val_ids) == 40 and len(train_ids) == 160 and not train_ids & val_ids
    assert split.y_test.bincount().tolist() == [4] * 10
    assert val_ids <= set(range(200)) and (split.x_test != 0).any()  # drawn from train (the test split is all 0)


def test_bad_encoder_override_is_one_clear_message():
    with pytest.raises(config.CourseError, match="only per-run settings"):
        config.resolve("cpu", encoder_overrides={"N1": {"encoders": "ResNet-18"}})
    with pytest.raises(config.CourseError, match="unknown encoder 'VGG'"):
        config.resolve("cpu", encoder_overrides={"VGG": {"pretrain_epochs": 1}})


def _row(**kw) -> pd.Series:
    base = dict(set="A", dataset="cifar10 (image folder)", encoder="N1", method="vicreg", protocol="linear",
                top1=70.0, top5=97.0, epochs=20, encoder_epochs=30, encoder_images=50_000, protocol_images=50_000)
    return pd.Series({**base, **kw})


def test_comparability_names_what_is_short():
    assert report.comparability(_row()) == "yes"
    assert report.comparability(_row(encoder_epochs=12)) == "no: short-trained (12 of 30 epochs)"
    short = report.comparability(_row(encoder="ResNet-18", encoder_epochs=2, encoder_images=5_000))
    assert short == "no: short-trained (2 of 30 epochs; 5,000 of 50,000 images of A)"
    assert report.comparability(_row(set="B", dataset="tiny-imagenet at 32 px", protocol_images=20_000)) == \
        "no: short-trained (linear on 20,000 of 100,000 images of B)"
    assert report.comparability(_row(protocol="finetune-1%", protocol_images=500)) == "yes"
    assert report.comparability(_row(dataset="digits 0-4 scattered (16 px)")).startswith("no: other data")
    assert report.comparability(_row(method="random-init", encoder_epochs=0, encoder_images=0)) == "yes"


def test_promote_keeps_other_presets_reports(tmp_path):
    src, dst = tmp_path / "new", tmp_path / "report"
    (src).mkdir()
    (src / "results.md").write_text("new digits")
    (dst / "cpu-cifar").mkdir(parents=True)
    (dst / "cpu-cifar" / "results.md").write_text("real data")
    (dst / "results.md").write_text("old digits")
    run._promote(src, dst, keep=("cpu-cifar",))
    assert (dst / "results.md").read_text() == "new digits"
    assert (dst / "cpu-cifar" / "results.md").read_text() == "real data"


def test_every_notebook_runs_on_the_real_formats(tmp_path, monkeypatch):
    """The coursework preset (N1 and N2 as written), every notebook through papermill, on tiny data.

    All but 00, which reads no data (its toy tensors are the same under every preset; nbval runs it)."""
    root = make_real_data(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--preset", "coursework", "-p", f"data_root={root}", "-p", f"out_dir={out}",
            "-p", f"runs_dir={tmp_path / 'runs'}", "-p", "batch_size=32", "-p", "pretrain_epochs=1",
            "-p", "epochs_study=(1, 2)", "-p", "supervised_epochs=1", "-p", "probe_epochs=2", "-p", "finetune_steps=2",
            "-p", "comparison_epochs=1", "-p", "collapse_epochs=1", "-p", "moco_queue=64", "-p", "tsne_points=60",
            "-p", "monitor_every=1", "-p", "wmse_dim=16", "-p", "figure_formats=png",
            "-p", "encoder_overrides={'N2': {'train_images': 40, 'epochs_study': (1,), 'supervised_epochs': 1, "
                  "'monitor_every': 0}}",
            "--no-promote", "--only", *(f"{i:02d}_" for i in range(1, 8))]
    assert run.main(argv) == 0
    df = pd.read_csv(out / "report" / "results.csv")
    assert set(df["dataset"]) == {"cifar10 (image folder)", "tiny-imagenet at 32 px"}
    assert set(df["method"]) >= {"supervised", "vicreg", "random-init", "barlow_twins", "wmse", "simclr", "moco_v2"}
    tables = df[df["study"].isna()]
    n1 = tables[tables.encoder == "N1"]
    semi = {f"{p}-{f}" for p in ("knn", "linear", "finetune") for f in ("1%", "10%")}
    assert set(n1["protocol"]) == {"supervised", "linear", "knn"} | semi
    assert set(n1[n1.protocol != "supervised"]["set"]) == {"A", "B"}
    n2 = tables[tables.encoder == "N2"]
    assert not n2.empty and n2["encoder_images"].max() == 40 and semi <= set(n2["protocol"])
    ft = tables[tables.protocol.str.startswith("finetune")]
    assert (ft["steps"] >= 2).all() and (ft["batch"] <= ft["protocol_images"]).all()
    # the epochs study: N1 read after 1 and 2 epochs, N2 after 1; the tables' VICReg row is N1's 1-epoch encoder
    study = df[df["study"] == "epochs"]
    assert sorted(set(study[study.encoder == "N1"]["encoder_epochs"])) == [1, 2]
    assert sorted(set(study[study.encoder == "N2"]["encoder_epochs"])) == [1]
    assert set(n1[n1.method == "vicreg"]["encoder_epochs"]) == {1}
    assert (df["top5"] >= df["top1"]).all() and df["top5"].between(0, 100).all()
    text = (out / "report" / "results.md").read_text()
    assert "**not comparable**" in text and "short-trained (1 of 30 epochs" in text
    assert "200 classes" not in text and "12 classes" in text
    assert "N2 (ours: ResNet-18)" not in text  # N2's own rows, no stand-in
    # the header names the data: images per class and the files they were read from
    assert "read from PNG files (.png)" in text and "read from JPEG files (.jpeg)" in text and "per class" in text
    for name in ("collapse", "tsne_set_a", "tsne_set_b", "comparison_diagnostics", "accuracy_overview"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    timings = (out / "report" / "timings.csv").read_text().splitlines()
    assert timings[0] == "notebook,seconds" and len(timings) == 1 + 7 + 1
    # 07 showed the digits' committed studies (this preset has none) and copied none of them into this report
    assert not (out / "report" / "studies.csv").exists() and not list((out / "figures").glob("study_*"))
    assert str(tmp_path) not in text  # the report names the data, not the folders it came from


def test_tsne_sample_shows_at_most_ten_classes_and_all_of_few():
    from course_lib import plots

    many = torch.arange(2000) % 200
    idx, shown = plots.tsne_sample(many, 300, seed=0, max_classes=10)
    assert len(shown) == 10 and set(many[idx].tolist()) == shown and len(idx) == 100  # 10 classes x 10 images
    again, shown_again = plots.tsne_sample(many, 300, seed=0, max_classes=10)
    assert torch.equal(idx, again) and shown == shown_again
    few = torch.arange(500) % 5
    idx, shown = plots.tsne_sample(few, 300, seed=1)
    assert shown == {0, 1, 2, 3, 4} and len(idx) == 300 and len(set(idx.tolist())) == 300
