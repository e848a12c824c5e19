"""Rendering primitives: table cells and formats, figures, one look and one saver.

The bottom of the drawing stack: functions take frames (or matrices) and return
text or figures; nothing here reads results, computes a statistic of its own or
imports a stage module. Stage modules (``blind``, ``heatmap``, ``mia``,
``correlation``, ...) call these to write their artifacts, and :mod:`lalm_audit.report`
assembles them; the import contract (``[tool.importlinter]`` in pyproject.toml)
keeps the direction one way.
"""
