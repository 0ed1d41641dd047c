"""Real datasets on disk: CIFAR-10, Tiny ImageNet and any image folder, as uint8 tensors.

Three loaders, which :data:`course_lib.data.DATASETS` names ``"cifar10"``, ``"tiny-imagenet"``
and ``"imagefolder"``; each returns an :class:`~course_lib.images.ImageDataset` on the CPU (uint8 ``N x 3 x H x W`` images,
int64 labels). ``root`` is the folder that *holds* the data:

* ``cifar10``: ``root/cifar-10-batches-py/`` (the official python pickle batches), or
  ``root/cifar10/cifar-10-batches-py/``, or an image folder ``root/cifar10/{train,test}/<class>/*``
  (or ``root/{train,test}/...``) with CIFAR-10's ten class folders of 32 px images.
  ``download=True`` fetches and extracts https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
  with torchvision's URL and md5. The pickles are read here with a restricted unpickler
  (plain containers and numpy arrays only). **Checksums**: :func:`load_cifar10` checks every
  file against torchvision's official md5 list by default (``verify=True``, what the registry
  uses, about 0.3 s); pass ``verify=False`` for files that are not the official ones (the
  tests' small fixtures). CIFAR-10 is *not* cached: its pickles already are raw uint8.
* ``tiny-imagenet``: ``root/tiny-imagenet-200/`` or ``root/tiny-imagenet-200.zip``
  (extracted into ``root`` on first use; a member whose path leaves the extraction folder is
  refused). ``download=True`` fetches https://cs231n.stanford.edu/tiny-imagenet-200.zip and
  checks its md5. Class ``i`` is the ``i``-th of the *sorted* wnids of ``wnids.txt`` and
  ``classes`` are those wnids (:func:`tiny_imagenet_words` gives their names). The test split
  is the official **val** split, labelled from ``val/val_annotations.txt`` (the official
  test images have no labels). Grey JPEGs become RGB.
* ``imagefolder``: ``root/train/<class>/...`` and ``root/test/<class>/...`` (png, jpg, jpeg,
  bmp, any case, searched recursively). ``classes`` are the sorted class folders of
  ``train``; a test class missing from train is an error. All images must have one size:
  a different size is a :class:`CourseError` that names the file (resize them first; we do
  not silently distort images).

Decoded images (Tiny ImageNet, image folders) are cached as uint8 tensors in
``root/.course_cache/<name>-<key>.pt``, where ``key`` hashes every source file's path, size
and mtime: a changed, added or removed file rebuilds it. The cache is written atomically
(temporary file + ``os.replace``) and skipped quietly when ``root`` is not writable or is
marked read-only (no write bit, which also holds back root users).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .config import parse_spec
from .errors import CourseError
from .images import ImageDataset, as_dataset

CACHE_DIR = ".course_cache"
CACHE_VERSION = 1  # bump when the cached layout or the decoding changes
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
PROGRESS_MIN = 1000  # show a progress bar when decoding more files than this

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TGZ = "cifar-10-python.tar.gz"
CIFAR10_TGZ_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
# The python batches and their md5s, torchvision's official list (tests/test_realdata.py compares them with
# ``torchvision.datasets.CIFAR10``). Written out here so that loading never imports torchvision: its import
# pulls in ``torch._dynamo`` and costs ~9 s per process on a 2-core CPU.
CIFAR10_FILES = (
    ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    ("data_batch_4", "634d18415352ddfa80567beed471001a"),
    ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ("test_batch", "40351d587109b95175f43aff81a1287e"),
    ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
)
# Over https. The md5 is the one the Stanford page does not publish but every loader uses (avalanche's
# TinyImagenet, many torchvision-style datasets) and that downloads report (248,100,043 bytes); not re-measured here
# (no network where this was written). A mismatch stops with a message; the zip is never used unchecked.
TINY_URL = "https://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
TINY_ZIP = "tiny-imagenet-200.zip"
TINY_FOLDER = "tiny-imagenet-200"


def _need_root(name: str, root: Path | None) -> Path:
    """``root``, or the folder :func:`course_lib.config.parse_spec` decides when none is set (``data/`` in the
    project for the downloadable datasets); an image folder nobody named is one line naming the fix."""
    if root is None:
        root = parse_spec(name, None)[1]
        if root is None:
            raise CourseError(
                "dataset 'imagefolder' reads your own images: set data_root to the folder that holds "
                "train/<class>/ and test/<class>/ (or use 'imagefolder:/path/to/folder')"
            )
    return Path(root).expanduser()


#: What data_root may hold for each real dataset, as the one-line messages name it.
LAYOUTS = {
    "cifar10": "cifar10/ with train/ and test/ image folders (or cifar10/cifar-10-batches-py/), "
               "or cifar-10-batches-py/ directly",
    "tiny-imagenet": f"{TINY_FOLDER}/ (or {TINY_ZIP})",
    "imagefolder": "train/<class>/ and test/<class>/ image folders",
}


def check_layout(name: str, root: str | Path | None, download: bool = False) -> None:
    """Refuse, in one line naming the accepted layouts, a ``root`` that cannot hold dataset ``name``.

    Cheap (it looks at names, reads no file): what ``course_lib.run`` and ``course_lib.pretrain`` check before
    any notebook or training starts. The embedded digits need nothing; with ``download=True`` a missing
    CIFAR-10 or Tiny ImageNet is fine (it will be fetched). What the folders hold is checked when they are read.
    """
    if name not in LAYOUTS:
        return
    root = _need_root(name, root)
    if root.exists() and not root.is_dir():
        raise CourseError(f"data_root {str(root)!r} is a file, not a folder: set data_root to the folder that holds "
                          f"{LAYOUTS[name]}")
    if name == "imagefolder":
        if not ((root / "train").is_dir() and (root / "test").is_dir()):
            raise CourseError(f"no image folder in {str(root)!r}: dataset 'imagefolder' needs {LAYOUTS[name]} there")
        return
    if download:
        return
    if name == "cifar10":
        found = [(c / CIFAR10_FOLDER).is_dir() or ((c / "train").is_dir() and (c / "test").is_dir())
                 for c in (root, root / "cifar10")]
        if any(found):
            return
        tarball = root / "cifar-10-python.tar.gz"
        if tarball.is_file():
            raise CourseError(f"{tarball} is not extracted: run `tar xzf '{tarball}' -C '{root}'` (giving "
                              f"{CIFAR10_FOLDER}/), or set download=True")
        raise CourseError(f"no CIFAR-10 in {str(root)!r}: data_root must hold {LAYOUTS[name]}; download "
                          f"{CIFAR10_URL} and extract it there, or set download=True")
    if not ((root / TINY_FOLDER).is_dir() or (root / TINY_ZIP).is_file()):
        raise CourseError(f"no Tiny ImageNet in {str(root)!r}: data_root must hold {LAYOUTS[name]}; download "
                          f"{TINY_URL} there, or set download=True")


# --------------------------------------------------------------------------- cache


def _source_key(files: Sequence[Path], base: Path, extra: str = "") -> str:
    """A hash of the files' paths (relative to ``base``), sizes and mtimes, plus ``extra``."""
    h = hashlib.sha256(f"v{CACHE_VERSION}\n{extra}\n".encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _cache_path(root: Path, name: str, key: str) -> Path:
    return root / CACHE_DIR / f"{name}-{key}.pt"


_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def _load_cache(path: Path, name: str) -> ImageDataset | None:
    """The cached dataset, or ``None`` when there is no usable cache file."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        tensors = {k: blob[k] for k in _FIELDS}
        classes = tuple(str(c) for c in blob["classes"])
        ok = (
            blob.get("version") == CACHE_VERSION
            and tensors["x_train"].dtype == torch.uint8
            and tensors["x_test"].dtype == torch.uint8
            and tensors["y_train"].dtype == torch.int64
            and tensors["y_test"].dtype == torch.int64
        )
    except Exception:  # a truncated or foreign file: rebuild it
        return None
    return ImageDataset(name=name, classes=classes, **tensors) if ok else None


def _writable(folder: Path) -> bool:
    """Whether we may write in ``folder``: allowed *and* not marked read-only.

    The mode check matters when running as root, where ``os.access`` says yes even to a
    folder whose owner made it read-only (``chmod a-w``), such as a shared data copy.
    """
    try:
        return folder.stat().st_mode & 0o222 != 0 and os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        return False


def _save_cache(path: Path, ds: ImageDataset) -> None:
    """Write the cache atomically; quietly do nothing when that is impossible."""
    tmp = None
    try:
        root = path.parent.parent
        if not _writable(root) or (path.parent.exists() and not _writable(path.parent)):
            return
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            blob = {k: getattr(ds, k) for k in _FIELDS}
            torch.save({**blob, "classes": list(ds.classes), "version": CACHE_VERSION}, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a cache is as readable as the data
        os.replace(tmp, path)
        tmp = None
        prefix = path.name.rsplit("-", 1)[0] + "-"
        for old in path.parent.glob(prefix + "*.pt"):  # caches of older versions of the files
            if old != path and old.name[len(prefix):].count("-") == 0:
                old.unlink(missing_ok=True)
    except (OSError, RuntimeError):  # read-only root, full disk, ...: run without a cache
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _cached(root: Path, cache_name: str, name: str, key: str, build) -> ImageDataset:
    """The dataset from ``root/.course_cache/<cache_name>-<key>.pt``, or ``build()`` it and cache it."""
    path = _cache_path(root, cache_name, key)
    ds = _load_cache(path, name)
    if ds is None:
        ds = build()
        _save_cache(path, ds)
    return ds


# --------------------------------------------------------------------------- decoding


def _decode_one(path: Path, out: np.ndarray, size: tuple[int, int], first: Path) -> None:
    """Decode ``path`` as RGB into ``out`` (3 x H x W), checking that its size is ``size``."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.size != size:
                raise CourseError(
                    f"{path} is {img.size[0]}x{img.size[1]} pixels but {first} is {size[0]}x{size[1]}: "
                    "resize all images of the dataset to one size first"
                )
            if img.mode != "RGB":  # grey, palette, RGBA, CMYK, 16-bit ...
                img = img.convert("RGB")
            out[...] = np.asarray(img).transpose(2, 0, 1)
    except (OSError, SyntaxError, ValueError) as err:  # PIL.UnidentifiedImageError is an OSError
        raise CourseError(f"cannot read image {path} ({err}): delete or replace that file") from err


def _decode_images(paths: Sequence[Path], desc: str = "decoding") -> np.ndarray:
    """Decode image files into one preallocated uint8 ``N x 3 x H x W`` array (RGB).

    Every image must have the size of the first one. Threads decode in parallel (PIL
    releases the GIL while decoding); more than :data:`PROGRESS_MIN` files show a
    progress bar.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    if not paths:
        return np.zeros((0, 3, 0, 0), dtype=np.uint8)
    try:
        with Image.open(paths[0]) as img:
            size = img.size
    except OSError as err:
        raise CourseError(f"cannot read image {paths[0]} ({err}): delete or replace that file") from err
    out = np.empty((len(paths), 3, size[1], size[0]), dtype=np.uint8)

    def work(chunk: range) -> int:
        for i in chunk:
            _decode_one(paths[i], out[i], size, paths[0])
        return len(chunk)

    chunks = [range(i, min(i + 256, len(paths))) for i in range(0, len(paths), 256)]
    pool = ThreadPoolExecutor(min(8, os.cpu_count() or 1))
    try:
        with tqdm(total=len(paths), desc=desc, unit="img", disable=len(paths) <= PROGRESS_MIN) as bar:
            for n in pool.map(work, chunks):
                bar.update(n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after an error, skip the chunks not started
    return out


# --------------------------------------------------------------------------- CIFAR-10


class _CifarUnpickler(pickle.Unpickler):
    """Only what the CIFAR batches hold: builtin containers and numpy arrays."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            raw = _CifarUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise CourseError(
            f"{path} is not a CIFAR-10 python batch ({err}): delete the folder and download it again"
        ) from err
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _cifar_files():
    return list(CIFAR10_FILES)


def _download(url: str, root: Path, filename: str, md5: str, extract: bool, where: str) -> None:
    """Fetch ``url`` as ``root/filename`` with torchvision's downloader, which checks ``md5`` (``extract``: and
    unpacks it in ``root``); no network, an HTTP error or a corrupted download is one message naming the fix.
    torchvision is imported here only: its import costs ~9 s (``torch._dynamo``)."""
    from torchvision.datasets import utils

    root.mkdir(parents=True, exist_ok=True)
    fetch = utils.download_and_extract_archive if extract else utils.download_url
    try:
        fetch(url, root, filename=filename, md5=md5)
    except Exception as err:  # no network, HTTP error, corrupted download
        raise CourseError(f"downloading {url} failed ({err}): check the network, or download it yourself "
                          f"{where}") from err


def _md5_matches(path: Path, md5: str) -> bool:
    """Whether the file exists and its md5 is ``md5`` (torchvision's ``check_integrity``, without importing it)."""
    if not path.is_file():
        return False
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == md5


def load_cifar10(root: str | Path | None, download: bool = False, verify: bool = True) -> ImageDataset:
    """CIFAR-10 from ``root/cifar-10-batches-py/`` (50,000 train + 10,000 test, 32x32).

    ``verify`` checks each file's md5 against torchvision's official list; the downloaded
    archive is always checked.
    """
    root = _need_root("cifar10", root)
    folder = root / CIFAR10_FOLDER
    if not folder.is_dir() and (root / "cifar10" / CIFAR10_FOLDER).is_dir():  # data_root holds cifar10/
        root = root / "cifar10"
        folder = root / CIFAR10_FOLDER
    files = _cifar_files()
    missing = [n for n, _ in files if not (folder / n).is_file()]
    tree = next((c for c in (root / "cifar10", root) if (c / "train").is_dir() and (c / "test").is_dir()), None)
    if missing and tree is not None:  # CIFAR-10 as an image folder, e.g. train/<class>/*.jpg
        return _cifar_image_folder(tree)
    if missing and download:
        _download(CIFAR10_URL, root, CIFAR10_TGZ, CIFAR10_TGZ_MD5, extract=True, where=f"and extract it in {root}")
        missing = [n for n, _ in files if not (folder / n).is_file()]
    if missing:
        tarball = root / CIFAR10_TGZ
        if tarball.is_file():
            raise CourseError(
                f"{tarball} is not extracted: run `tar xzf {tarball} -C {root}` "
                f"(giving {folder}/), or pass download=True"
            )
        raise CourseError(
            f"no CIFAR-10 in {folder} (missing {', '.join(missing)}): download {CIFAR10_URL} and "
            f"extract it in {root} (giving {folder}/), or pass download=True"
        )
    if verify:
        for name, md5 in files:
            if not _md5_matches(folder / name, md5):
                raise CourseError(
                    f"{folder / name} does not match the official CIFAR-10 checksum: delete {folder} "
                    "and download it again (or pass download=True)"
                )

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for n in names:
            batch = _read_cifar_pickle(folder / n)
            x = np.asarray(batch["data"], dtype=np.uint8)
            y = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) != len(y):
                raise CourseError(
                    f"{folder / n} holds data of shape {x.shape} for {len(y)} labels, not N x 3072: "
                    "delete the folder and download it again"
                )
            xs.append(x.reshape(-1, 3, 32, 32))  # rows are R, G, B planes of 32x32, row-major
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    x_tr, y_tr = read([n for n, _ in CIFAR10_FILES if n.startswith("data_batch")])
    x_te, y_te = read(["test_batch"])
    meta = _read_cifar_pickle(folder / "batches.meta")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta["label_names"]]
    return as_dataset("cifar10", x_tr, y_tr, x_te, y_te, classes)


#: CIFAR-10's classes in label order (the official batches.meta; also the sorted folder names).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _cifar_image_folder(tree: Path) -> ImageDataset:
    """CIFAR-10 stored as ``tree/{train,test}/<class>/*`` (e.g. PNG or JPEG exports), labels in official order."""
    ds = load_image_folder(tree)
    if ds.classes != CIFAR10_CLASSES or ds.image_size != 32:
        raise CourseError(
            f"{tree} is an image folder but not CIFAR-10 (classes {', '.join(ds.classes[:4])}, ..., "
            f"{ds.image_size} px): give CIFAR-10's ten class folders of 32 px images, or use dataset 'imagefolder'"
        )
    return dataclasses.replace(ds, name="cifar10 (image folder)")


# --------------------------------------------------------------------------- Tiny ImageNet


def extract_zip_safely(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest``, refusing members whose path would leave ``dest``.

    Every member is checked before anything is written.
    """
    dest = Path(dest)
    base = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                target = (base / member.filename).resolve()
                if member.filename.startswith(("/", "\\")) or not target.is_relative_to(base):
                    raise CourseError(
                        f"{archive} holds {member.filename!r}, a path outside the folder it extracts to: "
                        "refusing it; download the official archive again"
                    )
            zf.extractall(dest)
    except zipfile.BadZipFile as err:
        raise CourseError(f"{archive} is not a valid zip ({err}): delete it and download it again") from err


def _extract_tiny(root: Path) -> None:
    archive, folder = root / TINY_ZIP, root / TINY_FOLDER
    try:
        if not _writable(root):
            raise PermissionError(13, "the folder is read-only")
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{TINY_FOLDER}.extracting-"))
    except OSError as err:
        raise CourseError(
            f"cannot extract {archive} into {root} ({err.strerror}): unzip it there yourself "
            f"or make {root} writable"
        ) from err
    try:
        extract_zip_safely(archive, tmp)
        if not (tmp / TINY_FOLDER).is_dir():
            raise CourseError(
                f"{archive} has no {TINY_FOLDER}/ folder inside: download the official {TINY_URL}"
            )
        os.replace(tmp / TINY_FOLDER, folder)
    except OSError as err:
        raise CourseError(
            f"cannot extract {archive} into {root} ({err}): unzip it there yourself or free some disk space"
        ) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _list_images(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``folder`` (recursively, sorted, hidden ones skipped) with one of ``suffixes``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath, f) for f in filenames if not f.startswith(".") and f.lower().endswith(suffixes)
        ]
    return sorted(found)


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError as err:
        raise CourseError(f"{path} is missing ({what}): extract the whole {TINY_ZIP} again") from err


def tiny_imagenet_words(root: str | Path) -> dict[str, str]:
    """wnid -> words (``"n02123394" -> "Persian cat"``) from ``tiny-imagenet-200/words.txt``."""
    path = Path(root).expanduser() / TINY_FOLDER / "words.txt"
    out = {}
    for line in _read_lines(path, "class names"):
        wnid, _, words = line.partition("\t")
        out[wnid.strip()] = words.strip()
    return out


def load_tiny_imagenet(root: str | Path | None, download: bool = False) -> ImageDataset:
    """Tiny ImageNet (200 classes, 64x64): train split and the labelled official val split as test."""
    root = _need_root("tiny-imagenet", root)
    folder, archive = root / TINY_FOLDER, root / TINY_ZIP
    if not folder.is_dir():
        if download:
            _download(TINY_URL, root, TINY_ZIP, TINY_MD5, extract=False, where=f"into {root}")
            if not _md5_matches(archive, TINY_MD5):
                raise CourseError(f"{archive} does not match the official checksum: delete it and try again")
        if not archive.is_file():
            raise CourseError(
                f"no Tiny ImageNet in {root}: download {TINY_URL} into {root} "
                f"(the zip or its extracted {TINY_FOLDER}/ folder), or pass download=True"
            )
        _extract_tiny(root)

    wnids = sorted(set(_read_lines(folder / "wnids.txt", "the class list")))
    index = {w: i for i, w in enumerate(wnids)}
    train_files: list[Path] = []
    train_labels: list[int] = []
    for w in wnids:
        imgs = _list_images(folder / "train" / w / "images", (".jpeg", ".jpg"))
        if not imgs:
            raise CourseError(f"no training images in {folder / 'train' / w / 'images'}: extract the whole {TINY_ZIP} again")
        train_files += imgs
        train_labels += [index[w]] * len(imgs)

    annotations = folder / "val" / "val_annotations.txt"
    val_files: list[Path] = []
    val_labels: list[int] = []
    for line in sorted(_read_lines(annotations, "the val labels")):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise CourseError(
                f"{annotations}: line {line!r} does not name a class of wnids.txt: extract the whole {TINY_ZIP} again"
            )
        path = folder / "val" / "images" / fields[0]
        if not path.is_file():
            raise CourseError(f"{path} (listed in {annotations}) is missing: extract the whole {TINY_ZIP} again")
        val_files.append(path)
        val_labels.append(index[fields[1]])

    sources = [folder / "wnids.txt", annotations, *train_files, *val_files]
    key = _source_key(sources, root)

    def build() -> ImageDataset:
        x_tr = _decode_images(train_files, "Tiny ImageNet train")
        x_te = _decode_images(val_files, "Tiny ImageNet val")
        return as_dataset("tiny-imagenet", x_tr, train_labels, x_te, val_labels, wnids)

    ds = _cached(root, "tiny-imagenet", "tiny-imagenet", key, build)
    try:  # "n02123394" -> "Persian cat" for legends; the wnids stay the classes (A and B are checked on them)
        words = tiny_imagenet_words(root)
        return dataclasses.replace(ds, class_names=tuple(words.get(w, w).split(",")[0] for w in ds.classes))
    except CourseError:  # no words.txt: the wnids will do
        return ds


# --------------------------------------------------------------------------- image folder


def load_image_folder(root: str | Path | None, download: bool = False) -> ImageDataset:
    """Images in ``root/{train,test}/<class>/`` (one size for all; classes from train)."""
    root = _need_root("imagefolder", root)
    fix = (
        f"put the images in {root}/train/<class>/ and {root}/test/<class>/ "
        f"({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}); this dataset cannot be downloaded"
    )
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise CourseError(f"no image folder {root / split}: {fix}")
    classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise CourseError(f"no class folders in {root / 'train'}: {fix}")
    test_classes = sorted(d.name for d in (root / "test").iterdir() if d.is_dir() and not d.name.startswith("."))
    extra = [c for c in test_classes if c not in classes]
    if extra:
        raise CourseError(
            f"{root / 'test'} has classes that {root / 'train'} lacks ({', '.join(extra)}): "
            "give every test class training images, or remove it from test"
        )

    def listing(split: str, names: list[str]) -> tuple[list[Path], list[int]]:
        files, labels = [], []
        for c in names:
            imgs = _list_images(root / split / c, IMAGE_EXTENSIONS)
            files += imgs
            labels += [classes.index(c)] * len(imgs)
        if not files:
            raise CourseError(f"no images in {root / split}: {fix}")
        return files, labels

    train_files, train_labels = listing("train", classes)
    test_files, test_labels = listing("test", test_classes)
    key = _source_key([*train_files, *test_files], root, extra="\n".join(classes))
    name = f"imagefolder {root.resolve().name}"

    def build() -> ImageDataset:
        x_tr = _decode_images(train_files, f"{root.name} train")
        x_te = _decode_images(test_files, f"{root.name} test")
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise CourseError(
                f"test images are {x_te.shape[3]}x{x_te.shape[2]} but train images are "
                f"{x_tr.shape[3]}x{x_tr.shape[2]}: resize all images of the dataset to one size first"
            )
        return as_dataset(name, x_tr, train_labels, x_te, test_labels, classes)

    return _cached(root, "imagefolder", name, key, build)


def file_formats(spec: str, data_root: str | Path | None) -> str | None:
    """What a real dataset was read from, for a report's header: "JPEG files (.jpg)", "PNG files (.png)" or
    "the official python batches"; None for the embedded digits or when nothing is found."""
    name, root = parse_spec(spec, data_root)
    if name not in ("cifar10", "tiny-imagenet", "imagefolder") or root is None:
        return None
    folders = {"cifar10": (root / "cifar10", root), "tiny-imagenet": (root / TINY_FOLDER,),
               "imagefolder": (root,)}[name]
    for folder in folders:
        if name == "cifar10" and ((folder / CIFAR10_FOLDER).is_dir() or folder.name == CIFAR10_FOLDER):
            return "the official python batches"
        train = folder / "train"
        if train.is_dir():
            found = next((f.suffix.lower() for f in train.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS), None)
            if found:
                kind = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}[found]
                return f"{kind} files ({found})"
    return None

