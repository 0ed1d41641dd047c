"""Evaluation protocols: linear probe on frozen embeddings and semi-supervised fine-tuning.

Introduced in notebook 04. Accuracies are percentages. With fewer than five classes
(the digits' sets have five) top-5 counts every prediction as correct: it is 100 %
by construction, and the report says so.
"""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .data import ImageDataset, balanced_subset, batches
from .diagnostics import effective_rank
from .runtime import embed, predict, topk_accuracy
from .train import Classifier, data_fingerprint, train_classifier, weights_fingerprint

__all__ = ["embed", "predict", "topk_accuracy", "linear_probe", "finetune", "evaluate_classifier"]


def linear_probe(
    encoder: nn.Module,
    data: ImageDataset,
    cfg: Config,
    epochs: int | None = None,
    lr: float | None = None,
    with_rank: bool = False,
) -> dict[str, float]:
    """Train a linear classifier on frozen embeddings of ``data``'s train split; test on its test split.

    ``with_rank`` adds the ``effective_rank`` of the training embeddings (before standardizing),
    from the embeddings the probe computes anyway.

    The embeddings are computed once. They are standardized with the training
    split's per-dimension mean and std (a fixed affine map, so the classifier is
    still linear in the embedding) so that one SGD learning rate suits every
    encoder. SGD with momentum 0.9 and cosine decay, cross-entropy.
    """
    t0 = time.perf_counter()
    epochs = epochs or cfg.probe_epochs
    f_train, f_test = embed(encoder, data.x_train, cfg), embed(encoder, data.x_test, cfg)
    rank = {"effective_rank": effective_rank(f_train)} if with_rank else {}
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    y_train, y_test = data.y_train.to(f_train.device), data.y_test.to(f_train.device)
    g = torch.Generator().manual_seed(cfg.seed)
    head = nn.Linear(f_train.shape[1], data.num_classes).to(f_train.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        head.reset_parameters()
    opt = torch.optim.SGD(head.parameters(), lr=lr or cfg.probe_lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(epochs):
        for idx in batches(len(y_train), cfg.batch_size, g, f_train.device, drop_last=False):
            loss = F.cross_entropy(head(f_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        acc = topk_accuracy(head(f_test), y_test)
    return {**acc, **rank, "epochs": epochs, "seconds": time.perf_counter() - t0}


def finetune(
    encoder: nn.Module,
    data: ImageDataset,
    cfg: Config,
    fraction: float,
    init: str,
    progress: bool = True,
) -> dict[str, float]:
    """Semi-supervised protocol: fine-tune a copy of ``encoder`` + a linear head on ``fraction`` of the labels.

    The labelled subset is class-balanced and seeded (:func:`balanced_subset`);
    the whole network trains (SGD + cross-entropy, crop + flip); the test split
    is the full one. ``init`` names where the encoder came from; the run is keyed by it
    and by a hash of the encoder's weights.
    """
    subset = balanced_subset(data.y_train, fraction, cfg.seed).to(data.y_train.device)
    model = Classifier(copy.deepcopy(encoder), data.num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model.head.reset_parameters()
    settings = {
        "method": "finetune",
        "init": init,
        "init_weights": weights_fingerprint(encoder),  # a retrained encoder is never matched to a stale run
        "fraction": fraction,
        "data": data_fingerprint(data),
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "precision": str(cfg.amp_dtype),
    }
    run = train_classifier(
        cfg, f"finetune-{init}-{fraction:g}", model, data.x_train[subset], data.y_train[subset],
        cfg.finetune_epochs, cfg.finetune_lr, settings, progress,
    )
    acc = topk_accuracy(predict(model, data.x_test, cfg), data.y_test.to(cfg.torch_device))
    return {**acc, "epochs": run.epochs, "seconds": run.seconds, "labels": len(subset)}


def evaluate_classifier(model: nn.Module, data: ImageDataset, cfg: Config) -> dict[str, float]:
    """Top-1/top-5 of a trained classifier on ``data``'s test split."""
    return topk_accuracy(predict(model, data.x_test, cfg), data.y_test.to(cfg.torch_device))
