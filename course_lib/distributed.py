"""Pretraining on several processes: torchrun and DistributedDataParallel (DDP), in one place.

The README's "Several GPUs or nodes" section shows the launch; :mod:`course_lib.pretrain` is
the entry point and :func:`course_lib.train.pretrain` the loop, which calls what is here. In
one process (a notebook, ``make report``) every function below is a no-op: :func:`world`
is a single process, :func:`gather` returns its input, nothing is wrapped.

How N processes train the model that one process would train on their global batch:

- **Data.** Every process holds the whole training set and draws the same shuffled order
  (the same seed); :meth:`World.shard` gives process ``r`` the ``r``-th equal slice of each
  global batch of ``cfg.batch_size`` images. Each process draws its own augmentations from
  a generator seeded per rank, and the checkpoint keeps every rank's generator state.
- **Losses on the global batch.** VICReg's variance and covariance, Barlow Twins'
  cross-correlation, W-MSE's whitening and SimCLR's negatives are statistics of the
  whole batch. Each method passes its embeddings through :func:`gather` before its loss:
  every process then computes the same loss on all ``cfg.batch_size`` rows. The gradient
  flows back through the gather: its backward sums the gradients that every process's
  (identical) loss sends to this process's rows, so each process receives ``N`` times its
  rows' share, and DDP's average over the ``N`` processes leaves exactly the one-process
  gradient (the official VICReg code's ``FullGatherLayer`` works the same way).
  MoCo gathers its keys too, so its queue receives every process's keys.
- **BatchNorm.** Normally each process normalizes with its own rows' statistics.
  :class:`SyncBatchNorm` computes them over the global batch, in the projector
  (``cfg.sync_batchnorm="projector"``, the default), everywhere (``"all"``: the one-process
  result, at the cost of two small all-reduces per layer) or nowhere (``"none"``). It works on
  CPUs (gloo) as well as GPUs (NCCL), which ``torch.nn.SyncBatchNorm`` does not.
- **Checkpoints.** Rank 0 writes them (atomically, as one process does) and reads them on a
  restart, then sends them to every process, so nodes need not share a file system for
  ``runs/``. The run folder and the settings fingerprint are those of a one-process run: how
  many processes shared the batch is recorded in the checkpoint, not hashed, so a notebook
  loads a finished torchrun run as its own; a restart must use the same number of processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .config import Config, with_overrides
from .errors import CourseError
from .losses.precision import widen


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a job: ``rank`` of ``size`` (``local_rank`` on its node)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files, prints and evaluates."""
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch ``idx``: the ``rank``-th of ``size`` equal consecutive slices.

        Concatenated in rank order, the slices are the global batch, which is the order :func:`gather`
        restores. A batch that ``size`` does not divide loses its last rows (at most ``size - 1``).
        """
        if self.size == 1:
            return idx
        per = len(idx) // self.size
        if per == 0:
            raise CourseError(f"a batch of {len(idx)} images cannot be shared by {self.size} processes: "
                              f"use batch_size >= {self.size} and a training set of at least that many images")
        return idx[self.rank * per : (self.rank + 1) * per]

    # ---- agreement between processes (each one is a collective: every rank must call it)
    def broadcast(self, obj):
        """Rank 0's ``obj`` on every process (pickled; e.g. a checkpoint read by rank 0 alone)."""
        if self.size == 1:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj) -> list:
        """Every process's ``obj``, in rank order, on every process."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


SINGLE = World()


def world() -> World:
    """The current process's :class:`World`: a single process unless a process group has been started."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return SINGLE


def launched_world_size() -> int:
    """How many processes torchrun started for this job (``WORLD_SIZE``; 1 outside torchrun), known before the
    process group starts: what :mod:`course_lib.pretrain` checks the global batch against first."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def launched_by_torchrun() -> bool:
    """True in a process that torchrun started as one of several (``WORLD_SIZE`` > 1 in the environment)."""
    return launched_world_size() > 1


def start(cfg: Config) -> tuple[World, Config]:
    """Join the process group that torchrun describes in the environment; return the world and ``cfg`` on this rank's device.

    Outside torchrun (or with one process) nothing is started. On GPUs each process takes the GPU of its
    ``LOCAL_RANK`` and talks NCCL; on CPUs gloo. torchrun sets ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``,
    ``WORLD_SIZE`` and ``LOCAL_RANK``; see the README for one machine and for several nodes.
    """
    if not launched_by_torchrun():
        return SINGLE, cfg
    if dist.is_initialized():
        return world(), cfg
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.torch_device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise CourseError(f"process {local_rank} of this node has no GPU ({torch.cuda.device_count()} visible): "
                              "start at most one process per GPU (torchrun --nproc_per_node)")
        torch.cuda.set_device(local_rank)
        cfg = with_overrides(cfg, device=f"cuda:{local_rank}")
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    return world(), cfg


def stop() -> None:
    """Leave the process group (nothing when none was started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- collectives with gradients


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums every process's gradient for this process's rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every process's loss used these rows: add up what each one sends back
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


class _AllReduceWithGrad(torch.autograd.Function):
    """``all_reduce`` (sum) whose backward sums the gradients too (every process used the sum)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """Every process's rows of ``x`` (``n x ...``), concatenated in rank order (``N n x ...``).

    At least float32 (``losses.precision.widen``): a half type is widened.

    Differentiable: see the module's docstring for why the gradients come out as in one process.
    In a single process, ``x`` itself.
    """
    if not _active():
        return x
    return _GatherWithGrad.apply(widen(x))


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over the processes, differentiable (``x`` itself in a single process)."""
    if not _active():
        return x
    return _AllReduceWithGrad.apply(x)


# --------------------------------------------------------------------------- BatchNorm over the global batch


class SyncBatchNorm(_BatchNorm):
    """BatchNorm whose training-mode statistics are those of the global batch, on any device.

    Same parameters and buffers as ``nn.BatchNorm1d/2d`` (a checkpoint loads into either); in
    evaluation mode, or in a single process, it *is* plain BatchNorm. In training mode under
    torchrun, the per-channel mean and then the biased variance are summed over the processes
    (two differentiable all-reduces, two passes for accuracy), the rows are normalized with them
    and the running statistics take the unbiased variance of all ``N`` rows, as one process would.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (batch, channels, ...), got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _active()):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = widen(x)
        count = all_reduce_sum(torch.tensor([xf.numel() / xf.shape[1]], device=x.device))
        mean = all_reduce_sum(xf.sum(dims)) / count
        centred = xf - mean.view(shape)
        var = all_reduce_sum(centred.pow(2).sum(dims)) / count  # biased: what normalizes the batch
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = float(count)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * n / max(n - 1, 1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module, scope: str, backbones: tuple[str, ...] = ("encoder",)) -> nn.Module:
    """Replace ``module``'s BatchNorm layers by :class:`SyncBatchNorm` in ``scope``; the same parameter objects.

    ``scope``: ``"none"`` (nothing changes), ``"projector"`` (every BatchNorm outside the children named
    in ``backbones``: a method's projector, predictor or head) or ``"all"``. Call it before the optimizer
    is built, or after: the parameters are the same tensors either way.
    """
    if scope == "none":
        return module
    if scope not in ("projector", "all"):
        raise CourseError(f"unknown sync_batchnorm {scope!r}: use none, projector or all")
    skip = backbones if scope == "projector" else ()
    for name, child in list(module.named_children()):
        if name in skip:
            continue
        setattr(module, name, _converted(child))
    return module


def _converted(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in list(module.named_children()):
        setattr(module, name, _converted(child))
    return module


def wrap(model: nn.Module, cfg: Config) -> nn.Module:
    """``model`` in DistributedDataParallel on this process's device (``model`` itself in a single process).

    DDP averages the gradients over the processes after each backward pass and keeps every
    process's parameters equal (rank 0's at the start). The unwrapped model stays reachable
    as ``.module``; checkpoints store the unwrapped state, whose keys are a single process's.
    """
    if not _active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = cfg.torch_device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
