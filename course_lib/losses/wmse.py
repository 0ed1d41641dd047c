"""W-MSE: whitening before the MSE (Ermolov, Siarohin, Sangineto, Sebe, ICML 2021).

https://arxiv.org/abs/2007.06346 . Each of ``N`` images gives ``d >= 2`` views with
embeddings ``v`` (``D`` dimensions). The embeddings are whitened, ``z = W_V (v - mu_V)`` with
``W_V = L^{-1}`` and ``L L^T = Cov(V)`` (Cholesky), so that the whitened batch has identity
covariance, then L2-normalized; the loss is the mean squared distance of positive pairs::

    loss = 2 / (N d (d - 1)) sum_{i=1..N} sum_{a < b} || z_i^a / |z_i^a| - z_i^b / |z_i^b| ||^2
    with || u/|u| - w/|w| ||^2 = 2 - 2 cos(u, w)

Whitening rather than negatives prevents collapse: a whitened batch cannot shrink to a point.
Batch slicing: the batch is cut into sub-batches of (at least) ``w_size`` images and each gets
its own whitening matrix. The official code (htdt/self-supervised) and lightly whiten each
view's sub-batch separately, matching the constraint Cov(z^a) = I for every view ``a``; this is
the default. ``joint_views=True`` whitens the concatenation of all views of a sub-batch with one
matrix, the batch-level whitening ``W_V`` over all ``N d`` embeddings of the paper's Eq. 5.

A full-rank covariance needs more rows than dimensions: ``w_size > D`` is required (the official
CIFAR runs use ``w_size = 2 D``: 128 for D = 64; lightly requires ``w_size >= 2 D``). Gradients flow
through the whitening matrix, as in the paper. ``eps`` adds ``eps * I`` to each covariance; it
is 0 by default, as in the official code, because whitening is scale-free and an absolute eps
is not. A covariance that is not positive definite (collapsed or rank-deficient embeddings)
raises a ValueError naming the fix rather than returning NaN. Differences from lightly: the
sub-batches are consecutive rows (the data loader already shuffles) rather than a random
permutation, ``w_iter = 1``, and a batch that ``w_size`` does not divide is still accepted
(``N // w_size`` sub-batches of nearly equal size).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .precision import widen


def _check_views(views: Sequence[torch.Tensor]) -> None:
    if len(views) < 2:
        raise ValueError(f"W-MSE needs at least 2 views of each image, got {len(views)}")
    for v in views:
        if v.ndim != 2:
            raise ValueError(f"embeddings must be 2-D (batch, dim), got shape {tuple(v.shape)}")
        if v.shape != views[0].shape:
            raise ValueError(f"the views' embeddings differ in shape: {tuple(views[0].shape)} vs {tuple(v.shape)}")
    if views[0].shape[0] < 2:
        raise ValueError("W-MSE needs a batch of at least 2 samples to estimate a covariance")


def whiten(v: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cholesky whitening of the rows of ``v`` (``n x D``): ``(v - mean) L^{-T}``, ``L L^T = Cov + eps I``.

    The covariance is unbiased (``/(n - 1)``) as in the official code. Returns the whitened
    rows and the ``info`` of ``torch.linalg.cholesky_ex`` (non-zero: not positive definite,
    the rows are then meaningless), so that callers can check many sub-batches at once.
    """
    n, dim = v.shape
    vc = v - v.mean(dim=0)
    cov = vc.T @ vc / (n - 1)
    if eps:
        cov = cov + eps * torch.eye(dim, dtype=cov.dtype, device=cov.device)
    chol, info = torch.linalg.cholesky_ex(cov)
    # z^T = L^{-1} vc^T, by a triangular solve rather than an explicit inverse
    return torch.linalg.solve_triangular(chol, vc.T, upper=False).T, info


def wmse_loss(
    views: Sequence[torch.Tensor],
    w_size: int = 128,
    eps: float = 0.0,
    joint_views: bool = False,
) -> dict[str, torch.Tensor]:
    """The W-MSE loss of ``d`` views (a list of ``(N, D)`` tensors, row ``i`` = image ``i``).

    Returns ``{"loss"}``, computed in at least float32 with autocast disabled. The batch is split into
    ``max(1, N // w_size)`` consecutive sub-batches, each whitened on its own (per view, or
    all views together with ``joint_views=True``). Raises ValueError when a sub-batch has no
    more rows than ``D`` or its covariance is not positive definite.
    """
    views = list(views)
    _check_views(views)
    n, dim = views[0].shape
    if w_size <= dim:
        raise ValueError(
            f"w_size={w_size} must exceed the embedding dim {dim} for a full-rank covariance; "
            f"use w_size >= 2 * dim (official CIFAR runs: w_size=128 for dim=64) or a smaller projector output"
        )
    if n <= dim:
        raise ValueError(
            f"a batch of {n} samples cannot whiten {dim}-dim embeddings (the covariance is singular); "
            f"use a batch of at least w_size={w_size} samples"
        )
    with torch.autocast(device_type=views[0].device.type, enabled=False):
        views = [widen(v) for v in views]
        rows = torch.arange(n, device=views[0].device).tensor_split(max(1, n // w_size))
        whitened = [torch.empty_like(v) for v in views]
        infos = []
        for idx in rows:
            if joint_views:
                z, info = whiten(torch.cat([v[idx] for v in views]), eps)
                infos.append(info)
                for out, z_view in zip(whitened, z.split(len(idx))):
                    out[idx] = z_view
            else:
                for out, v in zip(whitened, views):
                    out[idx], info = whiten(v[idx], eps)
                    infos.append(info)
        if torch.stack(infos).any():  # one host sync for all sub-batches
            raise ValueError(
                "W-MSE: a sub-batch covariance is not positive definite (collapsed or rank-deficient "
                f"embeddings, dim={dim}); use a larger w_size (>= 2 * dim) or pass eps > 0 (e.g. 1e-4) "
                "to add eps * I"
            )
        z = [F.normalize(w, dim=1) for w in whitened]
        pairs = [(a, b) for a in range(len(z)) for b in range(a + 1, len(z))]
        loss = sum((z[a] - z[b]).pow(2).sum(dim=1).mean() for a, b in pairs) / len(pairs)
    return {"loss": loss}


class WMSELoss(nn.Module):
    """:func:`wmse_loss` as a module: ``forward(*views)`` or ``forward(views)`` returns ``{"loss"}``.

    Example:
        >>> z = torch.randn(32, 4)
        >>> WMSELoss(w_size=16)(z, z)["loss"].item() < 1e-6  # identical views
        True
    """

    def __init__(self, w_size: int = 128, eps: float = 0.0, joint_views: bool = False):
        super().__init__()
        self.kwargs = dict(w_size=w_size, eps=eps, joint_views=joint_views)

    def forward(self, *views) -> dict[str, torch.Tensor]:
        if len(views) == 1 and isinstance(views[0], (list, tuple)):
            views = views[0]
        return wmse_loss(views, **self.kwargs)
