"""The column contract of every Parquet artifact lalm-audit writes.

``io.write_table`` checks a frame against its contract before writing, so a
stage can never hand the next one a table with a missing or mistyped column.
Extra columns are allowed only where a contract says so (``meta_*`` in manifests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class TableSchema:
    """Required columns (name -> Arrow type) and which extra columns may appear."""

    name: str
    columns: dict[str, pa.DataType]
    nullable: frozenset[str] = frozenset()
    extra_prefixes: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # columns whose combination must be unique
    doc: dict[str, str] = field(default_factory=dict)

    def arrow_schema(self, df: pd.DataFrame) -> pa.Schema:
        fields = [pa.field(c, t, nullable=c in self.nullable) for c, t in self.columns.items()]
        for c in df.columns:
            if c not in self.columns:
                fields.append(
                    pa.field(
                        c, pa.Table.from_pandas(df[[c]], preserve_index=False).schema.field(c).type
                    )
                )
        return pa.schema(fields)

    def check(self, df: pd.DataFrame) -> None:
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ValueError(f"{self.name} table lacks required columns {missing}")
        extra = [
            c
            for c in df.columns
            if c not in self.columns and not c.startswith(self.extra_prefixes or ("\0",))
        ]
        if extra:
            raise ValueError(
                f"{self.name} table has unexpected columns {extra}; allowed extras start with {self.extra_prefixes}"
            )
        for c in self.columns:
            if c not in self.nullable and df[c].isna().any():
                raise ValueError(f"{self.name} table column {c!r} has missing values")
        if self.key and len(df) and df.duplicated(list(self.key)).any():
            dup = (
                df.loc[df.duplicated(list(self.key), keep=False), list(self.key)]
                .head(3)
                .to_dict("records")
            )
            raise ValueError(f"{self.name} table key {self.key} is not unique, e.g. {dup}")


MANIFEST = TableSchema(
    name="manifest",
    columns={
        "item_id": pa.string(),
        "dataset": pa.string(),
        "audio_path": pa.string(),
        "audio_bytes": pa.binary(),
        "audio_format": pa.string(),
        "offset_s": pa.float64(),
        "duration_s": pa.float64(),
        "source_duration_s": pa.float64(),
        "sample_rate": pa.int32(),
        "channels": pa.int16(),
        "text": pa.string(),
        "speaker_id": pa.string(),
        "label": pa.int8(),
        "source_split": pa.string(),
        "truncated": pa.bool_(),
    },
    nullable=frozenset({"audio_path", "audio_bytes"}),
    extra_prefixes=("meta_",),
    key=("item_id",),
    doc={
        "item_id": "unique id within the dataset; derived items are '<item_id>__<condition>'",
        "audio_path": "audio file (relative to the working directory when inside it); null when audio_bytes is set",
        "audio_bytes": "the encoded audio file itself (e.g. from Hugging Face Parquet shards); null when audio_path is set",
        "audio_format": "container as decoded (WAV, FLAC, OGG, MP3, ...)",
        "offset_s": "segment start within the file, seconds",
        "duration_s": "seconds of audio every stage uses (after truncation to audio.max_duration_s)",
        "source_duration_s": "seconds of the segment in the source, before any truncation",
        "sample_rate": "the source's sample rate (audio is resampled to audio.sample_rate when decoded)",
        "channels": "the source's channel count (audio is mixed to mono when decoded)",
        "label": "1 member, 0 non-member",
        "source_split": "the split of the source corpus the item came from (e.g. train-clean-100)",
        "truncated": "true when the source was longer than audio.max_duration_s and was cut (long_clip_policy=truncate)",
        "meta_*": "free metadata columns carried from the source",
    },
)

REJECTED = TableSchema(
    name="rejected",
    columns={
        "dataset": pa.string(),
        "item_id": pa.string(),
        "source": pa.string(),
        "reason_code": pa.string(),
        "reason": pa.string(),
    },
    nullable=frozenset({"item_id"}),
    doc={
        "item_id": "the item's id when one could be read",
        "source": "where the item came from (file and row, or audio path)",
        "reason_code": "machine-readable reason (see lalm_audit.manifest.REASONS)",
        "reason": "a sentence naming the problem and the fix",
    },
)

ALL_SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (MANIFEST, REJECTED)}


def empty_frame(schema: TableSchema) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return pa.schema([pa.field(c, t) for c, t in schema.columns.items()]).empty_table().to_pandas()
