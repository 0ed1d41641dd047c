"""SSL methods = an encoder's heads + a loss, behind one interface that :func:`course_lib.train.pretrain` trains.

Introduced in notebook 02. A :class:`Method` owns everything a method adds to the
encoder (projector, predictor, momentum encoder, queue); ``forward(x_a, x_b)``
returns the loss dict of one batch of view pairs, and ``after_step()`` runs after
each optimizer step (momentum updates, queues). The encoder itself is passed in and
trained by the same loop for every method.

Under torchrun every method computes its loss on the *global* batch: its embeddings go
through :func:`course_lib.distributed.gather` first (in one process that returns them
unchanged), so the loss and its gradients are those of one process holding the whole batch.

Registered methods (:data:`METHODS`): ``vicreg``, ``barlow_twins``, ``wmse``, ``simclr``,
``moco_v2`` (compared in notebook 05) and ``invariance_only``, the objective that
collapses (notebook 02). Every hyperparameter is a :class:`~course_lib.config.Config`
field and appears in ``settings()``, so it keys the run.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from .config import Config
from .distributed import gather
from .errors import CourseError
from .losses import (
    MoCoQueue, barlow_twins_loss, invariance, moco_loss, momentum_update, nt_xent_loss, vicreg_loss, wmse_loss,
)
from .models import Projector
from .losses.precision import widen


class Method(nn.Module):
    """Base class: ``heads`` are the method's own modules; ``encoder`` is shared with the caller."""

    name = "method"
    #: The children that are encoders (SyncBatchNorm "projector" leaves their BatchNorm alone).
    backbones: tuple[str, ...] = ("encoder",)

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__()
        self.encoder = encoder
        self.cfg = cfg

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def project(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views through the encoder and the method's ``projector``, gathered over the processes."""
        return gather(self.projector(self.encoder(x_a))), gather(self.projector(self.encoder(x_b)))

    def after_step(self) -> None:
        """Called after every optimizer step (MoCo's momentum update and queue)."""

    def settings(self) -> dict:
        """What, besides the common settings, identifies a run of this method."""
        return {"projector": self.cfg.projector}


class VICReg(Method):
    """VICReg (Bardes et al. 2022): projector + variance/invariance/covariance loss, weights ``cfg.loss_weights``."""

    name = "vicreg"

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__(encoder, cfg)
        self.projector = Projector(encoder.out_dim, cfg.projector)

    def forward(self, x_a, x_b):
        z_a, z_b = self.project(x_a, x_b)
        lam, mu, nu = self.cfg.loss_weights
        return vicreg_loss(z_a, z_b, lambda_param=lam, mu_param=mu, nu_param=nu)

    def settings(self):
        return {"projector": self.cfg.projector, "loss_weights": self.cfg.loss_weights}


class InvarianceOnly(Method):
    """VICReg's invariance term alone on the encoder's embeddings: the objective that collapses (notebook 02).

    Nothing keeps the embeddings apart, so the constant map is a perfect solution. There
    is no projector on purpose: with one, the projector's last layer collapses by itself
    and hides the collapse from the encoder's embeddings, which the diagnostics measure.
    The loss is scaled by ``cfg.loss_weights[0]`` (25), as inside VICReg's loss.
    """

    name = "invariance_only"

    def forward(self, x_a, x_b):
        inv = invariance(widen(gather(self.encoder(x_a))), widen(gather(self.encoder(x_b))))
        return {"loss": self.cfg.loss_weights[0] * inv, "invariance": inv.detach()}

    def settings(self):
        return {"lambda": self.cfg.loss_weights[0]}


class BarlowTwins(Method):
    """Barlow Twins (Zbontar et al. 2021): VICReg's projector (``cfg.projector``) + the cross-correlation loss.

    ``lambda`` is ``cfg.barlow_lambda``, or ``1 / D`` for ``D`` = the projector's output
    width when that is None: the paper's 0.0051 was tuned for D = 8192, and with a
    1024-d projector the ``D^2 - D`` off-diagonal terms would swamp the ``D`` diagonal
    ones (Tsai et al. 2021 suggest ``1/D``).
    """

    name = "barlow_twins"

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__(encoder, cfg)
        self.projector = Projector(encoder.out_dim, cfg.projector)
        self.lambda_param = cfg.barlow_lambda if cfg.barlow_lambda is not None else 1.0 / self.projector.out_dim

    def forward(self, x_a, x_b):
        z_a, z_b = self.project(x_a, x_b)
        return barlow_twins_loss(z_a, z_b, lambda_param=self.lambda_param)

    def settings(self):
        return {"projector": self.cfg.projector, "lambda": self.lambda_param}


class WMSE(Method):
    """W-MSE (Ermolov et al. 2021): a small head, whitening of each sub-batch, then the MSE of normalized pairs.

    The head is the paper's CIFAR one: ``Linear(out_dim, cfg.wmse_hidden)`` + BatchNorm +
    ReLU + ``Linear(., cfg.wmse_dim)`` (1024 and 64). Whitening needs more rows than
    dimensions in every sub-batch: the paper's ``w_size = 128`` for 64 dimensions (2 D).
    A batch smaller than ``w_size`` is whitened as one sub-batch, so
    ``min(batch_size, wmse_w_size) > wmse_dim`` is required, and checked here.
    """

    name = "wmse"

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__(encoder, cfg)
        rows = min(cfg.batch_size, cfg.wmse_w_size)
        if rows <= cfg.wmse_dim:
            raise CourseError(
                f"W-MSE whitens sub-batches of {rows} rows, which cannot whiten {cfg.wmse_dim} dimensions: "
                f"set wmse_dim below {rows} (e.g. {rows // 2}) or raise batch_size and wmse_w_size"
            )
        self.head = nn.Sequential(
            nn.Linear(encoder.out_dim, cfg.wmse_hidden), nn.BatchNorm1d(cfg.wmse_hidden), nn.ReLU(inplace=True),
            nn.Linear(cfg.wmse_hidden, cfg.wmse_dim),
        )

    def forward(self, x_a, x_b):
        z_a = gather(self.head(self.encoder(x_a)))
        z_b = gather(self.head(self.encoder(x_b)))
        return wmse_loss([z_a, z_b], w_size=self.cfg.wmse_w_size)

    def settings(self):
        return {"head": (self.cfg.wmse_hidden, self.cfg.wmse_dim), "w_size": self.cfg.wmse_w_size}


class SimCLR(Method):
    """SimCLR (Chen et al. 2020): projector (``cfg.projector``) + NT-Xent at ``cfg.simclr_temperature``.

    The other ``2N - 2`` views of the batch are the negatives, so the batch size matters.
    """

    name = "simclr"

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__(encoder, cfg)
        self.projector = Projector(encoder.out_dim, cfg.projector)

    def forward(self, x_a, x_b):
        z_a, z_b = self.project(x_a, x_b)
        return nt_xent_loss(z_a, z_b, temperature=self.cfg.simclr_temperature)

    def settings(self):
        return {"projector": self.cfg.projector, "temperature": self.cfg.simclr_temperature}


class MoCoV2(Method):
    """MoCo v2 (Chen et al. 2020): momentum key encoder, a queue of negatives, InfoNCE.

    The query network is the shared encoder + a projector (``cfg.projector``); the key
    network is a copy of both that never receives gradients and follows the query
    network in :meth:`after_step`, ``theta_k <- m theta_k + (1 - m) theta_q`` with
    ``m = cfg.moco_momentum``. The loss is symmetrized as in solo-learn's "MoCo v2+"
    (the literature number we compare with): each view is once the query and once the
    key, ``(L(q_a, k_b, queue_b) + L(q_b, k_a, queue_a)) / 2``, and each view has its own
    queue of ``cfg.moco_queue`` keys, refilled with this batch's keys after the step.
    A queue should hold fewer keys than the training set has images minus a batch, so
    that an image is never its own negative within an epoch (4096 for CIFAR-10's 50,000
    images; a few hundred for the digits' ~700).
    """

    name = "moco_v2"
    backbones = ("encoder", "key_encoder")

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__(encoder, cfg)
        self.projector = Projector(encoder.out_dim, cfg.projector)
        self.key_encoder = copy.deepcopy(encoder)
        self.key_projector = copy.deepcopy(self.projector)
        for p in (*self.key_encoder.parameters(), *self.key_projector.parameters()):
            p.requires_grad_(False)
        dim = self.projector.out_dim
        self.queue_a = MoCoQueue(cfg.moco_queue, dim)
        self.queue_b = MoCoQueue(cfg.moco_queue, dim)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # keys to enqueue after the step

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return gather(self.key_projector(self.key_encoder(x)))  # every process's keys join the queue

    def forward(self, x_a, x_b):
        q_a, q_b = self.project(x_a, x_b)
        k_a, k_b = self._keys(x_a), self._keys(x_b)
        t = self.cfg.moco_temperature
        ab = moco_loss(q_a, k_b, self.queue_b.keys, t)
        ba = moco_loss(q_b, k_a, self.queue_a.keys, t)
        if self.training:
            self._pending = (k_a.detach(), k_b.detach())
        return {key: (ab[key] + ba[key]) / 2 for key in ab}

    @torch.no_grad()
    def after_step(self) -> None:
        momentum_update(self.encoder, self.key_encoder, self.cfg.moco_momentum)
        momentum_update(self.projector, self.key_projector, self.cfg.moco_momentum)
        if self._pending is not None:
            self.queue_a.enqueue(self._pending[0])
            self.queue_b.enqueue(self._pending[1])
            self._pending = None

    def settings(self):
        return {"projector": self.cfg.projector, "queue": self.cfg.moco_queue,
                "momentum": self.cfg.moco_momentum, "temperature": self.cfg.moco_temperature}


#: name -> Method class. Other methods register here.
METHODS: dict[str, Callable[[nn.Module, Config], Method]] = {
    "vicreg": VICReg,
    "barlow_twins": BarlowTwins,
    "wmse": WMSE,
    "simclr": SimCLR,
    "moco_v2": MoCoV2,
    "invariance_only": InvarianceOnly,
}

#: Published CIFAR-10 linear top-1 (%) of each method: solo-learn's ResNet-18 after 1000 epochs
#: (github.com/vturrisi/solo-learn, "CIFAR-10" table; MoCo is its symmetrized "MoCo V2+").
#: References for notebook 05, never results of ours.
LITERATURE_CIFAR10_TOP1: dict[str, float] = {
    "vicreg": 92.07, "barlow_twins": 92.10, "wmse": 88.67, "simclr": 90.74, "moco_v2": 92.94,
}


def build_method(name: str, encoder: nn.Module, cfg: Config) -> Method:
    if name not in METHODS:
        raise CourseError(f"unknown method {name!r}: use one of {', '.join(METHODS)}")
    return METHODS[name](encoder, cfg)
