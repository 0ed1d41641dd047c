"""VICReg: Variance-Invariance-Covariance Regularization (Bardes, Ponce, LeCun, ICLR 2022).

https://arxiv.org/abs/2105.04906 . Introduced in notebook 00 (survey) and trained in 02.

For embeddings ``Z, Z'`` of two views (``n`` samples, ``d`` dimensions)::

    loss = lambda * s(Z, Z') + mu * [v(Z) + v(Z')] + nu * [c(Z) + c(Z')]
    s(Z, Z') = 1/n sum_i ||z_i - z'_i||^2 / d         (invariance; F.mse_loss)
    v(Z)     = 1/d sum_j max(0, gamma - sqrt(Var(z^j) + eps))
    c(Z)     = 1/d sum_{i != j} C(Z)_ij^2,  C(Z) = covariance matrix of Z

with lambda = mu = 25, nu = 1, gamma = 1 as in the paper and the coursework
(its Listing 2: ``var = variance(x) + variance(y)``). The official code averages the
two branches' variance terms (``/ 2``), so its variance term is half the paper's
(VICReg issue #8); we follow the paper and the coursework: both branches summed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .precision import widen


def _check_pair(z_a: torch.Tensor, z_b: torch.Tensor | None = None) -> None:
    if z_a.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (batch, dim), got shape {tuple(z_a.shape)}")
    if z_a.shape[0] < 2:
        raise ValueError("VICReg needs a batch of at least 2 samples to estimate variances")
    if z_b is not None and z_a.shape != z_b.shape:
        raise ValueError(f"the two views' embeddings differ in shape: {tuple(z_a.shape)} vs {tuple(z_b.shape)}")


def variance(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """v(Z): mean hinge on the per-dimension std, ``mean_j relu(gamma - sqrt(Var z^j + eps))``.

    ``eps`` keeps the gradient finite at zero variance; with ``eps=0`` collapsed
    (constant) embeddings give exactly ``gamma``.
    """
    _check_pair(z)
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def invariance(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """s(Z, Z'): mean squared error between the two views' embeddings."""
    _check_pair(z_a, z_b)
    return F.mse_loss(z_a, z_b)


def covariance(z: torch.Tensor) -> torch.Tensor:
    """c(Z): sum of squared off-diagonal covariances, divided by the dimension ``d``."""
    _check_pair(z)
    n, d = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.T @ zc) / (n - 1)
    off_diagonal = cov.pow(2).sum() - cov.diagonal().pow(2).sum()
    return off_diagonal / d


def vicreg_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    lambda_param: float = 25.0,
    mu_param: float = 25.0,
    nu_param: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> dict[str, torch.Tensor]:
    """The weighted VICReg loss and its three (unweighted) terms, for logging.

    Returns ``{"loss", "invariance", "variance", "covariance"}``; ``variance`` and
    ``covariance`` are already summed over the two branches. Computed in at least float32,
    with autocast disabled, whatever the dtype of the embeddings.
    """
    _check_pair(z_a, z_b)
    with torch.autocast(device_type=z_a.device.type, enabled=False):  # matmuls in fp32, not bf16
        z_a, z_b = widen(z_a), widen(z_b)
        inv = invariance(z_a, z_b)
        var = variance(z_a, gamma, eps) + variance(z_b, gamma, eps)
        cov = covariance(z_a) + covariance(z_b)
    loss = lambda_param * inv + mu_param * var + nu_param * cov
    return {"loss": loss, "invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()}


class VICRegLoss(nn.Module):
    """:func:`vicreg_loss` as a module; ``forward`` returns the dict of loss and terms.

    Example:
        >>> z = torch.randn(8, 4)
        >>> VICRegLoss()(z, z)["invariance"].item()
        0.0
    """

    def __init__(self, lambda_param=25.0, mu_param=25.0, nu_param=1.0, gamma=1.0, eps=1e-4):
        super().__init__()
        self.kwargs = dict(lambda_param=lambda_param, mu_param=mu_param, nu_param=nu_param, gamma=gamma, eps=eps)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        return vicreg_loss(z_a, z_b, **self.kwargs)
