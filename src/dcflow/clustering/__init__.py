"""Clustering algorithms (metrics live in :mod:`dcflow.clustering.metrics`, imported on demand)."""

from dcflow.clustering.kmeans import KMeans, nonempty_clusters, squared_distances

__all__ = ["KMeans", "nonempty_clusters", "squared_distances"]
