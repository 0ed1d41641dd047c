"""Two-view augmentation computed on the whole batch, on the device.

Introduced in notebook 02. Every random choice is drawn per sample, but the work is
a handful of tensor ops over the batch: the crop, the resize and the flip of all
images are one ``grid_sample`` call. No PIL, no worker processes.

The coursework's augmentation is RandomResizedCrop(32) + RandomHorizontalFlip
(:func:`coursework_views`). Photometric ops (colour jitter, grayscale, blur,
solarization) plug in as extra steps of :class:`ViewAugment`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

#: A photometric step: (images in [0, 1], B x 3 x H x W; generator) -> images.
Step = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1] (no normalization yet)."""
    return x.float().div_(255)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> the network's input range [-1, 1]."""
    return x.sub(0.5).div_(0.5)


def prepare(x: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Evaluation input: uint8 images -> normalized floats, resized to ``size`` if it differs."""
    x = to_float(x)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x)


def random_resized_crop_flip(
    x: torch.Tensor,
    size: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
) -> torch.Tensor:
    """RandomResizedCrop + horizontal flip for a whole batch, as one affine resampling.

    Like torchvision, the crop's area fraction is uniform in ``scale`` and its
    aspect ratio log-uniform in ``ratio``. Where torchvision retries a crop that
    does not fit, we shrink its sides to fit instead: the same support, no loop.
    """
    b, device = x.shape[0], x.device
    u = torch.rand(b, 4, generator=generator, device=device)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # crop sides as fractions of the image side
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1 - w) * (2 * u[:, 2] - 1)  # crop centre in [-1, 1] coordinates, crop kept inside
    cy = (1 - h) * (2 * u[:, 3] - 1)
    flip = torch.rand(b, generator=generator, device=device) < flip_p
    sx = torch.where(flip, -w, w)
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class ViewAugment:
    """One view's augmentation: crop + flip, then photometric ``steps`` in order."""

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    flip_p: float = 0.5
    steps: Sequence[Step] = field(default_factory=tuple)

    def __call__(self, x_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = random_resized_crop_flip(to_float(x_uint8), self.size, generator, self.scale, flip_p=self.flip_p)
        for step in self.steps:
            x = step(x, generator)
        return normalize(x)


@dataclass
class TwoViews:
    """The pair of augmentations that make a positive pair (they may differ, as in BYOL/VICReg)."""

    first: ViewAugment
    second: ViewAugment

    def __call__(self, x_uint8: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.first(x_uint8, generator), self.second(x_uint8, generator)


def coursework_views(size: int, scale: tuple[float, float] = (0.08, 1.0)) -> TwoViews:
    """RandomResizedCrop(size) + RandomHorizontalFlip(0.5) for both views: the coursework's choice."""
    view = ViewAugment(size=size, scale=scale)
    return TwoViews(view, view)


AUGMENTATIONS: dict[str, Callable[..., TwoViews]] = {"crop-flip": coursework_views}


def build_views(name: str, size: int, scale: tuple[float, float]) -> TwoViews:
    """The named two-view augmentation (see :data:`AUGMENTATIONS`)."""
    from .errors import CourseError

    if name not in AUGMENTATIONS:
        raise CourseError(f"unknown augmentation {name!r}: use one of {', '.join(AUGMENTATIONS)}")
    return AUGMENTATIONS[name](size, scale=scale)
