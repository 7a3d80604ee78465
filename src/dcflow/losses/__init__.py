"""Loss functions, one file per family, device-agnostic."""

from dcflow.losses.centre_loss import per_sample_centre_loss, weighted_centre_loss

__all__ = ["per_sample_centre_loss", "weighted_centre_loss"]
