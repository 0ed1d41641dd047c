"""Collapse diagnostics of an encoder's embeddings: per-dimension std, effective rank, kNN accuracy.

Defined in notebook 00 (on toy batches), watched live in notebook 02 (the collapse demonstration) and logged
for every method in notebook 05. :func:`measure` computes all three from one embedding of a labelled
dataset; :func:`monitor` wraps it as the per-epoch callback that
:func:`course_lib.train.fit` stores in a run's ``epoch_metrics``.

- **std** (SimSiam's collapse monitor, Chen & He 2021): the per-dimension standard
  deviation of the L2-normalized embeddings, times ``sqrt(D)`` so that embeddings
  spread like an isotropic Gaussian give about 1 and collapsed ones give 0. Normalizing
  makes it comparable across methods whose embeddings have different scales.
- **effective rank** (Roy & Vetterli 2007): ``exp(H(p))`` with ``p_k = sigma_k / sum_j sigma_j``
  the normalized singular values of the embedding matrix: 1 when all embeddings lie on
  one line (or are all the same vector), ``D`` when they fill every dimension equally.
  The matrix is not centred (as in RankMe, Garrido et al. 2023), so embeddings collapsed
  to one constant vector have rank 1.
- **kNN accuracy** (Wu et al. 2018): each test embedding's ``k`` nearest training
  embeddings by cosine similarity vote for their labels, each vote weighted by
  ``exp(similarity / 0.07)`` (``temperature=None``: one vote each, a majority vote).
  It needs no training, so it is cheap to run every epoch.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .augment import prepare
from .config import Config
from .data import ImageDataset
from .runtime import averaging_batchnorm, embed, memory_format, random_encoder, topk_accuracy

#: The kNN vote's temperature (Wu et al. 2018; DINO and solo-learn use the same).
KNN_TEMPERATURE = 0.07


def per_dim_std(z: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Standard deviation over the batch of each of the ``D`` dimensions of ``z`` (``N x D``).

    With ``normalize`` the rows are L2-normalized first and the result is multiplied by
    ``sqrt(D)`` (about 1 for isotropic Gaussian embeddings, 0 for collapsed ones).
    """
    z = z.float()
    if normalize:
        z = F.normalize(z, dim=1) * math.sqrt(z.shape[1])
    return z.std(dim=0)


def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """Roy & Vetterli's effective rank of ``z`` (``N x D``): exp of the entropy of its normalized singular values.

    Between 1 (rank one) and ``min(N, D)`` (all singular values equal). Not centred.
    Singular values below the numerical noise of ``z``'s dtype (``torch.linalg.matrix_rank``'s
    tolerance, ``max(N, D) * eps * sigma_max``) count as zero.

    Example:
        >>> round(effective_rank(torch.eye(4)), 4)
        4.0
    """
    s = torch.linalg.svdvals(z.double())
    s = s[s > s.max() * max(z.shape) * torch.finfo(z.dtype).eps]
    p = s / s.sum().clamp_min(eps)
    entropy = -(p * torch.log(p.clamp_min(eps))).sum()
    return float(torch.exp(entropy))


def knn_scores(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float | None = KNN_TEMPERATURE,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores (``N_test x C``) of a kNN classifier with cosine similarity.

    The ``k`` most similar training embeddings of each test embedding vote for their
    label, with weight ``exp(sim / temperature)``, or 1 when ``temperature`` is None.
    """
    bank = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(bank.device)
    k = min(k, len(bank))
    out = []
    for i in range(0, len(test_features), chunk):  # bounded memory on large test splits
        q = F.normalize(test_features[i : i + chunk].float().to(bank.device), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        weight = torch.ones_like(sim) if temperature is None else (sim / temperature).exp()
        scores = torch.zeros(len(q), num_classes, device=bank.device)
        out.append(scores.scatter_add_(1, labels[idx], weight))
    return torch.cat(out)


def knn_neighbours(train_labels: torch.Tensor, k: int) -> int:
    """The ``k`` a kNN vote uses with this memory bank: ``k``, but never more than the fewest images of a class in it.

    With few labels the bank is small: 1 % of Tiny ImageNet holds 5 images per class, and a vote of 20 neighbours
    would then have at least 15 of them from other classes, however good the features. Capped, every class can
    fill the vote on its own (5-NN there; 1-NN with one image per class).

    Example:
        >>> knn_neighbours(torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2]), 20)
        2
    """
    counts = torch.bincount(train_labels.flatten().long())
    return min(k, int(counts[counts > 0].min()))


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float | None = KNN_TEMPERATURE,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) of :func:`knn_scores` on the test embeddings."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    scores = knn_scores(train_features, train_labels, test_features, num_classes, k, temperature)
    return topk_accuracy(scores, test_labels.to(scores.device))


def measure(encoder: nn.Module, data: ImageDataset, cfg: Config) -> dict[str, float]:
    """The three diagnostics of ``encoder`` on ``data``: one embedding of each split, eval mode, no grad.

    Returns ``{"std", "effective_rank", "knn_top1"}``: the mean of :func:`per_dim_std` and the
    effective rank of the training split's embeddings, and the kNN top-1 (``k = cfg.knn_k``)
    of the test split against the training split.
    """
    f_train, f_test = embed(encoder, data.x_train, cfg), embed(encoder, data.x_test, cfg)
    knn = knn_accuracy(f_train, data.y_train, f_test, data.y_test, cfg.evaluation.knn_k)
    return {
        "std": float(per_dim_std(f_train).mean()),
        "effective_rank": effective_rank(f_train),
        "knn_top1": knn["top1"],
    }


def knn_evaluate(encoder: nn.Module, data: ImageDataset, cfg: Config) -> dict[str, float]:
    """The kNN protocol as a results row wants it: top-1/top-5 (%) on the test split, ``k = cfg.knn_k``.

    ``epochs`` is 0 (nothing trains). The embeddings of the training split are at hand,
    so their ``effective_rank`` comes along.
    """
    t0 = time.perf_counter()
    f_train, f_test = embed(encoder, data.x_train, cfg), embed(encoder, data.x_test, cfg)
    acc = knn_accuracy(f_train, data.y_train, f_test, data.y_test, cfg.evaluation.knn_k)
    return {**acc, "epochs": 0, "seconds": time.perf_counter() - t0, "k": cfg.evaluation.knn_k,
            "effective_rank": effective_rank(f_train)}


@torch.no_grad()
def untrained_encoder(cfg: Config, encoder_name: str, data: ImageDataset, batch_size: int = 1024) -> nn.Module:
    """The encoder as training starts it (:func:`course_lib.runtime.random_encoder`), with BatchNorm statistics of ``data``.

    In evaluation mode a fresh BatchNorm layer uses its initial statistics (mean 0,
    variance 1), which on real images leaves every embedding pointing the same way (an
    effective rank near 1) and would make the untrained network look collapsed. One pass
    over the training images in training mode (cumulative averages, no gradient, no
    augmentation) gives it the statistics that its first epoch of training would.
    """
    encoder = random_encoder(cfg, encoder_name)
    memory = memory_format(cfg, encoder)
    with averaging_batchnorm(encoder):  # in fp32, every image (the last batch may be short)
        for i in range(0, len(data.x_train), batch_size):
            encoder(prepare(data.x_train[i : i + batch_size].to(cfg.torch_device), cfg.data.image_size)
                    .contiguous(memory_format=memory))
    return encoder


def monitor(encoder: nn.Module, data: ImageDataset, cfg: Config) -> Callable[[int], dict[str, float]] | None:
    """The per-epoch callback of :func:`course_lib.train.fit`: :func:`measure` every ``cfg.monitor_every`` epochs.

    ``None`` when ``cfg.monitor_every`` is 0. The callback gets the 1-based epoch just
    finished and returns ``{}`` on epochs it skips (the last epoch is always measured).
    """
    every = cfg.evaluation.monitor_every
    if every <= 0:
        return None

    def on_epoch_end(epoch: int) -> dict[str, float]:
        if epoch % every and epoch != cfg.pretrain.epochs:
            return {}
        return measure(encoder, data, cfg)

    return on_epoch_end
