"""Datasets held as uint8 tensors on the device, split into the coursework's sets A and B.

Introduced in notebook 01. Every dataset is an :class:`ImageDataset`: uint8 images
``N x C x H x W`` (always 3 channels) and int64 labels, for a train and a test split.
Training never goes through PIL or worker processes: the whole split sits on the
device and a batch is a slice of an on-device permutation (:func:`batches`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import realdata
from .config import parse_spec
from .errors import CourseError
from .images import ImageDataset, as_dataset

#: The split seed is fixed on purpose: runs with different training seeds are
#: compared on the same train/test split.
SPLIT_SEED = 0


def _stratified_split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=seed)


#: Side of the scattered digits' canvas, pixels, and the range of the digit's side on it.
SCATTER_CANVAS = 16
SCATTER_SIDES = (8, 12)


def scatter(images: np.ndarray, canvas: int = SCATTER_CANVAS, sides: tuple[int, int] = SCATTER_SIDES,
            seed: int = SPLIT_SEED) -> np.ndarray:
    """Each ``N x C x h x w`` uint8 image resized to a random side in ``sides`` and pasted at a random place
    on a black ``canvas x canvas`` square (bilinear; seeded, so the dataset is the same on every machine).

    This is part of the *dataset*, drawn once, not an augmentation: the digits stop
    sitting in the same pixels, so a linear classifier on the raw pixels no longer
    solves the task, and an encoder has something to learn (see :func:`load_digits_set`).
    """
    if not sides[0] <= sides[1] <= canvas:
        raise CourseError(f"digit sides {sides} do not fit a {canvas} px canvas: pick sides <= canvas")
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(images).float()
    out = torch.zeros(len(x), x.shape[1], canvas, canvas, dtype=torch.uint8)
    side = torch.randint(sides[0], sides[1] + 1, (len(x),), generator=g)
    corner = (torch.rand(len(x), 2, generator=g) * (canvas - side + 1)[:, None]).long()  # top, left
    for s in side.unique().tolist():  # one resize per digit size
        idx = (side == s).nonzero().flatten()
        digits = torch.nn.functional.interpolate(x[idx], size=(s, s), mode="bilinear", align_corners=False)
        digits = digits.round().clamp(0, 255).to(torch.uint8)
        for i, digit in zip(idx.tolist(), digits):
            top, left = corner[i].tolist()
            out[i, :, top : top + s, left : left + s] = digit
    return out.numpy()


def load_digits_set(labels: range | None = None, test_fraction: float = 0.25, scattered: bool = False) -> ImageDataset:
    """scikit-learn's bundled handwritten digits (8x8, grey levels 0-16) as 3-channel uint8.

    ``labels`` keeps only those digits and renumbers them from 0, the way the
    coursework's sets A and B have disjoint label sets. The train/test split is
    stratified and seeded with :data:`SPLIT_SEED`.

    ``scattered=True`` (the presets' default, ``"digits-scattered-a"`` / ``"-b"``) pastes
    every digit, 8-12 px wide, at a random place on a 16 px canvas (:func:`scatter`).
    As shipped, the 8x8 digits are centred and size-normalized: a linear classifier on
    the raw pixels gets 99 % of set A's test images right, and so does one on any
    encoder's embeddings, random or trained, which leaves no room to see what
    pretraining adds. Scattered, the raw pixels get well under half right, like
    photos, where the object moves across the frame.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)  # 0..16 -> 0..255
    images = np.repeat(images[:, None], 3, axis=1)  # grey -> RGB, so every encoder takes 3 channels
    if scattered:  # drawn for all 1,797 digits at once: a digit sits in the same place in A, B and "digits"
        images = scatter(images)
    targets = bunch.target
    labels = range(10) if labels is None else labels
    keep = np.isin(targets, list(labels))
    images, targets = images[keep], targets[keep] - labels[0]
    x_tr, x_te, y_tr, y_te = _stratified_split(images, targets, test_fraction, SPLIT_SEED)
    name = "digits" if labels == range(10) else f"digits {labels[0]}-{labels[-1]}"
    if scattered:
        name += f" scattered ({SCATTER_CANVAS} px)"
    return as_dataset(name, x_tr, y_tr, x_te, y_te, [str(d) for d in labels])


#: name -> loader(root, download): every dataset a spec can name. The keys are config.DATASET_NAMES
#: (a test keeps the two lists equal), so that a typo fails when the settings are resolved.
DATASETS: dict[str, Callable[[Path | None, bool], ImageDataset]] = {
    "digits": lambda root, download: load_digits_set(),
    "digits-a": lambda root, download: load_digits_set(range(0, 5)),
    "digits-b": lambda root, download: load_digits_set(range(5, 10)),
    "digits-scattered": lambda root, download: load_digits_set(scattered=True),
    "digits-scattered-a": lambda root, download: load_digits_set(range(0, 5), scattered=True),
    "digits-scattered-b": lambda root, download: load_digits_set(range(5, 10), scattered=True),
    "cifar10": lambda root, download: realdata.load_cifar10(root, download),
    "tiny-imagenet": lambda root, download: realdata.load_tiny_imagenet(root, download),
    "imagefolder": lambda root, download: realdata.load_image_folder(root, download),
}


def load_dataset(name: str, root: str | Path | None = None, download: bool = False) -> ImageDataset:
    """Load a dataset by name (``"digits-a"``, ``"cifar10"``, ... or ``"name:path"``).

    Returns an :class:`ImageDataset` on the CPU; call ``.to(device)`` once.
    """
    key, folder = parse_spec(name, root)
    return DATASETS[key](folder, download)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """How many batches :func:`batches` yields for ``n`` samples (``drop_last``: the full ones, at least one)."""
    return max(1, n // batch_size)


def batches(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    drop_last: bool = True,
) -> Iterator[torch.Tensor]:
    """Index tensors of shuffled batches: slices of one on-device permutation.

    ``drop_last`` drops a ragged final batch (BatchNorm and the VICReg
    statistics are noisy on tiny batches); a dataset smaller than one batch
    still yields one batch with everything.
    """
    perm = torch.randperm(n, generator=generator, device="cpu").to(device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield perm[i : i + batch_size]


def balanced_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a seeded, class-balanced subset with ``fraction`` of each class (at least one each)."""
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    picked = []
    for c in labels.unique(sorted=True):
        idx = (labels == c).nonzero().flatten()
        k = max(1, round(fraction * len(idx)))
        picked.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(picked).sort().values


def limit_train(ds: ImageDataset, images: int | None, seed: int = SPLIT_SEED) -> ImageDataset:
    """``ds`` with a seeded, class-balanced subset of about ``images`` training images (``None``: all of them).

    How a preset gives an expensive encoder a smaller, *stated* budget (ResNet-18 on a CPU); the test
    split stays whole, so its numbers are measured on the same images as everyone else's.
    """
    if images is None or images >= len(ds.y_train):
        return ds
    idx = balanced_subset(ds.y_train, images / len(ds.y_train), seed).to(ds.y_train.device)
    return replace(ds, name=f"{ds.name}, {len(idx):,} training images", x_train=ds.x_train[idx],
                   y_train=ds.y_train[idx])


def budget(cfg, encoder_name: str, *sets: ImageDataset | None) -> tuple:
    """``(cfg.for_encoder(encoder_name), *sets)`` with each set's training split cut to that encoder's
    ``train_images``: the settings and data one encoder trains and is probed with (``None`` stays ``None``)."""
    ecfg = cfg.for_encoder(encoder_name)
    return (ecfg, *(limit_train(ds, ecfg.data.train_images) if ds is not None else None for ds in sets))


def validation_split(ds: ImageDataset, images: int, seed: int = 123) -> ImageDataset:
    """A dataset whose *test* split is ``images`` training images (class-balanced, seeded) and whose train
    split is the rest: where recipes are chosen, so the real test split is never looked at."""
    val = balanced_subset(ds.y_train, images / len(ds.y_train), seed).to(ds.y_train.device)
    keep = torch.ones(len(ds.y_train), dtype=torch.bool, device=ds.y_train.device)
    keep[val] = False
    return replace(ds, name=f"{ds.name} (validation split)", x_train=ds.x_train[keep], y_train=ds.y_train[keep],
                   x_test=ds.x_train[val], y_test=ds.y_train[val])


def resized(ds: ImageDataset, size: int) -> ImageDataset:
    """``ds`` with every image resized to ``size x size`` (bilinear, antialiased), still uint8."""
    def go(x: torch.Tensor) -> torch.Tensor:
        out = [torch.nn.functional.interpolate(x[i : i + 4096].float(), size=(size, size), mode="bilinear",
                                               antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
               for i in range(0, len(x), 4096)]
        return torch.cat(out)

    return replace(ds, name=f"{ds.name} at {size} px", x_train=go(ds.x_train), x_test=go(ds.x_test))


def check_sets(cfg) -> None:
    """Refuse, in one line, a data folder that cannot hold set A or B (:func:`course_lib.realdata.check_layout`):
    what the entry points check before any notebook runs or any folder is touched. Reads no image."""
    sets = cfg.data
    for spec in (sets.dataset_a, sets.dataset_b):
        if spec:
            name, root = parse_spec(spec, sets.root)
            realdata.check_layout(name, root, sets.download)


def load_sets(cfg) -> tuple[ImageDataset, ImageDataset | None]:
    """Sets A and B of a :class:`~course_lib.config.Config`, on its device (B is None when not set)."""
    device, sets = cfg.torch_device, cfg.data
    a = load_dataset(sets.dataset_a, sets.root, sets.download)
    b = load_dataset(sets.dataset_b, sets.root, sets.download) if sets.dataset_b else None
    # B at the network's side (A's own when image_size is None), resized once on the host: Tiny ImageNet's
    # 100,000 images take 1.2 GB of device memory at 64 px and a quarter of it at 32 px.
    if b is not None and b.image_size != (sets.image_size or a.image_size):
        b = resized(b, sets.image_size or a.image_size)
    a, b = a.to(device), (b.to(device) if b is not None else None)
    if b is not None and set(a.classes) & set(b.classes):
        raise CourseError(
            f"sets A ({a.name}) and B ({b.name}) share classes {sorted(set(a.classes) & set(b.classes))[:5]}: "
            "pick a set B whose labels are disjoint from A's"
        )
    return a, b
