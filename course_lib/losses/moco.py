"""MoCo v2: momentum contrast with a queue of negatives (He et al. CVPR 2020; Chen et al. 2020).

https://arxiv.org/abs/1911.05722 (MoCo) and https://arxiv.org/abs/2003.04297 (v2: MLP head,
stronger augmentation, ``tau = 0.2``). A query ``q = f_q(x^a)`` from the online encoder, its
key ``k_+ = f_k(x^b)`` from the momentum encoder, and a queue of ``K`` earlier keys
``k_1 .. k_K`` as negatives, all L2-normalized (the paper's Eq. 1, InfoNCE)::

    L_q = -log  exp(q.k_+ / tau) / [ exp(q.k_+ / tau) + sum_{i=1..K} exp(q.k_i / tau) ]

averaged over the batch. The momentum encoder follows the online one by an exponential
moving average ``theta_k <- m theta_k + (1 - m) theta_q`` (Eq. 2, ``m = 0.999``), and after
each step the batch's keys replace the oldest ones in the queue (the paper's K = 65536;
a few thousand suits CIFAR-sized runs). Neither the keys nor the queue receive gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .precision import widen


def moco_loss(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> dict[str, torch.Tensor]:
    """InfoNCE of each query against its key (positive) and the ``K`` queued keys (negatives).

    ``q`` and ``k`` are ``(N, D)``, row ``i`` of each from the same image; ``queue`` is
    ``(K, D)`` (e.g. ``MoCoQueue.keys``) and is read before this batch's keys are enqueued.
    ``q`` and ``k`` are L2-normalized here; the queue is used as stored (normalized keys).
    ``k`` and ``queue`` are detached, and the queue is cloned so that enqueueing in place
    before ``backward()`` is safe. Returns ``{"loss", "positive_similarity",
    "negative_similarity"}`` (mean cosines), computed in at least float32 with autocast disabled.
    """
    if q.ndim != 2 or queue.ndim != 2:
        raise ValueError(f"q and queue must be 2-D, got shapes {tuple(q.shape)} and {tuple(queue.shape)}")
    if q.shape != k.shape:
        raise ValueError(f"queries and keys differ in shape: {tuple(q.shape)} vs {tuple(k.shape)}")
    if queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue dim {queue.shape[1]} differs from the embedding dim {q.shape[1]}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    with torch.autocast(device_type=q.device.type, enabled=False):
        q = F.normalize(widen(q), dim=1)
        k = F.normalize(widen(k.detach()), dim=1)
        negatives = widen(queue.detach().clone())
        l_pos = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
        l_neg = q @ negatives.T  # (N, K)
        logits = torch.cat([l_pos, l_neg], dim=1) / temperature
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # the positive is column 0
        loss = F.cross_entropy(logits, target)
    return {
        "loss": loss,
        "positive_similarity": l_pos.mean().detach(),
        "negative_similarity": l_neg.mean().detach() if l_neg.numel() else l_pos.new_zeros(()),
    }


class MoCoLoss(nn.Module):
    """:func:`moco_loss` as a module: ``forward(q, k, queue)`` returns the dict."""

    def __init__(self, temperature: float = 0.2):
        super().__init__()
        self.temperature = temperature

    def forward(self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor) -> dict[str, torch.Tensor]:
        return moco_loss(q, k, queue, self.temperature)


class MoCoQueue(nn.Module):
    """A fixed-size FIFO of ``size`` normalized keys: a ring buffer in a registered buffer.

    Starts, as in the official code, with random unit vectors, which serve as negatives
    until ``size`` real keys have been enqueued. Being buffers, ``keys`` and ``ptr`` move
    with ``.to(device)`` and are saved in ``state_dict``; they never require grad.

    Example:
        >>> queue = MoCoQueue(size=4, dim=2)
        >>> queue.enqueue(torch.tensor([[3.0, 4.0]]))
        >>> [round(x, 4) for x in queue.keys[0].tolist()], int(queue.ptr)
        ([0.6, 0.8], 1)
    """

    keys: torch.Tensor
    ptr: torch.Tensor

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be positive, got size={size}, dim={dim}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # next slot to overwrite

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, k: torch.Tensor) -> None:
        """Write the batch's keys (normalized, detached) over the oldest entries, wrapping around.

        A batch larger than the queue keeps only its last ``size`` keys.
        """
        if k.ndim != 2 or k.shape[1] != self.keys.shape[1]:
            raise ValueError(f"keys must be (batch, {self.keys.shape[1]}), got shape {tuple(k.shape)}")
        k = F.normalize(widen(k.detach()), dim=1)[-self.size :]
        slots = (self.ptr + torch.arange(k.shape[0], device=self.keys.device)) % self.size
        self.keys[slots] = k.to(self.keys.dtype)
        self.ptr.copy_((self.ptr + k.shape[0]) % self.size)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """EMA of the parameters, ``target <- m * target + (1 - m) * online``; buffers are copied.

    ``m = 0`` copies the online network, ``m = 1`` leaves the target unchanged. Buffers
    (BatchNorm running statistics) are copied, not averaged: they only matter in eval mode,
    and the online network's are the up-to-date ones.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1], got {m}")
    online_params, target_params = list(online.parameters()), list(target.parameters())
    online_buffers, target_buffers = list(online.buffers()), list(target.buffers())
    if len(online_params) != len(target_params) or len(online_buffers) != len(target_buffers):
        raise ValueError("online and target networks differ in structure; make the target with copy.deepcopy(online)")
    for p_online, p_target in zip(online_params, target_params):
        if p_online.shape != p_target.shape:
            raise ValueError(f"parameter shapes differ: {tuple(p_online.shape)} vs {tuple(p_target.shape)}")
        p_target.mul_(m).add_(p_online.detach(), alpha=1.0 - m)
    for b_online, b_target in zip(online_buffers, target_buffers):
        b_target.copy_(b_online)
