"""Feature sets: a dataset's feature tables joined into one frame, ready for a blind pipeline.

``load_features("demo-shifted", ["spectral", "metadata"])`` reads
``results/features/<dataset>/<group>.parquet`` and the manifest's labels and
returns a :class:`FeatureSet`: one row per manifest item, columns named
``<group>__<feature>`` (the names scikit-learn's ``ColumnTransformer`` gives
its outputs), and per group which columns are numbers, categories or text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lalm_audit import io
from lalm_audit.errors import DatasetError
from lalm_audit.features.registry import ERROR, GROUPS, KEY
from lalm_audit.layout import RESULTS, Layout

SEP = "__"
MISSING = "<missing>"


@dataclass(frozen=True)
class GroupColumns:
    """Prefixed column names of one group, by kind."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical, *self.text)


@dataclass(frozen=True)
class FeatureSet:
    """Features of a set of items, aligned with their labels.

    ``items`` has ``item_id``, ``dataset``, ``label`` (1 member, 0
    non-member) and, when the manifest has one, ``speaker_id``, one row per item; ``frame`` has the same rows (same order)
    and the prefixed feature columns; ``groups`` maps each group to its
    columns; ``failed`` holds, per group, a boolean per item (extraction
    failed, features missing and imputed inside the folds).
    """

    items: pd.DataFrame
    frame: pd.DataFrame
    groups: dict[str, GroupColumns]
    failed: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.items["label"].to_numpy(dtype=int)

    @property
    def item_ids(self) -> np.ndarray:
        return self.items[KEY].to_numpy(dtype=object)

    def __len__(self) -> int:
        return len(self.items)

    def columns(self, groups: Sequence[str] | str | None = None) -> GroupColumns:
        """Columns of one group, several groups, or all (None), merged by kind."""
        names = (
            list(self.groups)
            if groups is None
            else [groups]
            if isinstance(groups, str)
            else list(groups)
        )
        unknown = [g for g in names if g not in self.groups]
        if unknown:
            raise KeyError(
                f"feature groups {unknown} are not in this feature set (have {list(self.groups)})"
            )
        return GroupColumns(
            *(
                tuple(c for g in names for c in getattr(self.groups[g], kind))
                for kind in ("numeric", "categorical", "text")
            )
        )

    def subset(self, mask_or_ids: np.ndarray | Sequence[str]) -> FeatureSet:
        """The same features for a subset of items (a boolean mask, or item ids of a one-dataset set)."""
        arr = np.asarray(mask_or_ids)
        if arr.dtype == bool:
            idx = np.flatnonzero(arr)
        else:
            pos = pd.Index(self.items[KEY]).get_indexer(arr)
            if (pos < 0).any():
                raise KeyError(
                    f"{int((pos < 0).sum())} item ids are not in this feature set, e.g. {arr[pos < 0][:3].tolist()}"
                )
            idx = pos
        return replace(
            self,
            items=self.items.iloc[idx].reset_index(drop=True),
            frame=self.frame.iloc[idx].reset_index(drop=True),
            failed={g: f[idx] for g, f in self.failed.items()},
        )

    def with_labels(self, labels: np.ndarray) -> FeatureSet:
        """The same features with other 0/1 labels (e.g. dataset A vs dataset B for the heatmap)."""
        items = self.items.copy()
        items["label"] = np.asarray(labels, dtype=int)
        return replace(self, items=items)

    @staticmethod
    def concat(sets: Sequence[FeatureSet]) -> FeatureSet:
        """Stack feature sets of several datasets (same groups; rows keep their dataset)."""
        groups = sets[0].groups
        for s in sets[1:]:
            if list(s.groups) != list(groups):
                raise ValueError("feature sets to stack must have the same groups")
        cols = [c for g in groups.values() for c in g.all]
        frames = [s.frame.reindex(columns=cols) for s in sets]  # column layouts may differ slightly
        return FeatureSet(
            items=pd.concat([s.items for s in sets], ignore_index=True),
            frame=pd.concat(frames, ignore_index=True),
            groups=dict(groups),
            failed={
                g: np.concatenate([s.failed[g] for s in sets])
                for g in groups
                if all(g in s.failed for s in sets)
            },
        )


def feature_set(
    manifest: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, dataset: str | None = None
) -> FeatureSet:
    """Join group feature tables (``extract_group`` output) onto the manifest's items and labels."""
    items = manifest[[KEY, "label", *(["speaker_id"] if "speaker_id" in manifest else [])]].copy()
    items.insert(1, "dataset", dataset if dataset is not None else manifest.get("dataset", ""))
    items["label"] = items["label"].astype(int)
    items = items.sort_values(KEY, kind="stable").reset_index(drop=True)
    parts, groups, failed = [], {}, {}
    for g, df in tables.items():
        spec = GROUPS[g]
        missing = set(items[KEY]) - set(df[KEY])
        if missing:
            raise DatasetError(
                dataset or "?",
                f"{len(missing)} manifest items have no row in the {g} feature table, e.g. {sorted(missing)[:3]}",
                "rerun the feature stage for this dataset",
            )
        t = df.set_index(KEY).reindex(items[KEY])
        feats = [c for c in t.columns if c != ERROR]
        failed[g] = t[ERROR].notna().to_numpy() if ERROR in t else np.zeros(len(t), bool)
        t = t[feats].rename(columns=lambda c, g=g: f"{g}{SEP}{c}")
        kinds = {"text": spec.text_columns, "categorical": spec.categorical_columns}
        groups[g] = GroupColumns(
            numeric=tuple(
                f"{g}{SEP}{c}"
                for c in feats
                if c not in kinds["text"] and c not in kinds["categorical"]
            ),
            categorical=tuple(f"{g}{SEP}{c}" for c in feats if c in kinds["categorical"]),
            text=tuple(f"{g}{SEP}{c}" for c in feats if c in kinds["text"]),
        )
        num = list(groups[g].numeric)
        t[num] = t[num].astype(np.float64).replace([np.inf, -np.inf], np.nan)
        for c in groups[g].text:
            t[c] = t[c].fillna("").astype(object)
        for c in groups[g].categorical:  # a constant fill learns nothing: safe outside the folds
            t[c] = t[c].fillna(MISSING).astype(str).astype(object)
        parts.append(t.reset_index(drop=True))
    frame = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=items.index)
    frame = _consolidate(frame, [c for g in groups.values() for c in g.numeric])
    return FeatureSet(items=items, frame=frame, groups=groups, failed=failed)


def _consolidate(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """One float64 block for every number (row selection in each CV fold is then one array take)."""
    num = pd.DataFrame(
        frame[numeric].to_numpy(dtype=np.float64), columns=numeric, index=frame.index
    )
    rest = frame[[c for c in frame.columns if c not in set(numeric)]]
    return pd.concat([num, rest], axis=1)[list(frame.columns)].copy()


def feature_path(dataset: str, group: str, results: str | Path = RESULTS) -> Path:
    return Path(Layout(str(results)).features(dataset, group))


def load_features(
    dataset: str,
    groups: Sequence[str] | None = None,
    *,
    results: str | Path = RESULTS,
    manifest: str | Path | pd.DataFrame | None = None,
) -> FeatureSet:
    """A dataset's feature set from the workflow's outputs.

    ``groups``: which groups (default: every group with a table under
    ``results/features/<dataset>/``, in registry order); ``manifest``: the
    manifest (path or frame; default ``results/manifests/<dataset>.parquet``)
    that gives the items and labels.
    """
    if groups is None:
        groups = [g for g in GROUPS if feature_path(dataset, g, results).exists()]
    if isinstance(manifest, pd.DataFrame):
        man = manifest
    else:
        path = manifest or Layout(str(results)).manifest(dataset)
        cols = [KEY, "label"] + (["speaker_id"] if "speaker_id" in io.table_columns(path) else [])
        man = io.read_table(path, columns=cols)
    tables = {g: io.read_table(feature_path(dataset, g, results)) for g in groups}
    return feature_set(man, tables, dataset=dataset)
