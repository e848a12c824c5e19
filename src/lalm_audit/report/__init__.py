"""The report layer: tables, figures and README blocks assembled from the stages' Parquet results.

The top of the import stack: it may import stage modules and :mod:`lalm_audit.render`; no
stage module imports it (``[tool.importlinter]`` in pyproject.toml).
"""
