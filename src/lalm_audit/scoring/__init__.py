"""Target-model scoring: stage-1 generation and the stage-2 teacher-forced statistics pass.

- :func:`token_stats`: the per-position statistics of ``metrics.md`` from a
  [T, V] logits tensor (the one implementation; indicators read its output);
- :mod:`lalm_audit.scoring.pipeline`: both stages for a batch of clips (no I/O);
- :mod:`lalm_audit.scoring.run`: one job per shard, and shard merging;
- :mod:`lalm_audit.scoring.paths`: where each artifact lives (no heavy imports,
  so the workflow can use it at parse time).

Importing the package itself is light; ``token_stats`` loads torch on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STAT_NAMES", "token_stats"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lalm_audit.scoring import stats

        return getattr(stats, name)
    raise AttributeError(name)
