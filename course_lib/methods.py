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
collapses (notebook 02). Each method takes its paper's arguments by their papers' (or official code's)
names: VICReg's ``sim_coeff``, ``std_coeff``, ``cov_coeff``, Barlow Twins' ``lambd``, SimCLR's and MoCo's
``temperature``, W-MSE's ``w_size``. :func:`method_arguments` is the one place that reads them from a
:class:`~course_lib.config.Config`, and each appears in ``settings()``, so it keys the run.
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

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def project(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views through the encoder and the method's ``projector``, gathered over the processes."""
        return gather(self.projector(self.encoder(x_a))), gather(self.projector(self.encoder(x_b)))

    def after_step(self) -> None:
        """Called after every optimizer step (MoCo's momentum update and queue)."""

    def settings(self) -> dict:
        """What, besides the common settings, identifies a run of this method."""
        raise NotImplementedError


class VICReg(Method):
    """VICReg (Bardes et al. 2022): projector + ``sim_coeff`` x invariance + ``std_coeff`` x variance +
    ``cov_coeff`` x covariance (the official code's names; the paper's lambda, mu, nu: 25, 25, 1)."""

    name = "vicreg"

    def __init__(self, encoder: nn.Module, projector: tuple[int, ...], sim_coeff: float = 25.0,
                 std_coeff: float = 25.0, cov_coeff: float = 1.0):
        super().__init__(encoder)
        self.widths = tuple(projector)
        self.projector = Projector(encoder.out_dim, self.widths)
        self.coeffs = (sim_coeff, std_coeff, cov_coeff)

    def forward(self, x_a, x_b):
        z_a, z_b = self.project(x_a, x_b)
        sim, std, cov = self.coeffs
        return vicreg_loss(z_a, z_b, lambda_param=sim, mu_param=std, nu_param=cov)

    def settings(self):  # "loss_weights": the key runs have been stored under since the first course_lib
        return {"projector": self.widths, "loss_weights": self.coeffs}


class InvarianceOnly(Method):
    """VICReg's invariance term alone on the encoder's embeddings: the objective that collapses (notebook 02).

    Nothing keeps the embeddings apart, so the constant map is a perfect solution. There
    is no projector on purpose: with one, the projector's last layer collapses by itself
    and hides the collapse from the encoder's embeddings, which the diagnostics measure.
    The loss is scaled by ``sim_coeff`` (25), as inside VICReg's loss.
    """

    name = "invariance_only"

    def __init__(self, encoder: nn.Module, sim_coeff: float = 25.0):
        super().__init__(encoder)
        self.sim_coeff = sim_coeff

    def forward(self, x_a, x_b):
        inv = invariance(widen(gather(self.encoder(x_a))), widen(gather(self.encoder(x_b))))
        return {"loss": self.sim_coeff * inv, "invariance": inv.detach()}

    def settings(self):
        return {"lambda": self.sim_coeff}


class BarlowTwins(Method):
    """Barlow Twins (Zbontar et al. 2021): VICReg's projector + the cross-correlation loss.

    ``lambd`` (the official code's name) weighs the off-diagonal terms; None means ``1 / D`` for ``D`` = the projector's output
    width when that is None: the paper's 0.0051 was tuned for D = 8192, and with a
    1024-d projector the ``D^2 - D`` off-diagonal terms would swamp the ``D`` diagonal
    ones (Tsai et al. 2021 suggest ``1/D``).
    """

    name = "barlow_twins"

    def __init__(self, encoder: nn.Module, projector: tuple[int, ...], lambd: float | None = None):
        super().__init__(encoder)
        self.widths = tuple(projector)
        self.projector = Projector(encoder.out_dim, self.widths)
        self.lambd = lambd if lambd is not None else 1.0 / self.projector.out_dim

    def forward(self, x_a, x_b):
        z_a, z_b = self.project(x_a, x_b)
        return barlow_twins_loss(z_a, z_b, lambda_param=self.lambd)

    def settings(self):
        return {"projector": self.widths, "lambda": self.lambd}


class WMSE(Method):
    """W-MSE (Ermolov et al. 2021): a small head, whitening of each sub-batch, then the MSE of normalized pairs.

    The head is the paper's CIFAR one: ``Linear(out_dim, hidden)`` + BatchNorm + ReLU + ``Linear(., emb)``
    (1024 and 64; the official code's ``emb``). Whitening needs more rows than dimensions in every
    sub-batch: the paper's ``w_size = 128`` for 64 dimensions (2 D). A batch smaller than ``w_size`` is
    whitened as one sub-batch, so ``min(batch_size, w_size) > emb`` is required, and checked here.
    """

    name = "wmse"

    def __init__(self, encoder: nn.Module, batch_size: int, hidden: int = 1024, emb: int = 64, w_size: int = 128):
        super().__init__(encoder)
        rows = min(batch_size, w_size)
        if rows <= emb:
            raise CourseError(
                f"W-MSE whitens sub-batches of {rows} rows, which cannot whiten {emb} dimensions: "
                f"set wmse_dim below {rows} (e.g. {rows // 2}) or raise batch_size and wmse_w_size"
            )
        self.hidden, self.emb, self.w_size = hidden, emb, w_size
        self.head = nn.Sequential(
            nn.Linear(encoder.out_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, emb),
        )

    def forward(self, x_a, x_b):
        z_a = gather(self.head(self.encoder(x_a)))
        z_b = gather(self.head(self.encoder(x_b)))
        return wmse_loss([z_a, z_b], w_size=self.w_size)

    def settings(self):
        return {"head": (self.hidden, self.emb), "w_size": self.w_size}


class SimCLR(Method):
    """SimCLR (Chen et al. 2020): projector + NT-Xent at ``temperature`` (the paper's CIFAR-10 0.5).

    The other ``2N - 2`` views of the batch are the negatives, so the batch size matters.
    """

    name = "simclr"

    def __init__(self, encoder: nn.Module, projector: tuple[int, ...], temperature: float = 0.5):
        super().__init__(encoder)
        self.widths = tuple(projector)
        self.projector = Projector(encoder.out_dim, self.widths)
        self.temperature = temperature

    def forward(self, x_a, x_b):
        z_a, z_b = self.project(x_a, x_b)
        return nt_xent_loss(z_a, z_b, temperature=self.temperature)

    def settings(self):
        return {"projector": self.widths, "temperature": self.temperature}


class MoCoV2(Method):
    """MoCo v2 (Chen et al. 2020): momentum key encoder, a queue of negatives, InfoNCE.

    The query network is the shared encoder + a projector; the key
    network is a copy of both that never receives gradients and follows the query
    network in :meth:`after_step`, ``theta_k <- m theta_k + (1 - m) theta_q`` with
    ``m = momentum``. The loss is symmetrized as in solo-learn's "MoCo v2+"
    (the literature number we compare with): each view is once the query and once the
    key, ``(L(q_a, k_b, queue_b) + L(q_b, k_a, queue_a)) / 2``, and each view has its own
    queue of ``queue_size`` keys, refilled with this batch's keys after the step.
    A queue should hold fewer keys than the training set has images minus a batch, so
    that an image is never its own negative within an epoch (4096 for CIFAR-10's 50,000
    images; a few hundred for the digits' ~700).
    """

    name = "moco_v2"
    backbones = ("encoder", "key_encoder")

    def __init__(self, encoder: nn.Module, projector: tuple[int, ...], queue_size: int = 4096,
                 momentum: float = 0.99, temperature: float = 0.2):
        super().__init__(encoder)
        self.widths = tuple(projector)
        self.queue_size, self.momentum, self.temperature = queue_size, momentum, temperature
        self.projector = Projector(encoder.out_dim, self.widths)
        self.key_encoder = copy.deepcopy(encoder)
        self.key_projector = copy.deepcopy(self.projector)
        for p in (*self.key_encoder.parameters(), *self.key_projector.parameters()):
            p.requires_grad_(False)
        dim = self.projector.out_dim
        self.queue_a = MoCoQueue(queue_size, dim)
        self.queue_b = MoCoQueue(queue_size, dim)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # keys to enqueue after the step

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return gather(self.key_projector(self.key_encoder(x)))  # every process's keys join the queue

    def forward(self, x_a, x_b):
        q_a, q_b = self.project(x_a, x_b)
        k_a, k_b = self._keys(x_a), self._keys(x_b)
        t = self.temperature
        ab = moco_loss(q_a, k_b, self.queue_b.keys, t)
        ba = moco_loss(q_b, k_a, self.queue_a.keys, t)
        if self.training:
            self._pending = (k_a.detach(), k_b.detach())
        return {key: (ab[key] + ba[key]) / 2 for key in ab}

    @torch.no_grad()
    def after_step(self) -> None:
        momentum_update(self.encoder, self.key_encoder, self.momentum)
        momentum_update(self.projector, self.key_projector, self.momentum)
        if self._pending is not None:
            self.queue_a.enqueue(self._pending[0])
            self.queue_b.enqueue(self._pending[1])
            self._pending = None

    def settings(self):
        return {"projector": self.widths, "queue": self.queue_size,
                "momentum": self.momentum, "temperature": self.temperature}


#: name -> Method class. Other methods register here.
METHODS: dict[str, Callable[..., Method]] = {
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


def method_arguments(name: str, cfg: Config) -> dict:
    """The arguments of method ``name`` read from ``cfg``: the one place a setting becomes a paper's argument."""
    sim, std, cov = cfg.pretrain.loss_weights
    projector, c = cfg.model.projector, cfg.comparison
    return {
        "vicreg": dict(projector=projector, sim_coeff=sim, std_coeff=std, cov_coeff=cov),
        "invariance_only": dict(sim_coeff=sim),
        "barlow_twins": dict(projector=projector, lambd=c.barlow_lambda),
        "wmse": dict(batch_size=cfg.batch_size, hidden=c.wmse_hidden, emb=c.wmse_dim, w_size=c.wmse_w_size),
        "simclr": dict(projector=projector, temperature=c.simclr_temperature),
        "moco_v2": dict(projector=projector, queue_size=c.moco_queue, momentum=c.moco_momentum,
                        temperature=c.moco_temperature),
    }[name]


def build_method(name: str, encoder: nn.Module, cfg: Config) -> Method:
    if name not in METHODS:
        raise CourseError(f"unknown method {name!r}: use one of {', '.join(METHODS)}")
    return METHODS[name](encoder, **method_arguments(name, cfg))
