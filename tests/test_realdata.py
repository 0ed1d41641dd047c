"""Real-data loaders (course_lib.realdata) on small fixtures in the exact on-disk formats.

CIFAR-10: python pickle batches with the official dict keys; Tiny ImageNet: the layout of
tiny-imagenet-200.zip (zipped and extracted); image folders: root/{train,test}/<class>/.
Nothing here reads /work/shared or the network.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import data, realdata
from course_lib.errors import CourseError

# --------------------------------------------------------------------------- CIFAR-10

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def _cifar_batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), rng.integers(0, 10, size=n).tolist()


def make_cifar(root: Path, per_batch: int = 3, n_test: int = 4, protocol: int = 2) -> dict:
    """The official cifar-10-batches-py/ layout; returns what was written, for checks."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for i, name in enumerate([*TRAIN_BATCHES, "test_batch"]):
        x, y = _cifar_batch(n_test if name == "test_batch" else per_batch, seed=i)
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x,
                 b"filenames": [f"img_{k}.png".encode() for k in range(len(y))]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        written[name] = (x, y)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return written


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_values_follow_the_pickle_layout(tmp_path, protocol):
    written = make_cifar(tmp_path, protocol=protocol)
    ds = realdata.load_cifar10(tmp_path, verify=False)  # fixture files are not the official ones
    assert ds.x_train.shape == (15, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert ds.x_train.device.type == "cpu" and ds.x_train.is_contiguous()
    assert ds.classes == tuple(CIFAR_CLASSES)
    # row = R plane, G plane, B plane, each 32x32 row-major; batches in order 1..5
    x1, y1 = written["data_batch_1"]
    x2, y2 = written["data_batch_2"]
    assert ds.x_train[0, 1, 2, 3].item() == x1[0, 1 * 1024 + 2 * 32 + 3]
    assert ds.x_train[4, 2, 31, 0].item() == x2[1, 2 * 1024 + 31 * 32 + 0]
    xt, yt = written["test_batch"]
    assert torch.equal(ds.x_test, torch.from_numpy(xt.reshape(-1, 3, 32, 32)))
    assert ds.y_train[:6].tolist() == y1 + y2
    assert ds.y_test.tolist() == yt


def test_cifar10_checksums_are_checked_through_the_registry(tmp_path, monkeypatch):
    make_cifar(tmp_path)
    with pytest.raises(CourseError, match="checksum"):
        data.load_dataset("cifar10", tmp_path)
    # with the fixture's own md5s as "official", the registry path (verify=True) loads
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(realdata, "_cifar_files",
                        lambda: [(p.name, _md5(p)) for p in sorted(folder.iterdir())])
    ds = data.load_dataset(f"cifar10:{tmp_path}")
    assert ds.name == "cifar10" and len(ds.y_train) == 15


def test_cifar10_missing_data_names_the_download(tmp_path, monkeypatch):
    with pytest.raises(CourseError) as err:
        data.load_dataset("cifar10", tmp_path / "nowhere")
    msg = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert str(tmp_path / "nowhere") in msg and "download=True" in msg and "\n" not in msg
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path / "project"))  # no data_root: the project's data/ folder
    with pytest.raises(CourseError, match=f"no CIFAR-10 in {tmp_path / 'project' / 'data'}"):
        data.load_dataset("cifar10", None)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not really")
    with pytest.raises(CourseError, match="tar xzf"):
        realdata.load_cifar10(tmp_path)


def test_cifar10_file_list_is_torchvisions():
    """The md5s are written out in realdata (loading never imports torchvision); they are torchvision's."""
    from torchvision.datasets import CIFAR10

    official = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    assert realdata._cifar_files() == [tuple(f) for f in official]
    assert (realdata.CIFAR10_URL, realdata.CIFAR10_TGZ, realdata.CIFAR10_TGZ_MD5) == \
        (CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5)


def test_md5_check_tells_a_changed_byte(tmp_path):
    f = tmp_path / "batch"
    f.write_bytes(b"abc")
    assert realdata._md5_matches(f, "900150983cd24fb0d6963f7d28e17f72")  # md5("abc"), RFC 1321's test suite
    f.write_bytes(b"abd")
    assert not realdata._md5_matches(f, "900150983cd24fb0d6963f7d28e17f72")
    assert not realdata._md5_matches(tmp_path / "missing", "900150983cd24fb0d6963f7d28e17f72")


def test_cifar10_download_uses_torchvision_url_and_md5(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu
    from torchvision.datasets import CIFAR10

    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kw):
        calls.append((url, filename, md5))
        make_cifar(Path(download_root))

    monkeypatch.setattr(tvu, "download_and_extract_archive", fake_download)
    ds = realdata.load_cifar10(tmp_path / "new", download=True, verify=False)
    assert calls == [(CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5)]
    assert len(ds.y_test) == 4


def test_a_failed_download_is_one_message_naming_the_fix(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def offline(*args, **kw):
        raise OSError("no network")

    monkeypatch.setattr(tvu, "download_and_extract_archive", offline)
    monkeypatch.setattr(tvu, "download_url", offline)
    with pytest.raises(CourseError) as err:
        realdata.load_cifar10(tmp_path / "c", download=True)
    assert str(err.value) == (f"downloading {realdata.CIFAR10_URL} failed (no network): check the network, or "
                              f"download it yourself and extract it in {tmp_path / 'c'}")
    with pytest.raises(CourseError, match=r"tiny-imagenet-200.zip failed \(no network\): .* yourself into"):
        realdata.load_tiny_imagenet(tmp_path / "t", download=True)


def test_cifar10_refuses_pickles_with_code(tmp_path):
    make_cifar(tmp_path)
    evil = pickle.dumps(os.system)  # would resolve posix.system on load
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(evil)
    with pytest.raises(CourseError, match="not a CIFAR-10 python batch"):
        realdata.load_cifar10(tmp_path, verify=False)


# --------------------------------------------------------------------------- Tiny ImageNet

WNIDS = ["n03000003", "n01000001", "n02000002"]  # wnids.txt order is not sorted on purpose
COLOURS = {"n01000001": (200, 30, 30), "n02000002": (30, 200, 30), "n03000003": (30, 30, 200)}
GREY_WNID, GREY_VALUE = "n02000002", 90
# val files whose names do not reveal the class: val_0 -> n03, val_1 -> n01, ...
VAL = {"val_0.JPEG": "n03000003", "val_1.JPEG": "n01000001", "val_2.JPEG": "n02000002",
       "val_3.JPEG": "n01000001", "val_4.JPEG": "n03000003", "val_5.JPEG": "n02000002"}


def _solid(rgb, size=16) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)


def make_tiny(root: Path, train_per_class: int = 2) -> Path:
    """The tiny-imagenet-200/ layout (16x16 here instead of 64x64); returns the folder."""
    top = root / "tiny-imagenet-200"
    top.mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (top / "words.txt").write_text("".join(f"{w}\tthing {w[-1]}, stuff\n" for w in sorted(WNIDS)) + "n09999999\tunused\n")
    for w in WNIDS:
        images = top / "train" / w / "images"
        images.mkdir(parents=True)
        names = [f"{w}_{i}.JPEG" for i in range(train_per_class)]
        for name in names:
            _solid(COLOURS[w]).save(images / name, format="JPEG", quality=95)
        (top / "train" / w / f"{w}_boxes.txt").write_text("".join(f"{n}\t0\t0\t15\t15\n" for n in names))
    # a grayscale JPEG, as the real archive has
    Image.new("L", (16, 16), GREY_VALUE).save(top / "train" / GREY_WNID / "images" / f"{GREY_WNID}_grey.JPEG", format="JPEG")
    (top / "val" / "images").mkdir(parents=True)
    for name, w in VAL.items():
        _solid(COLOURS[w]).save(top / "val" / "images" / name, format="JPEG", quality=95)
    (top / "val" / "val_annotations.txt").write_text("".join(f"{n}\t{w}\t1\t2\t14\t15\n" for n, w in VAL.items()))
    (top / "test" / "images").mkdir(parents=True)
    _solid((0, 0, 0)).save(top / "test" / "images" / "test_0.JPEG", format="JPEG")
    return top


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return archive


def _mean_rgb(x: torch.Tensor) -> tuple[float, ...]:
    return tuple(x.float().mean(dim=(-1, -2)).tolist())


def check_tiny(ds):
    assert ds.name == "tiny-imagenet"
    assert ds.classes == tuple(sorted(WNIDS))
    assert ds.x_train.shape == (7, 3, 16, 16) and ds.x_test.shape == (6, 3, 16, 16)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    # labels follow the sorted wnids, and each image has its class's colour
    assert sorted(ds.y_train.tolist()) == [0, 0, 1, 1, 1, 2, 2]
    for img, label in zip(ds.x_train, ds.y_train.tolist()):
        wnid = ds.classes[label]
        if img[0].float().std() == 0 and abs(_mean_rgb(img)[0] - GREY_VALUE) < 3:
            assert wnid == GREY_WNID  # the grey image: 3 equal channels
            assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
        else:
            assert np.allclose(_mean_rgb(img), COLOURS[wnid], atol=4)
    # val labels come from val_annotations.txt (val files are in sorted name order)
    expected = [sorted(WNIDS).index(VAL[n]) for n in sorted(VAL)]
    assert ds.y_test.tolist() == expected
    for img, label in zip(ds.x_test, ds.y_test.tolist()):
        assert np.allclose(_mean_rgb(img), COLOURS[ds.classes[label]], atol=4)


def test_tiny_imagenet_from_folder(tmp_path):
    make_tiny(tmp_path)
    ds = data.load_dataset("tiny-imagenet", tmp_path)
    check_tiny(ds)
    grey = ds.x_train[ds.y_train == sorted(WNIDS).index(GREY_WNID)]
    assert any(torch.equal(g[0], g[2]) and abs(g.float().mean() - GREY_VALUE) < 3 for g in grey)
    assert realdata.tiny_imagenet_words(tmp_path)["n02000002"] == "thing 2, stuff"


def test_tiny_imagenet_from_zip_matches_folder(tmp_path):
    make_tiny(tmp_path / "src")
    zip_root = tmp_path / "zipped"
    zip_root.mkdir()
    zip_folder(tmp_path / "src" / "tiny-imagenet-200", zip_root / "tiny-imagenet-200.zip")
    ds_zip = realdata.load_tiny_imagenet(zip_root)
    check_tiny(ds_zip)
    assert (zip_root / "tiny-imagenet-200" / "wnids.txt").is_file()  # extracted beside the zip
    assert not [p for p in zip_root.iterdir() if "extracting" in p.name]  # no temp folder left
    ds_dir = realdata.load_tiny_imagenet(tmp_path / "src")
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(ds_zip, k), getattr(ds_dir, k))


def test_tiny_imagenet_zip_with_escaping_member_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with zipfile.ZipFile(root / "tiny-imagenet-200.zip", "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "n01000001\n")
        zf.writestr("../evil.txt", "gotcha")
    with pytest.raises(CourseError, match="evil.txt"):
        realdata.load_tiny_imagenet(root)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert not (root / "tiny-imagenet-200").exists()  # nothing extracted at all
    assert sorted(p.name for p in root.iterdir()) == ["tiny-imagenet-200.zip"]
    ro = tmp_path / "ro"
    ro.mkdir()
    (root / "tiny-imagenet-200.zip").rename(ro / "tiny-imagenet-200.zip")
    os.chmod(ro, 0o555)
    try:
        with pytest.raises(CourseError, match="unzip it there yourself"):
            realdata.load_tiny_imagenet(ro)
    finally:
        os.chmod(ro, 0o755)
    for bad in ("../../evil.txt", "/tmp/evil_abs.txt", "a/../../evil.txt"):
        with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
            zf.writestr(bad, "x")
        with pytest.raises(CourseError, match="outside"):
            realdata.extract_zip_safely(tmp_path / "bad.zip", tmp_path / "dest")


def test_tiny_imagenet_download_uses_url_and_md5(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    make_tiny(tmp_path / "src")
    archive = zip_folder(tmp_path / "src" / "tiny-imagenet-200", tmp_path / "fixture.zip")
    calls = []

    def fake_download(url, root, filename=None, md5=None, **kw):
        calls.append((url, filename, md5))
        (Path(root) / filename).write_bytes(archive.read_bytes())

    monkeypatch.setattr(tvu, "download_url", fake_download)
    monkeypatch.setattr(realdata, "TINY_MD5", _md5(archive))
    ds = realdata.load_tiny_imagenet(tmp_path / "new", download=True)
    assert calls == [("https://cs231n.stanford.edu/tiny-imagenet-200.zip", "tiny-imagenet-200.zip", _md5(archive))]
    check_tiny(ds)


def test_tiny_imagenet_missing_data_names_the_download(tmp_path, monkeypatch):
    with pytest.raises(CourseError) as err:
        data.load_dataset(f"tiny-imagenet:{tmp_path}")
    msg = str(err.value)
    assert "https://cs231n.stanford.edu/tiny-imagenet-200.zip" in msg and str(tmp_path) in msg
    assert "download=True" in msg and "\n" not in msg
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path / "project"))  # no data_root: the project's data/ folder
    with pytest.raises(CourseError, match=f"no Tiny ImageNet in {tmp_path / 'project' / 'data'}:"):
        data.load_dataset("tiny-imagenet")
    with pytest.raises(CourseError, match="set data_root to the folder that holds train/<class>/"):
        data.load_dataset("imagefolder")


def test_tiny_imagenet_cache_is_reused_and_rebuilt(tmp_path, monkeypatch):
    top = make_tiny(tmp_path)
    first = realdata.load_tiny_imagenet(tmp_path)
    caches = list((tmp_path / ".course_cache").glob("tiny-imagenet-*.pt"))
    assert len(caches) == 1
    umask = os.umask(0)
    os.umask(umask)
    assert caches[0].stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600

    def no_decoding(*a, **k):
        raise AssertionError("decoded again instead of using the cache")

    real_decode = realdata._decode_images
    monkeypatch.setattr(realdata, "_decode_images", no_decoding)
    second = realdata.load_tiny_imagenet(tmp_path)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)
    assert second.classes == first.classes

    # change one training image: the cache is rebuilt (and the stale one removed)
    decoded = []
    monkeypatch.setattr(realdata, "_decode_images", lambda paths, desc="": decoded.append(len(paths)) or real_decode(paths, desc))
    changed = top / "train" / "n01000001" / "images" / "n01000001_0.JPEG"
    _solid((255, 255, 0)).save(changed, format="JPEG", quality=95)
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = realdata.load_tiny_imagenet(tmp_path)
    assert decoded == [7, 6]
    assert np.allclose(_mean_rgb(third.x_train[0]), (255, 255, 0), atol=4)
    assert list((tmp_path / ".course_cache").glob("tiny-imagenet-*.pt")) != caches
    assert len(list((tmp_path / ".course_cache").glob("*"))) == 1


def test_corrupt_cache_is_rebuilt_quietly(tmp_path):
    make_tiny(tmp_path)
    realdata.load_tiny_imagenet(tmp_path)
    (cache,) = (tmp_path / ".course_cache").glob("*.pt")
    cache.write_bytes(b"truncated")
    check_tiny(realdata.load_tiny_imagenet(tmp_path))
    assert cache.stat().st_size > 1000


def test_read_only_root_skips_the_cache(tmp_path):
    # also as root (who may write anyway): a folder marked read-only is left alone
    make_tiny(tmp_path / "ro")
    os.chmod(tmp_path / "ro", 0o555)
    try:
        check_tiny(realdata.load_tiny_imagenet(tmp_path / "ro"))
        assert not (tmp_path / "ro" / ".course_cache").exists()
    finally:
        os.chmod(tmp_path / "ro", 0o755)


def test_unwritable_cache_place_is_skipped_quietly(tmp_path, capsys):
    # works as root too: the cache folder cannot be made where a file is in the way
    make_tiny(tmp_path)
    (tmp_path / ".course_cache").write_text("a file, not a folder")
    check_tiny(realdata.load_tiny_imagenet(tmp_path))
    check_tiny(realdata.load_tiny_imagenet(tmp_path))
    assert (tmp_path / ".course_cache").read_text() == "a file, not a folder"
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# --------------------------------------------------------------------------- image folders


def make_image_folder(root: Path, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """root/{train,test}/<class>/ with random 12x10 RGB PNGs (lossless); returns train pixels."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for split, classes, n in (("train", ["dog", "cat", "bird"], 2), ("test", ["cat", "dog"], 1)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                x = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)  # H=10, W=12
                Image.fromarray(x).save(root / split / c / f"{i}.{'PNG' if i else 'png'}")
                pixels.setdefault(f"{split}/{c}", []).append(x)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return pixels


def test_image_folder_png_round_trip(tmp_path):
    pixels = make_image_folder(tmp_path)
    ds = data.load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ("bird", "cat", "dog")
    assert ds.x_train.shape == (6, 3, 10, 12) and ds.x_test.shape == (2, 3, 10, 12)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert ds.y_train.tolist() == [0, 0, 1, 1, 2, 2] and ds.y_test.tolist() == [1, 2]
    expected = [pixels[f"train/{c}"][i] for c in ("bird", "cat", "dog") for i in range(2)]
    assert torch.equal(ds.x_train, torch.from_numpy(np.stack(expected).transpose(0, 3, 1, 2)))
    assert torch.equal(ds.x_test[0], torch.from_numpy(pixels["test/cat"][0].transpose(2, 0, 1)))


def test_image_folder_converts_to_rgb_and_reads_jpeg_bmp(tmp_path):
    make_image_folder(tmp_path)
    Image.new("L", (12, 10), 77).save(tmp_path / "train" / "bird" / "grey.bmp")
    Image.new("RGBA", (12, 10), (1, 2, 3, 4)).save(tmp_path / "train" / "bird" / "alpha.png")
    _solid((10, 20, 30), size=1).resize((12, 10)).save(tmp_path / "train" / "bird" / "photo.JPG", quality=95)
    ds = realdata.load_image_folder(tmp_path)
    assert ds.x_train.shape == (9, 3, 10, 12)
    birds = ds.x_train[ds.y_train == 0]
    assert any(torch.all(b == 77) for b in birds)
    assert any(torch.equal(b[:, 0, 0], torch.tensor([1, 2, 3], dtype=torch.uint8)) for b in birds)


def test_image_folder_errors(tmp_path):
    with pytest.raises(CourseError, match=r"train/<class>"):
        data.load_dataset("imagefolder", tmp_path / "nothing")
    make_image_folder(tmp_path / "a")
    (tmp_path / "a" / "test" / "zebra").mkdir()
    Image.new("RGB", (12, 10)).save(tmp_path / "a" / "test" / "zebra" / "z.png")
    with pytest.raises(CourseError, match="zebra"):
        realdata.load_image_folder(tmp_path / "a")
    make_image_folder(tmp_path / "b")
    Image.new("RGB", (20, 20)).save(tmp_path / "b" / "train" / "dog" / "big.png")
    with pytest.raises(CourseError, match="resize") as err:
        realdata.load_image_folder(tmp_path / "b")
    assert "big.png" in str(err.value) and "20x20" in str(err.value)
    make_image_folder(tmp_path / "c")
    (tmp_path / "c" / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(CourseError, match="broken.png"):
        realdata.load_image_folder(tmp_path / "c")


def test_image_folder_cache_reused_then_rebuilt_on_new_file(tmp_path, monkeypatch):
    make_image_folder(tmp_path)
    first = realdata.load_image_folder(tmp_path)
    assert len(list((tmp_path / ".course_cache").glob("imagefolder-*.pt"))) == 1
    monkeypatch.setattr(realdata, "_decode_images", lambda *a, **k: pytest.fail("decoded again"))
    assert torch.equal(realdata.load_image_folder(tmp_path).x_train, first.x_train)
    monkeypatch.undo()
    Image.new("RGB", (12, 10), (5, 6, 7)).save(tmp_path / "train" / "bird" / "new.png")
    again = realdata.load_image_folder(tmp_path)
    assert len(again.y_train) == 7
    assert len(list((tmp_path / ".course_cache").glob("imagefolder-*.pt"))) == 1


def test_registry_has_the_real_loaders():
    for name in ("cifar10", "tiny-imagenet", "imagefolder"):
        assert name in data.DATASETS
        assert data.parse_spec(f"{name}:/x", None) == (name, Path("/x"))
