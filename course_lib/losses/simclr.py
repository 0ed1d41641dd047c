"""SimCLR's NT-Xent loss (Chen, Kornblith, Norouzi, Hinton, ICML 2020).

https://arxiv.org/abs/2002.05709 . The two views' embeddings of ``N`` images give ``2N``
vectors ``z_1 .. z_2N``; ``z_k`` and ``z_{k+N}`` are views of the same image. With
``sim(u, v) = u^T v / (|u| |v|)`` and temperature ``tau`` (the paper's Eq. 1)::

    l(i, j) = -log  exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau)
    loss    = 1/(2N) sum_{k=1..N} [ l(k, k+N) + l(k+N, k) ]

so each of the 2N anchors has one positive (its other view) and 2N - 2 negatives.
``tau = 0.5`` is the paper's CIFAR-10 setting (Appendix B.9) and lightly's default;
the paper uses 0.1 for ImageNet with batches of thousands. All embeddings identical
(collapse) give ``log(2N - 1)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .precision import widen


def _check_pair(z_a: torch.Tensor, z_b: torch.Tensor) -> None:
    if z_a.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (batch, dim), got shape {tuple(z_a.shape)}")
    if z_a.shape[0] < 2:
        raise ValueError("NT-Xent needs a batch of at least 2 samples: the other images are the negatives")
    if z_a.shape != z_b.shape:
        raise ValueError(f"the two views' embeddings differ in shape: {tuple(z_a.shape)} vs {tuple(z_b.shape)}")


def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.5) -> dict[str, torch.Tensor]:
    """NT-Xent over the ``2N`` anchors, with similarity statistics for logging.

    Returns ``{"loss", "positive_similarity", "negative_similarity"}``: the mean cosine
    similarity of the ``2N`` positive pairs and of the ``2N(2N-2)`` negative pairs.
    Computed in at least float32 with autocast disabled.
    """
    _check_pair(z_a, z_b)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = z_a.shape[0]
    with torch.autocast(device_type=z_a.device.type, enabled=False):
        z = F.normalize(widen(torch.cat([z_a, z_b])), dim=1)
        sim = z @ z.T  # (2N, 2N) cosine similarities
        self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)  # k <-> k+N
        logits = (sim / temperature).masked_fill(self_mask, float("-inf"))  # k != i in the denominator
        loss = F.cross_entropy(logits, positive)
        pos_sim = sim[torch.arange(2 * n, device=z.device), positive]
        negative_mask = ~self_mask
        negative_mask[torch.arange(2 * n, device=z.device), positive] = False
    return {
        "loss": loss,
        "positive_similarity": pos_sim.mean().detach(),
        "negative_similarity": sim[negative_mask].mean().detach(),
    }


class NTXentLoss(nn.Module):
    """:func:`nt_xent_loss` as a module; ``forward`` returns the dict of loss and statistics.

    Example:
        >>> z = torch.ones(4, 3)  # collapse: loss = log(2N - 1) = log 7
        >>> round(NTXentLoss()(z, z)["loss"].item(), 4)
        1.9459
    """

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        return nt_xent_loss(z_a, z_b, self.temperature)
