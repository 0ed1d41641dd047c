"""Barlow Twins: redundancy reduction (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021).

https://arxiv.org/abs/2103.03230 . For embeddings ``Z^A, Z^B`` of two views (``N`` samples,
``D`` dimensions), each dimension standardized over the batch (the paper's BatchNorm
without affine parameters: biased variance, ``eps = 1e-5`` as in ``nn.BatchNorm1d``)::

    C_ij = sum_b z^A_{b,i} z^B_{b,j} / N                    (cross-correlation matrix, D x D)
    loss = sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2
         = on_diagonal (invariance) + lambda * off_diagonal (redundancy reduction)

``lambda = 0.0051`` is the paper's value for its 8192-d projector. The off-diagonal sum has
``D^2 - D`` terms against ``D`` on the diagonal, so a small projector wants a larger lambda:
``lambda ~ 1/D`` (Tsai et al. 2021, arXiv 2104.13712) is a common choice, e.g. 1/128 ~ 0.008.
lightly's ``BarlowTwinsLoss`` computes the same formula with a default lambda of 0.005.
"""
from __future__ import annotations

import torch
from torch import nn

from .precision import widen


def _check_pair(z_a: torch.Tensor, z_b: torch.Tensor | None = None) -> None:
    if z_a.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (batch, dim), got shape {tuple(z_a.shape)}")
    if z_a.shape[0] < 2:
        raise ValueError("Barlow Twins needs a batch of at least 2 samples to standardize each dimension")
    if z_b is not None and z_a.shape != z_b.shape:
        raise ValueError(f"the two views' embeddings differ in shape: {tuple(z_a.shape)} vs {tuple(z_b.shape)}")


def standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each column to mean 0 and std 1 over the batch: ``(z - mean) / sqrt(Var_biased + eps)``.

    The same as ``F.batch_norm`` in training mode without affine parameters. A constant
    column (collapse) becomes all zeros rather than NaN thanks to ``eps``.
    """
    _check_pair(z)
    zc = z - z.mean(dim=0)
    return zc / torch.sqrt(zc.pow(2).mean(dim=0) + eps)


def cross_correlation(z_a: torch.Tensor, z_b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """C = standardize(Z^A)^T standardize(Z^B) / N, the ``D x D`` cross-correlation matrix."""
    _check_pair(z_a, z_b)
    return standardize(z_a, eps).T @ standardize(z_b, eps) / z_a.shape[0]


def on_diagonal(c: torch.Tensor) -> torch.Tensor:
    """Invariance term ``sum_i (1 - C_ii)^2``: 0 when each dimension agrees across the views."""
    return (1 - c.diagonal()).pow(2).sum()


def off_diagonal(c: torch.Tensor) -> torch.Tensor:
    """Redundancy-reduction term ``sum_{i != j} C_ij^2`` (unweighted by lambda)."""
    return c.pow(2).sum() - c.diagonal().pow(2).sum()


def barlow_twins_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    lambda_param: float = 0.0051,
    eps: float = 1e-5,
) -> dict[str, torch.Tensor]:
    """The Barlow Twins loss and its two (unweighted) terms, for logging.

    Returns ``{"loss", "on_diagonal", "off_diagonal"}`` with
    ``loss = on_diagonal + lambda_param * off_diagonal``. Computed in at least float32 with
    autocast disabled, whatever the dtype of the embeddings. Collapsed (constant)
    embeddings standardize to zeros, so ``C = 0`` and the loss is ``D``.
    """
    _check_pair(z_a, z_b)
    with torch.autocast(device_type=z_a.device.type, enabled=False):
        c = cross_correlation(widen(z_a), widen(z_b), eps)
        on, off = on_diagonal(c), off_diagonal(c)
        loss = on + lambda_param * off
    return {"loss": loss, "on_diagonal": on.detach(), "off_diagonal": off.detach()}


class BarlowTwinsLoss(nn.Module):
    """:func:`barlow_twins_loss` as a module; ``forward`` returns the dict of loss and terms.

    Example:
        >>> z = torch.zeros(8, 4)  # collapsed: C = 0, so the loss is D = 4
        >>> BarlowTwinsLoss()(z, z)["loss"].item()
        4.0
    """

    def __init__(self, lambda_param: float = 0.0051, eps: float = 1e-5):
        super().__init__()
        self.kwargs = dict(lambda_param=lambda_param, eps=eps)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        return barlow_twins_loss(z_a, z_b, **self.kwargs)
