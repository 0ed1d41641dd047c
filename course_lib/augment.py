"""Two-view augmentation computed on the whole batch, on the device.

Introduced in notebook 02. Every random choice is drawn per sample, but the work is
a handful of tensor ops over the batch: the crop, the resize and the flip of all
images are one ``grid_sample`` call, a colour jitter is a few elementwise ops and one
3x3 colour matrix per sample, a blur one separable grouped convolution. No PIL, no workers.

The coursework's augmentation is RandomResizedCrop(32) + RandomHorizontalFlip
(:func:`coursework_views`). Photometric ops (:class:`ColorJitter`,
:class:`RandomGrayscale`, :class:`GaussianBlur`, :class:`Solarize`) plug in as extra
steps of :class:`ViewAugment`; :func:`ssl_views` ("ssl") combines them into the
asymmetric pair of VICReg and Barlow Twins (their ImageNet recipe), :func:`ssl_cifar_views`
("ssl-cifar") into solo-learn's CIFAR recipe (no blur, solarization p 0.1 on both views). Each step draws its per-sample random
numbers from the generator it is given, on the batch's device, so a seed fixes the views.
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
    # The affine grid of theta = [[sx, 0, cx], [0, h, cy]], built by broadcasting (no bmm):
    # output pixel centres in [-1, 1], scaled and shifted per sample.
    base = (torch.arange(size, device=device, dtype=x.dtype) * 2 + 1) / size - 1
    gx = (sx[:, None] * base + cx[:, None])[:, None, :].expand(b, size, size)
    gy = (h[:, None] * base + cy[:, None])[:, :, None].expand(b, size, size)
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class ViewAugment:
    """One view's augmentation: crop + flip, then photometric ``steps`` in order."""

    size: int | None  # output side, pixels; None: the input's
    scale: tuple[float, float] = (0.08, 1.0)
    flip_p: float = 0.5
    steps: Sequence[Step] = field(default_factory=tuple)

    def __call__(self, x_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        size = self.size or x_uint8.shape[-1]
        x = random_resized_crop_flip(to_float(x_uint8), size, generator, self.scale, flip_p=self.flip_p)
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


# ----------------------------------------------------------------------------- photometric steps
# Each step below is a Step: it draws one row of random numbers per sample from the
# generator, on the batch's device, and applies every sample's parameters with a few
# tensor ops over the whole batch (no loop over samples). A sample a step skips
# (probability 1 - p) gets the identity parameters, so shapes do not depend on the draw;
# the one exception is a blur with p < 1, which blurs only the chosen samples.
# Why own code and not kornia: see benchmarks/README.md (ours is ~5x faster on a CPU).

#: ITU-R BT.601 luma weights, as in PIL's "L" mode (torchvision rounds red to 0.2989).
LUMA = (0.299, 0.587, 0.114)

# RGB -> YIQ (NTSC). Its first row is the luma, so in YIQ a saturation change scales the
# chroma plane (I, Q) and a hue shift rotates it: both together are one 3x3 matrix per
# sample in RGB, T^-1 [1 (+) s R(theta)] T, applied to the batch with one bmm.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
_YIQ_TO_RGB = torch.linalg.inv(torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)).tolist()


def _luma(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(LUMA, dtype=x.dtype, device=x.device)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of RGB images (B x 3 x H x W) -> B x 1 x H x W."""
    b, _, h, w = x.shape
    return torch.matmul(_luma(x), x.reshape(b, 3, h * w)).view(b, 1, h, w)  # one batched GEMV


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiply each image by its own ``factor`` (B,), then clamp to [0, 1] (torchvision's definition)."""
    return (x * _per_sample(factor)).clamp_(0, 1)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its mean grey level by ``factor`` (B,); 0 gives flat grey, 1 the image."""
    mean = x.mean(dim=(-2, -1)) @ _luma(x)  # the mean of the luma, without the luma image
    f = _per_sample(factor)
    return (x * f).add_((1 - f) * _per_sample(mean)).clamp_(0, 1)  # a broadcast lerp is 2x slower on CPUs


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its own grayscale by ``factor`` (B,); 0 gives grey, 1 the image."""
    return apply_color_matrix(x, saturation_hue_matrix(factor, torch.zeros_like(factor)))


def saturation_hue_matrix(saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Per-sample RGB colour matrices (B x 3 x 3) that scale chroma by ``saturation`` and turn hue by ``hue``.

    ``hue`` is a fraction of the colour circle in [-0.5, 0.5], as in torchvision. The hue
    turn is a rotation of the YIQ chroma plane, not torchvision's RGB->HSV->RGB shift:
    a 3x3 matrix instead of a per-pixel piecewise function. The two agree on the
    direction and closely on the amount for moderate shifts (|hue| <= 0.1 here); the
    rotation keeps luma fixed where HSV keeps the max channel (value) fixed.
    """
    t = torch.tensor(_RGB_TO_YIQ, dtype=saturation.dtype, device=saturation.device)
    t_inv = torch.tensor(_YIQ_TO_RGB, dtype=saturation.dtype, device=saturation.device)
    theta = 2 * math.pi * hue
    # a positive hue turns red towards green, as in HSV; in YIQ that is a clockwise rotation
    c, s = saturation * torch.cos(theta), saturation * torch.sin(theta)
    m = torch.zeros(saturation.shape[0], 3, 3, dtype=t.dtype, device=t.device)
    m[:, 0, 0] = 1
    m[:, 1, 1], m[:, 1, 2] = c, s
    m[:, 2, 1], m[:, 2, 2] = -s, c
    return t_inv @ m @ t


def apply_color_matrix(x: torch.Tensor, matrix: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """Apply a 3 x 3 colour matrix per sample (B x 3 x 3) to B x 3 x H x W images, then clamp to [0, 1]."""
    b, c, h, w = x.shape
    y = torch.bmm(matrix.to(x.dtype), x.reshape(b, c, h * w)).view(b, c, h, w)
    return y.clamp_(0, 1) if clamp else y


def adjust_hue(x: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Turn each image's hue by its own ``hue`` (B,), a fraction of the colour circle, as a YIQ rotation."""
    return apply_color_matrix(x, saturation_hue_matrix(torch.ones_like(hue), hue))


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Invert the pixels at or above ``threshold`` (torchvision's definition: ``x >= threshold``)."""
    return torch.where(x >= threshold, 1 - x, x)


def blur_kernel_size(image_size: int) -> int:
    """SimCLR's blur kernel: about 10% of the image side, odd, at least 3 (3 at 32 px, 23 at 224 px)."""
    k = max(3, int(0.1 * image_size))
    return k if k % 2 else k + 1


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Blur each image with its own ``sigma`` (B,): one separable, grouped convolution over the batch.

    The batch's B x C planes become the channels of one image and each gets its own
    1-D kernel (``groups = B * C``), horizontally then vertically; borders are
    reflected, as in torchvision. ``sigma`` at (or near) 0 gives the identity kernel.
    """
    b, c, h, w = x.shape
    if b == 0:
        return x.clone()
    half = kernel_size // 2
    t = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(t * t) / (2 * sigma.to(x.dtype).clamp_min(1e-3).square().unsqueeze(1)))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B * C) x k
    planes = F.pad(x.reshape(1, b * c, h, w), (half, half, half, half), mode="reflect")
    planes = F.conv2d(planes, kernel.view(b * c, 1, 1, kernel_size), groups=b * c)
    planes = F.conv2d(planes, kernel.view(b * c, 1, kernel_size, 1), groups=b * c)
    return planes.view(b, c, h, w)


@dataclass(frozen=True)
class ColorJitter:
    """torchvision's ``RandomApply([ColorJitter(...)], p)`` for a batch, each sample its own factors.

    Factors are uniform in ``[max(0, 1 - a), 1 + a]`` (brightness, contrast, saturation)
    and in ``[-hue, hue]`` for the hue, as in torchvision. The order is fixed (brightness,
    contrast, saturation, hue) where torchvision draws a random order per image: the
    four are near-commuting small changes, and a fixed order keeps saturation and hue
    one colour matrix per sample (:func:`saturation_hue_matrix`; one clamp after both).
    """

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    p: float = 0.8

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(x.shape[0], 5, generator=generator, device=x.device, dtype=x.dtype)
        on = (u[:, 4] < self.p).to(x.dtype)  # a skipped sample gets the identity factors

        def factor(column: torch.Tensor, spread: float) -> torch.Tensor:
            low = max(0.0, 1 - spread)
            return 1 + on * (low - 1 + (1 + spread - low) * column)

        x = adjust_brightness(x, factor(u[:, 0], self.brightness))
        x = adjust_contrast(x, factor(u[:, 1], self.contrast))
        hue = on * self.hue * (2 * u[:, 3] - 1)
        return apply_color_matrix(x, saturation_hue_matrix(factor(u[:, 2], self.saturation), hue))


@dataclass(frozen=True)
class RandomGrayscale:
    """Replace each sample, with probability ``p``, by its ITU-R 601 luma in all three channels."""

    p: float = 0.2

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        on = torch.rand(x.shape[0], generator=generator, device=x.device) < self.p
        # one colour matrix per sample: the luma in every row, or the identity (one bmm, no where)
        gray = _luma(x).expand(3, 3)
        eye = torch.eye(3, dtype=x.dtype, device=x.device)
        return apply_color_matrix(x, torch.where(on.view(-1, 1, 1), gray, eye), clamp=False)


@dataclass(frozen=True)
class GaussianBlur:
    """Blur each sample with probability ``p``, sigma uniform in ``sigma``; kernel ~10% of the side.

    ``kernel_size=None`` picks :func:`blur_kernel_size` of the image side at call time.
    """

    p: float = 1.0
    sigma: tuple[float, float] = (0.1, 2.0)
    kernel_size: int | None = None

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.p <= 0:
            return x
        u = torch.rand(x.shape[0], 2, generator=generator, device=x.device, dtype=x.dtype)
        sigma = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * u[:, 0]
        k = self.kernel_size or blur_kernel_size(x.shape[-1])
        if self.p >= 1:
            return gaussian_blur(x, sigma, k)
        # Blur only the chosen samples: at p = 0.1 that is a tenth of the work. (The one
        # step whose shapes depend on the draw; on a GPU, nonzero() waits for the draw.)
        chosen = (u[:, 1] < self.p).nonzero().squeeze(1)
        return x.index_copy(0, chosen, gaussian_blur(x[chosen], sigma[chosen], k))


@dataclass(frozen=True)
class Solarize:
    """Solarize each sample with probability ``p``: pixels at or above ``threshold`` become ``1 - x``."""

    p: float = 0.2
    threshold: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.p <= 0:
            return x
        on = torch.rand(x.shape[0], generator=generator, device=x.device) < self.p
        # a skipped sample gets a threshold no pixel reaches: one comparison, one where
        threshold = torch.where(on, self.threshold, math.inf).to(x.dtype)
        return torch.where(x >= _per_sample(threshold), 1 - x, x)


def _ssl_view(size: int, scale: tuple[float, float], blur_p: float, solarize_p: float) -> ViewAugment:
    """Crop + flip, colour jitter (0.4, 0.4, 0.2, 0.1; p 0.8), grayscale (p 0.2), blur and solarization."""
    steps = (
        ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8),
        RandomGrayscale(p=0.2),
        GaussianBlur(p=blur_p, sigma=(0.1, 2.0)),
        Solarize(p=solarize_p, threshold=0.5),
    )
    return ViewAugment(size=size, scale=scale, flip_p=0.5, steps=steps)


def ssl_views(size: int, scale: tuple[float, float] = (0.08, 1.0)) -> TwoViews:
    """VICReg / Barlow Twins' asymmetric pair (their ImageNet recipe): crop + flip, colour jitter (p 0.8),
    grayscale (p 0.2), then view 1: Gaussian blur (p 1.0), no solarization; view 2: blur (p 0.1),
    solarization (p 0.2).
    """
    return TwoViews(_ssl_view(size, scale, blur_p=1.0, solarize_p=0.0),
                    _ssl_view(size, scale, blur_p=0.1, solarize_p=0.2))


def ssl_cifar_views(size: int, scale: tuple[float, float] = (0.2, 1.0)) -> TwoViews:
    """The CIFAR variant of :func:`ssl_views` (solo-learn's VICReg recipe for 32 px images, the one behind
    its 92.07 %): the same crop, flip, jitter and grayscale, no Gaussian blur (at 32 px a 3x3 blur with
    sigma up to 2 all but erases an image's detail), solarization with p 0.1 on both views.
    """
    view = _ssl_view(size, scale, blur_p=0.0, solarize_p=0.1)
    return TwoViews(view, view)


AUGMENTATIONS: dict[str, Callable[..., TwoViews]] = {
    "crop-flip": coursework_views, "ssl": ssl_views, "ssl-cifar": ssl_cifar_views,
}


def build_views(name: str, size: int, scale: tuple[float, float]) -> TwoViews:
    """The named two-view augmentation (see :data:`AUGMENTATIONS`)."""
    from .errors import CourseError

    if name not in AUGMENTATIONS:
        raise CourseError(f"unknown augmentation {name!r}: use one of {', '.join(AUGMENTATIONS)}")
    return AUGMENTATIONS[name](size, scale=scale)
