"""Where and how a network runs: device, memory layout, precision; and its passes without gradient.

Used by training (:mod:`course_lib.train`), the diagnostics and the evaluation protocols
alike, so it sits below all three: :func:`autocast`, :func:`grad_scaler`, :func:`configure_backends`,
:func:`memory_format`, :func:`to_device`, :func:`random_encoder`, and the inference helpers :func:`embed`,
:func:`predict` and :func:`topk_accuracy` (re-exported by :mod:`course_lib.evaluate`,
where notebook 04 introduces them), and :func:`recalibrate_batchnorm` with :func:`averaging_batchnorm`.
"""
from __future__ import annotations

import copy
import os
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from .augment import prepare
from .config import Config
from .models import ENCODERS, build_encoder


def autocast(cfg: Config):
    """The autocast context for the config's device and precision (nothing for fp32)."""
    dtype = cfg.amp_dtype
    if dtype is None:
        return nullcontext()
    return torch.autocast(cfg.torch_device.type, dtype=dtype)


def grad_scaler(cfg: Config) -> torch.amp.GradScaler | None:
    """fp16's GradScaler on the run's device (``torch.amp.GradScaler("cpu")`` on a CPU), None for bf16 and fp32.

    ``torch.amp.GradScaler()`` without a device means CUDA: on a CPU it disables itself with a warning, and
    fp16 gradients would then underflow unscaled.
    """
    if not cfg.precision_policy.grad_scaler:
        return None
    return torch.amp.GradScaler(cfg.torch_device.type)


def configure_backends(cfg: Config) -> None:
    """The speed/reproducibility settings of the run's device, from ``cfg.deterministic``.

    On CUDA with ``deterministic=False`` (the default): TF32 matmuls and convolutions
    (``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``) and cuDNN's autotuner
    (``torch.backends.cudnn.benchmark``). **GPU runs are then not bit-exact**: cuDNN may pick other
    algorithms from one run to the next, and atomics (e.g. the kNN monitor's float ``scatter_add_``) add in
    any order, so two runs of the same settings differ in the last digits and drift apart over epochs (a CPU
    run with the same thread count repeats bit for bit). ``deterministic=True`` turns TF32 and the autotuner
    off and calls ``torch.use_deterministic_algorithms(True)`` (with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which
    cuBLAS reads when it starts: set it before the first GPU matmul of the process): slower, bit-exact on the
    same GPU and software, and an op with no deterministic implementation raises instead of running.
    The config decides: this sets ``torch.use_deterministic_algorithms`` to ``cfg.deterministic`` either way.
    """
    deterministic = cfg.hardware.deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)
    if cfg.torch_device.type == "cuda":
        fast = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = fast
        torch.backends.cudnn.allow_tf32 = fast
        torch.backends.cudnn.benchmark = fast
        torch.backends.cudnn.deterministic = deterministic


def memory_format(cfg: Config, encoder: nn.Module | str) -> torch.memory_format:
    """The layout of ``encoder``'s images: channels_last where it pays, else the default layout.

    ``channels_last="auto"``: on CUDA (tensor cores); on a CPU that computes in bf16, for every encoder
    (oneDNN's bf16 convolutions; ``benchmarks/cpu_layout.py`` on 2 cores of a bf16 EPYC: 1.17-1.54x faster
    training, N1 1.43x, N2 1.24x, ResNet-18 1.19x); on an fp32 CPU only for the encoders whose class says
    ``channels_last_on_cpu`` (N1; N2 0.92-1.00x there, and ResNet-18 3-5x slower on the fp32-only CPU of
    earlier sessions). ``encoder`` is a module (a wrapper, e.g. a classifier around N1, counts) or a name.
    """
    choice = cfg.hardware.channels_last
    if choice != "auto":
        on = choice in (True, "true", "on")
    elif cfg.torch_device.type == "cuda" or cfg.amp_dtype == torch.bfloat16:
        on = True
    elif isinstance(encoder, str):
        on = getattr(ENCODERS[encoder], "channels_last_on_cpu", False)
    else:
        on = any(getattr(m, "channels_last_on_cpu", False) for m in encoder.modules())
    return torch.channels_last if on else torch.contiguous_format


def to_device(module: nn.Module, cfg: Config) -> nn.Module:
    """``module`` on the config's device, in channels_last when :func:`memory_format` says so; the device's
    math settings (:func:`configure_backends`) set for the run."""
    configure_backends(cfg)
    module = module.to(cfg.torch_device)
    if memory_format(cfg, module) == torch.channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def random_encoder(cfg: Config, encoder_name: str) -> nn.Module:
    """The untrained encoder (same seed as training): the random-init baseline."""
    torch.manual_seed(cfg.seed)
    return to_device(build_encoder(encoder_name), cfg).eval()


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent for each k (k larger than the class count counts all as correct)."""
    out = {}
    for k in ks:
        kk = min(k, logits.shape[1])
        hits = (logits.topk(kk, dim=1).indices == targets[:, None]).any(dim=1)
        out[f"top{k}"] = 100.0 * hits.float().mean().item()
    return out


@torch.no_grad()
def embed(encoder: nn.Module, x_uint8: torch.Tensor, cfg: Config, batch_size: int = 1024) -> torch.Tensor:
    """Embeddings of uint8 images (eval mode, no augmentation), float32 on the device."""
    was_training = encoder.training
    encoder.eval()
    memory = memory_format(cfg, encoder)
    out = []
    for i in range(0, len(x_uint8), batch_size):
        x = prepare(x_uint8[i : i + batch_size].to(cfg.torch_device), cfg.data.image_size)
        with autocast(cfg):
            out.append(encoder(x.contiguous(memory_format=memory)).float())
    encoder.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def predict(model: nn.Module, x_uint8: torch.Tensor, cfg: Config, batch_size: int = 1024) -> torch.Tensor:
    """Logits of a classifier on uint8 images (eval mode)."""
    return embed(model, x_uint8, cfg, batch_size)


@contextmanager
def averaging_batchnorm(net: nn.Module):
    """Inside the block, ``net``'s BatchNorm layers start empty and keep the plain average of the batch statistics
    of every forward pass (training mode, momentum None); on leaving, their momentum is back and ``net`` is in
    evaluation mode. How :func:`recalibrate_batchnorm` and :func:`course_lib.diagnostics.untrained_encoder` fill
    running statistics; the passes (and their precision) are the caller's."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the passes
    net.train()
    try:
        yield net
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.eval()


#: How many training images :func:`recalibrate_batchnorm` passes (a seeded sample when there are more): the
#: statistics of 10,000 images are within a fraction of a percent of those of all 50,000 of CIFAR-10's.
BN_IMAGES = 10_000


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x_uint8: torch.Tensor, cfg: Config, images: int | None = BN_IMAGES,
                          batch_size: int | None = None, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are recomputed over clean images ("precise BN").

    Training leaves each BatchNorm layer a running mean and variance: an exponential average (momentum 0.1,
    about the last ten batches) of batch statistics of *augmented* crops, taken while the weights were still
    moving. Evaluation mode normalizes with them, and after a short run they lag behind the final weights: on the
    ``test`` preset's ~20 steps the supervised N2 tested at chance with them (``benchmarks/bn_statistics.py``).

    This passes ``images`` of ``x_uint8`` (all of them when fewer or ``None``; otherwise a seeded sample), whole
    and unaugmented, through the copy in training mode in batches of ``batch_size`` (the training batch,
    ``cfg.batch_size``, by default), under the run's autocast, without gradient, each layer keeping the plain
    average of its batch statistics (:func:`averaging_batchnorm`). No label is read: the statistics of a set's
    training images are free in every protocol. The copy comes back in evaluation mode.
    """
    net = copy.deepcopy(model)
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return net.eval()
    if images is not None and len(x_uint8) > images:
        pick = torch.randperm(len(x_uint8), generator=torch.Generator().manual_seed(seed))[:images]
        x_uint8 = x_uint8[pick.to(x_uint8.device)]
    memory, batch = memory_format(cfg, net), batch_size or cfg.batch_size
    # whole batches only (a last batch of one image would have no variance), or one batch of all the images
    end = len(x_uint8) - len(x_uint8) % batch if len(x_uint8) >= batch else len(x_uint8)
    with averaging_batchnorm(net):
        for i in range(0, end, batch):
            x = prepare(x_uint8[i : i + batch].to(cfg.torch_device), cfg.data.image_size)
            with autocast(cfg):
                net(x.contiguous(memory_format=memory))
    return net
