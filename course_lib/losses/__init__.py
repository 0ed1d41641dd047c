"""Self-supervised losses, one module per method (see each module for its paper)."""
from .barlow_twins import BarlowTwinsLoss, barlow_twins_loss, cross_correlation, off_diagonal, on_diagonal, standardize
from .moco import MoCoLoss, MoCoQueue, moco_loss, momentum_update
from .simclr import NTXentLoss, nt_xent_loss
from .vicreg import VICRegLoss, covariance, invariance, variance, vicreg_loss
from .wmse import WMSELoss, whiten, wmse_loss

__all__ = [
    "VICRegLoss", "variance", "invariance", "covariance", "vicreg_loss",
    "BarlowTwinsLoss", "barlow_twins_loss", "standardize", "cross_correlation", "on_diagonal", "off_diagonal",
    "WMSELoss", "wmse_loss", "whiten",
    "NTXentLoss", "nt_xent_loss",
    "MoCoLoss", "moco_loss", "MoCoQueue", "momentum_update",
]
