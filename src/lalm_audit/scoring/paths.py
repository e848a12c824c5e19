"""Scoring artifacts by (model, dataset, condition, response), from the one layout
(:mod:`lalm_audit.layout`), relative to a working directory ``root``.

``results/scores/{model}/{dataset}/{condition}/``
    ``generations/shard-{i}.parquet`` (+ ``.rejected.parquet``) -> ``generations.parquet``
    (+ ``generations.rejected.parquet``): stage 1;
    ``{response}/token_stats/shard-{i}.parquet``: stage 2 (the shards together are the table;
    ``lalm_audit.io.read_tables`` reads them as one).

What lives here beyond the layout is the scoring protocol's own rule: which stage-1
table a response reads (:func:`generations_path`). Light on purpose (no torch): the
Snakefile imports it at parse time.
"""

from __future__ import annotations

from pathlib import Path

from lalm_audit.layout import Layout

RESPONSES = ("generated", "transcript", "regenerated")


def scores_dir(model: str, dataset: str, condition: str, root: str | Path = ".") -> Path:
    return Path(Layout.under(root).scores_dir(model, dataset, condition))


def manifest_path(dataset: str, condition: str, root: str | Path = ".") -> Path:
    """Input manifest of a condition: the dataset's manifest ('original') or a perturbation's."""
    return Path(Layout.under(root).condition_manifest(dataset, condition))


def generations_path(
    model: str, dataset: str, condition: str, response: str, root: str | Path = "."
) -> Path | None:
    """Stage-1 table a response reads: 'generated' scores the response to the ORIGINAL audio,
    'regenerated' the response to the condition's own audio, 'transcript' none."""
    if response == "transcript":
        return None
    cond = "original" if response == "generated" else condition
    return Path(Layout.under(root).generations(model, dataset, cond))


def generations_table(model: str, dataset: str, condition: str, root: str | Path = ".") -> Path:
    """The merged stage-1 table of a condition (its shards together)."""
    return Path(Layout.under(root).generations(model, dataset, condition))


def generation_shard(
    model: str, dataset: str, condition: str, shard: int, root: str | Path = "."
) -> Path:
    return Path(Layout.under(root).generations_shard(model, dataset, condition, shard))


def rejected_path(generations: Path) -> Path:
    """The rejected-items table beside a generations table (or shard)."""
    return generations.with_name(generations.stem + ".rejected.parquet")


def token_stats_shard(
    model: str, dataset: str, condition: str, response: str, shard: int, root: str | Path = "."
) -> Path:
    return Path(Layout.under(root).token_stats_shard(model, dataset, condition, response, shard))


def token_stats_shards(
    model: str, dataset: str, condition: str, response: str, n_shards: int, root: str | Path = "."
) -> list[Path]:
    """Every stage-2 shard of (model, dataset, condition, response): together, its token statistics."""
    return [
        token_stats_shard(model, dataset, condition, response, i, root) for i in range(n_shards)
    ]
