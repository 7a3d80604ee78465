"""Clustering algorithms (metrics live in :mod:`dcflow.clustering.metrics`, imported on demand)."""

from dcflow.clustering.kmeans import KMeans, squared_distances

__all__ = ["KMeans", "squared_distances"]
