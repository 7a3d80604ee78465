"""Backbones and heads."""

from dcflow.models.autoencoder import AutoEncoder
from dcflow.models.state import load_state

__all__ = ["AutoEncoder", "load_state"]
