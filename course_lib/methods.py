"""SSL methods = an encoder's heads + a loss, behind one interface that :func:`course_lib.train.pretrain` trains.

Introduced in notebook 02. A :class:`Method` owns everything a method adds to the
encoder (projector, predictor, momentum encoder, queue); ``forward(x_a, x_b)``
returns the loss dict of one batch of view pairs, and ``after_step()`` runs after
each optimizer step (momentum updates, queues). The encoder itself is passed in and
trained by the same loop for every method.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .config import Config
from .errors import CourseError
from .losses import vicreg_loss
from .models import Projector


class Method(nn.Module):
    """Base class: ``heads`` are the method's own modules; ``encoder`` is shared with the caller."""

    name = "method"

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__()
        self.encoder = encoder
        self.cfg = cfg

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

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
        z_a = self.projector(self.encoder(x_a))
        z_b = self.projector(self.encoder(x_b))
        lam, mu, nu = self.cfg.loss_weights
        return vicreg_loss(z_a, z_b, lambda_param=lam, mu_param=mu, nu_param=nu)

    def settings(self):
        return {"projector": self.cfg.projector, "loss_weights": self.cfg.loss_weights}


#: name -> Method class. Other methods register here.
METHODS: dict[str, Callable[[nn.Module, Config], Method]] = {"vicreg": VICReg}


def build_method(name: str, encoder: nn.Module, cfg: Config) -> Method:
    if name not in METHODS:
        raise CourseError(f"unknown method {name!r}: use one of {', '.join(METHODS)}")
    return METHODS[name](encoder, cfg)
