"""Compare methods side by side: ``dcflow compare`` runs the grid, ``dcflow report`` rebuilds it.

The grid (method x dataset x seed) runs through the same local pipelines as ``dcflow run``; every
run is tagged with the comparison id in MLflow, and the report (results.csv, results.md, plots) is
built from MLflow alone, so a team can regenerate it from its tracking server.
"""
