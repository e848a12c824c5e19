"""Blind-baseline features: text, spectral, prosodic and metadata groups.

Each group is a module (``text``, ``spectral``, ``prosodic``, ``metadata``)
with a pure per-item function; :mod:`~lalm_audit.features.registry` runs a
group over a manifest shard (recording per-item failures) and merges shards;
:mod:`~lalm_audit.features.table` joins a dataset's group tables into a
:class:`FeatureSet` for the blind classifiers.
"""

from lalm_audit.features.registry import (
    ERROR,
    GROUPS,
    FeatureGroup,
    extract_group,
    merge_shards,
    run_features_shard,
    shard_rows,
)
from lalm_audit.features.table import (
    FeatureSet,
    GroupColumns,
    feature_path,
    feature_set,
    load_features,
)

__all__ = [
    "ERROR",
    "GROUPS",
    "FeatureGroup",
    "FeatureSet",
    "GroupColumns",
    "extract_group",
    "feature_path",
    "feature_set",
    "load_features",
    "merge_shards",
    "run_features_shard",
    "shard_rows",
]
