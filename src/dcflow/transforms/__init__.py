"""Augmentations as small typed classes operating on device tensors."""

from dcflow.transforms.affine import RandomAffine

__all__ = ["RandomAffine"]
