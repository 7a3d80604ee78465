"""Backbones and heads."""

from dcflow.models.autoencoder import AutoEncoder

__all__ = ["AutoEncoder"]
