"""Self-supervised losses, one module per method (see each module for its paper)."""
from .vicreg import VICRegLoss, covariance, invariance, variance, vicreg_loss

__all__ = ["VICRegLoss", "variance", "invariance", "covariance", "vicreg_loss"]
