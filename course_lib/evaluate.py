"""Evaluation protocols: linear probe on frozen embeddings and semi-supervised fine-tuning.

Introduced in notebook 04. Accuracies are percentages. With fewer than five classes
(the digits' sets have five) top-5 counts every prediction as correct: it is 100 %
by construction, and the report says so.
"""
from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .data import ImageDataset, balanced_subset, batches
from .diagnostics import effective_rank, knn_accuracy, knn_neighbours
from .runs import data_fingerprint, weights_fingerprint
from .runtime import autocast, embed, memory_format, predict, recalibrate_batchnorm, topk_accuracy
from .train import Classifier, classifier_views, train_classifier

__all__ = ["embed", "predict", "topk_accuracy", "fit_linear_head", "linear_probe", "frozen_protocols",
           "labelled_subset", "probe_initialized", "lpft_head", "semi_supervised", "finetune", "evaluate_classifier",
           "recalibrate_batchnorm"]


def fit_linear_head(f_train: torch.Tensor, y_train: torch.Tensor, num_classes: int, cfg: Config,
                    epochs: int | None = None, lr: float | None = None,
                    batch_size: int | None = None) -> nn.Linear:
    """A linear classifier on frozen embeddings: the probe's few lines (notebook 04).

    The embeddings are standardized with their own per-dimension mean and std (a fixed affine map, so the
    classifier is still linear in the embedding) so that one SGD learning rate suits every encoder; the
    returned head folds that map back in and takes the raw embeddings. SGD with momentum 0.9, weight
    decay 1e-4, cosine decay over ``epochs`` (``cfg.probe_epochs``), cross-entropy, batch ``cfg.batch_size``
    (at most the number of examples).
    """
    epochs = epochs or cfg.evaluation.probe_epochs
    mean, std = f_train.mean(0), f_train.std(0).nan_to_num(0.0) + 1e-6
    z = (f_train - mean) / std
    y = y_train.to(z.device)
    g = torch.Generator().manual_seed(cfg.seed)
    head = nn.Linear(z.shape[1], num_classes).to(z.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        head.reset_parameters()
    opt = torch.optim.SGD(head.parameters(), lr=lr or cfg.evaluation.probe_lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for _ in range(epochs):
        for idx in batches(len(y), min(batch_size or cfg.batch_size, len(y)), g, z.device, drop_last=False):
            loss = F.cross_entropy(head(z[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():  # W (f - mean) / std + b  =  (W / std) f + (b - (W / std) mean)
        head.weight.div_(std)
        head.bias.sub_(head.weight @ mean)
    return head


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
    from the embeddings the probe computes anyway. The embeddings are computed once;
    the classifier is :func:`fit_linear_head`.
    """
    t0 = time.perf_counter()
    epochs = epochs or cfg.evaluation.probe_epochs
    f_train, f_test = embed(encoder, data.x_train, cfg), embed(encoder, data.x_test, cfg)
    rank = {"effective_rank": effective_rank(f_train)} if with_rank else {}
    head = fit_linear_head(f_train, data.y_train, data.num_classes, cfg, epochs, lr)
    with torch.no_grad():
        acc = topk_accuracy(head(f_test), data.y_test.to(f_test.device))
    return {**acc, **rank, "epochs": epochs, "seconds": time.perf_counter() - t0}


def frozen_protocols(encoder: nn.Module, data: ImageDataset, cfg: Config) -> dict[str, dict[str, float]]:
    """The linear probe (:func:`fit_linear_head`, ``cfg.probe_epochs``) and kNN (``k = cfg.knn_k``) of a frozen
    encoder on all of ``data``'s training labels, from one embedding of each split; the probe's result also
    carries the ``effective_rank`` of the training embeddings. Notebook 04's epochs study."""
    t0, protocol = time.perf_counter(), cfg.evaluation
    f_train, f_test = embed(encoder, data.x_train, cfg), embed(encoder, data.x_test, cfg)
    y_test = data.y_test.to(f_test.device)
    t_embed = time.perf_counter() - t0
    knn = knn_accuracy(f_train, data.y_train, f_test, y_test, protocol.knn_k)
    t1 = time.perf_counter()
    head = fit_linear_head(f_train, data.y_train, data.num_classes, cfg)
    with torch.no_grad():
        probe = topk_accuracy(head(f_test), y_test)
    return {"linear": {**probe, "effective_rank": effective_rank(f_train), "epochs": protocol.probe_epochs,
                       "seconds": t_embed + time.perf_counter() - t1},
            "knn": {**knn, "epochs": 0, "seconds": t_embed, "k": protocol.knn_k}}


def labelled_subset(data: ImageDataset, fraction: float, seed: int) -> torch.Tensor:
    """The labelled images of the semi-supervised protocol: ``fraction`` of each class of the *official*
    training split (class-balanced, seeded): CIFAR-10 1 % = 50 per class, Tiny ImageNet 1 % = 5 per class."""
    return balanced_subset(data.y_train, fraction, seed).to(data.y_train.device)


def finetune_plan(labels: int, cfg: Config) -> tuple[int, int, int]:
    """``(batch, epochs, steps)`` of fine-tuning on ``labels`` images: batches of ``cfg.batch_size`` but never more
    than the labelled images, and whole passes over them until ``cfg.finetune_steps`` steps are reached."""
    batch = min(cfg.batch_size, labels)
    per_epoch = max(1, labels // batch)
    epochs = math.ceil(cfg.evaluation.finetune_steps / per_epoch)
    return batch, epochs, epochs * per_epoch


@torch.no_grad()
def view_features(encoder: nn.Module, x: torch.Tensor, cfg: Config, batch: int, views: int) -> torch.Tensor:
    """Embeddings of ``views`` augmented copies of ``x`` (uint8) as fine-tuning's first step computes them: the
    crops of :func:`course_lib.train.classifier_views`, BatchNorm in training mode over batches of ``batch``
    (its batch statistics), no gradient. A copy of the encoder runs them, so its running statistics stay as
    they were. Returns ``views * len(x)`` rows: copy ``v`` of image ``i`` is row ``v * len(x) + i``."""
    net = copy.deepcopy(encoder).train()
    augment, g = classifier_views(cfg), torch.Generator(device=cfg.torch_device).manual_seed(cfg.seed + 3)
    memory = memory_format(cfg, net)
    out = []
    for v in range(views):  # shuffled batches, as fine-tuning draws them; rows put back in the images' order
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed + v)).to(x.device)
        chunks = []
        for i in range(0, len(x), batch):
            xb = augment(x[order[i : i + batch]].to(cfg.torch_device), g).contiguous(memory_format=memory)
            with autocast(cfg):
                chunks.append(net(xb).float())
        shuffled = torch.cat(chunks)
        feats = torch.empty_like(shuffled)
        feats[order.to(shuffled.device)] = shuffled
        out.append(feats)
    return torch.cat(out)


def lpft_head(encoder: nn.Module, probe: nn.Linear, x: torch.Tensor, y: torch.Tensor, num_classes: int,
              cfg: Config, batch: int, views: int = 4) -> nn.Linear:
    """LP-FT's starting head (:func:`semi_supervised`). ``cfg.finetune_head == "clean"`` (the default): the
    same-label ``probe`` itself, fitted on clean images in evaluation mode. ``"views"``: a probe
    (:func:`fit_linear_head`) fitted on ``views`` augmented copies of the labelled images, embedded as fine-tuning's
    first step embeds them (:func:`view_features`).

    Why the option: the clean probe fits what fine-tuning never shows it. On the digits
    (``benchmarks/lpft_start.py``) its cross-entropy on fine-tuning's first batch is 3.1 for a random-init N1
    against 0.001 on the clean images it was fitted on, and 2.9 for the VICReg N1. Measured on the digits'
    validation split (``benchmarks/finetune_recipe.py --heads clean,views``), though, the learning rate decided
    the outcome and the head did not: at every learning rate that did not collapse, the two heads ended within
    the split's noise of each other."""
    if cfg.evaluation.finetune_head == "clean":
        return probe
    f = view_features(encoder, x, cfg, batch, views)
    return fit_linear_head(f, y.to(f.device).repeat(views), num_classes, cfg)


def probe_initialized(encoder: nn.Module, head: nn.Linear) -> Classifier:
    """A copy of ``encoder`` with a copy of a fitted ``head`` (:func:`lpft_head`): LP-FT's starting point, which
    predicts exactly what that head on the frozen encoder does."""
    model = Classifier(copy.deepcopy(encoder), head.out_features)
    model.head.load_state_dict({k: v.detach().cpu() for k, v in head.state_dict().items()})
    return model


def semi_supervised(
    encoder: nn.Module,
    data: ImageDataset,
    cfg: Config,
    fraction: float,
    init: str,
    progress: bool = True,
) -> dict[str, dict]:
    """The semi-supervised protocol on ``fraction`` of ``data``'s training labels; three results on the full test split.

    * ``"knn"``: kNN (:func:`course_lib.diagnostics.knn_accuracy`) of the frozen encoder with the labelled images
      as its memory bank, ``k = cfg.knn_k`` but no more than the labelled images of a class
      (:func:`course_lib.diagnostics.knn_neighbours`: 5-NN with Tiny ImageNet's 1 %);
    * ``"linear"``: a linear probe (:func:`fit_linear_head`) of the frozen encoder trained on the labelled images;
    * ``"finetune"``: a copy of the encoder with a fitted head (LP-FT: the head starts fitted, so the first steps
      do not push a random head's gradients into the encoder; :func:`lpft_head`: by default the probe above,
      ``finetune_head="views"`` one fitted on the augmented views fine-tuning feeds), then the whole network trained
      with SGD (momentum 0.9, weight decay 5e-4, crop + flip, cosine decay per step; BatchNorm in training
      mode, as in SimCLR's and VICReg's fine-tuning: keeping A's statistics frozen diverged or fell to chance
      on the digits) for at least
      ``cfg.finetune_steps`` optimizer steps of :func:`finetune_plan`'s batch (whole passes over the labelled
      images, so up to one pass more), however few the labels: a step budget, not epochs over a tiny subset
      (20 epochs of 1 % of Tiny ImageNet's 20,000 images at batch 256 were 20 steps). It is tested by
      :func:`evaluate_classifier`: BatchNorm's statistics recomputed over the set's training images, the
      unlabelled ones included (they are there in any semi-supervised setting), not the few labelled crops'.

    The first two show what the labels give *without* touching the encoder, so the table says what fine-tuning
    adds. Each result carries ``labels``, ``per_class`` and, for the fine-tune, ``steps`` and ``batch``. The
    fine-tuning run is keyed by ``init``, the encoder's weights, the labelled subset and the recipe, and is
    loaded when it has finished (:func:`course_lib.train.fit`).
    """
    protocol = cfg.evaluation
    subset = labelled_subset(data, fraction, cfg.seed)
    n, per_class = len(subset), len(subset) / data.num_classes
    x_lab, y_lab = data.x_train[subset], data.y_train[subset]
    t0 = time.perf_counter()
    f_lab, f_test = embed(encoder, x_lab, cfg), embed(encoder, data.x_test, cfg)
    y_test = data.y_test.to(f_test.device)
    t_embed = time.perf_counter() - t0
    k = knn_neighbours(y_lab, protocol.knn_k)  # 5 images per class cannot fill a 20-neighbour vote: 5-NN
    knn = knn_accuracy(f_lab, y_lab, f_test, y_test, k)
    t1 = time.perf_counter()
    head = fit_linear_head(f_lab, y_lab, data.num_classes, cfg)
    with torch.no_grad():
        probe = topk_accuracy(head(f_test), y_test)
    t_probe = time.perf_counter() - t1
    common = {"labels": n, "per_class": per_class}

    batch, epochs, _ = finetune_plan(n, cfg)  # fit counts epochs; the schedule counts steps
    model = probe_initialized(encoder, lpft_head(encoder, head, x_lab, y_lab, data.num_classes, cfg, batch))
    settings = {
        "method": "finetune",
        "protocol": "lp-ft" if protocol.finetune_head == "clean" else "lp-ft-views",
        "init": init,
        "init_weights": weights_fingerprint(encoder),  # a retrained encoder is never matched to a stale run
        "fraction": fraction,
        "data": data_fingerprint(data),
        "image_size": cfg.data.image_size,
        "batch_size": batch,
        "steps": protocol.finetune_steps,
        "seed": cfg.seed,
        "precision": str(cfg.amp_dtype),
    }
    # a tiny labelled subset makes hundreds of one-step epochs: checkpoint at most every 30 s, not after each
    save_cfg = cfg.replace(checkpoint_every_s=max(cfg.paths.checkpoint_every_s, 30.0))
    run = train_classifier(
        save_cfg, f"finetune-{init}-{fraction:g}", model, x_lab, y_lab, epochs, protocol.finetune_lr, settings,
        progress, batch_size=batch,
    )
    acc = evaluate_classifier(model, data, cfg)  # BatchNorm's statistics of the set's images, labelled or not
    return {
        "knn": {**knn, "epochs": 0, "seconds": t_embed, "k": k, **common},
        "linear": {**probe, "epochs": protocol.probe_epochs, "seconds": t_embed + t_probe, **common},
        "finetune": {**acc, "epochs": run.epochs, "seconds": run.seconds, "steps": len(run.history), "batch": batch,
                     **common},
    }


def finetune(encoder: nn.Module, data: ImageDataset, cfg: Config, fraction: float, init: str,
             progress: bool = True) -> dict[str, float]:
    """The fine-tuning result of :func:`semi_supervised` alone (top-1/top-5, ``labels``, ``steps``...)."""
    return semi_supervised(encoder, data, cfg, fraction, init, progress)["finetune"]


def evaluate_classifier(model: nn.Module, data: ImageDataset, cfg: Config, x: torch.Tensor | None = None,
                        y: torch.Tensor | None = None) -> dict[str, float]:
    """Top-1/top-5 of a trained classifier on ``data``'s test split (or on the images ``x`` with labels ``y``),
    with BatchNorm's statistics recomputed over ``data``'s training images (:func:`recalibrate_batchnorm`: a copy,
    no label read; ``model`` is left as it is).

    Why: its head was trained on features normalized by *batch* statistics, and evaluation mode swaps in running
    averages that a short run leaves behind the final weights (on the ``test`` preset's ~20 steps, supervised N2:
    23.0 % with them, chance 20 %, and 65.9 % recomputed; ``benchmarks/bn_statistics.py``). A frozen encoder's
    linear probe needs no such pass: it is fitted on the evaluation-mode features themselves."""
    x, y = (data.x_test, data.y_test) if x is None else (x, y)
    ready = recalibrate_batchnorm(model, data.x_train, cfg)
    return topk_accuracy(predict(ready, x, cfg), y.to(cfg.torch_device))
