"""The feature-group registry, sharded extraction, and merging of shards.

A group is a small module with ``NAME``, ``columns(cfg)``, ``extract(row,
cfg) -> dict`` (one manifest row in, one feature record out) and
``describe(feature)``. Extraction runs the group over a shard of the manifest;
an item whose extraction raises is recorded (``feature_error`` holds the
reason, its features are missing) and the shard goes on. Adding a group is one
module plus one line in ``GROUPS``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from lalm_audit import io
from lalm_audit.config import Config
from lalm_audit.errors import DatasetError
from lalm_audit.features.cache import FeatureCache
from lalm_audit.logs import progress
from lalm_audit.schemas import FEATURES

log = logging.getLogger(__name__)

ERROR = "feature_error"
KEY = "item_id"


@dataclass(frozen=True)
class FeatureGroup:
    """One feature group: how to extract it and how to read its columns.

    The group's module is imported on first use, so jobs that only read
    feature tables never load librosa or openSMILE.
    """

    name: str
    module_name: str
    text_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    needs_audio: bool = True

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def columns(self, cfg: Config) -> list[str]:
        return list(self.module.columns(cfg))

    def extract(self, row: dict[str, Any], cfg: Config) -> dict[str, Any]:
        return self.module.extract(row, cfg)

    def describe(self, feature: str) -> tuple[str, str, str, str]:
        """(readable phrase, unit, what 'higher' means, what 'lower' means) of a column."""
        if hasattr(self.module, "describe"):
            return self.module.describe(feature)
        return self.module.DESCRIPTIONS.get(feature, (feature, "", "", ""))


_PKG = "lalm_audit.features."
GROUPS: dict[str, FeatureGroup] = {
    "text": FeatureGroup("text", _PKG + "text", text_columns=("transcript",), needs_audio=False),
    "spectral": FeatureGroup("spectral", _PKG + "spectral"),
    "prosodic": FeatureGroup("prosodic", _PKG + "prosodic"),
    "metadata": FeatureGroup(
        "metadata", _PKG + "metadata", categorical_columns=("audio_format", "subtype")
    ),
}


def _params(cfg: Config, group: str) -> dict[str, Any]:
    """The config a group's values depend on (the feature cache's key)."""
    sub = getattr(cfg.features, group, None)
    return {
        "group": group,
        "audio": cfg.audio.model_dump(mode="json"),
        "params": sub.model_dump(mode="json") if sub is not None else None,
    }


def shard_rows(manifest: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    """Contiguous slice ``shard`` of ``n_shards`` of the manifest (every item in exactly one shard)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    idx = np.array_split(np.arange(len(manifest)), n_shards)[shard]
    return manifest.iloc[idx]


def feature_cache(cfg: Config, group: str, root: str | Path) -> FeatureCache:
    """The content-keyed cache of one group under ``root``.

    Its key covers the group's settings and the source of the group's module and of the
    decoder, so editing either (or upgrading the package) never serves stale values.
    """
    spec = GROUPS[group]
    sources = [spec.module.__file__, importlib.import_module("lalm_audit.audio").__file__]
    code = hashlib.sha256(b"".join(Path(f).read_bytes() for f in sources)).hexdigest()[:16]
    return FeatureCache(
        root, group, {**_params(cfg, group), "code": code}, needs_audio=spec.needs_audio
    )


def extract_group(
    rows: pd.DataFrame,
    group: str,
    cfg: Config,
    *,
    desc: str = "",
    on_item: Callable[[int], None] | None = None,
    cache: FeatureCache | None = None,
) -> pd.DataFrame:
    """Features of ``group`` for each manifest row: one row per item, ``feature_error`` set on failure.

    With ``cache``, a clip whose content was extracted before (by any dataset) is read
    from the cache instead of being decoded and extracted again.
    """
    spec = GROUPS[group]
    cols = spec.columns(cfg)
    records = []
    for row in progress(rows.to_dict("records"), total=len(rows), desc=desc or f"{group} features"):
        key = cache.key(row) if cache is not None else None
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            records.append({KEY: row[KEY], ERROR: None, **{c: cached.get(c) for c in cols}})
            continue
        try:
            feats = spec.extract(row, cfg)
            err = None
            if cache is not None:
                cache.put(key, {c: feats.get(c) for c in cols})
        except Exception as exc:
            # Any per-item failure (undecodable audio, a library error on a degenerate clip) is
            # recorded, never fatal; merge_shards stops the run when too many items fail, which
            # is how a bug or bad settings (rather than a few bad items) surface.
            feats, err = {}, f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s features failed: %s", row.get(KEY), group, err)
        records.append({KEY: row[KEY], ERROR: err, **{c: feats.get(c) for c in cols}})
    df = pd.DataFrame.from_records(records, columns=[KEY, ERROR, *cols])
    for c in cols:
        if c in spec.text_columns or c in spec.categorical_columns:
            df[c] = df[c].astype(object)
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
    df[ERROR] = df[ERROR].astype(object)
    return df


def run_features_shard(
    cfg: Config,
    dataset: str,
    group: str,
    shard: int,
    n_shards: int,
    manifest: str | Path,
    out: str | Path,
    *,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The feature stage for one shard: read the manifest, extract, write ``out``.

    ``cache_dir``: where features are cached by clip content (None: no cache).
    """
    rows = shard_rows(io.read_table(manifest), shard, n_shards)
    cache = feature_cache(cfg, group, cache_dir) if cache_dir is not None else None
    df = extract_group(
        rows, group, cfg, desc=f"{dataset} {group} {shard + 1}/{n_shards}", cache=cache
    )
    if cache is not None:
        log.info(
            "%s %s shard %d/%d: %d items, %d from the content cache (%s)",
            dataset, group, shard + 1, n_shards, len(rows), cache.hits, cache.dir,
        )  # fmt: skip
    io.write_table(
        df,
        out,
        schema=FEATURES,
        prov=io.provenance(
            "features", cfg, dataset=dataset, group=group, shard=shard, n_shards=n_shards
        ),
    )
    return df


def merge_shards(
    cfg: Config,
    dataset: str,
    group: str,
    shards: Sequence[str | Path],
    manifest: str | Path,
    out: str | Path,
) -> pd.DataFrame:
    """Concatenate a group's shards, check every manifest item has exactly one row, write ``out``."""
    df = pd.concat([io.read_table(p) for p in shards], ignore_index=True)
    items = io.read_table(manifest, columns=[KEY])[KEY]
    missing = sorted(set(items) - set(df[KEY]))
    extra = sorted(set(df[KEY]) - set(items))
    if missing or extra or df[KEY].duplicated().any():
        raise DatasetError(
            dataset,
            f"{group} feature shards do not match the manifest ({len(missing)} items missing, "
            f"{len(extra)} unknown, {int(df[KEY].duplicated().sum())} duplicated; e.g. {(missing + extra)[:3]})",
            "delete results/features/"
            + dataset
            + " and rerun (the manifest changed under the shards)",
        )
    df = df.sort_values(KEY, kind="stable").reset_index(drop=True)
    failed = df[ERROR].notna()
    log.info(
        "%s %s features: %d items = %d extracted + %d failed",
        dataset, group, len(df), int((~failed).sum()), int(failed.sum()),
    )  # fmt: skip
    if len(df) and failed.mean() > cfg.features.max_failed_fraction:
        reasons = df.loc[failed, ERROR].value_counts().head(3).to_dict()
        raise DatasetError(
            dataset,
            f"{int(failed.sum())} of {len(df)} items failed {group} feature extraction "
            f"(more than features.max_failed_fraction={cfg.features.max_failed_fraction}); "
            f"most common reasons: {reasons}",
            "fix the audio or the feature settings named in the reasons, or raise features.max_failed_fraction",
        )
    io.write_table(
        df,
        out,
        schema=FEATURES,
        prov=io.provenance(
            "features", cfg, dataset=dataset, group=group, n_failed=int(failed.sum())
        ),
    )
    return df
