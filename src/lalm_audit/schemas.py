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

#: Per-position statistic columns of TOKEN_STATS, computed once in the stage-2 pass
#: (definitions: docs of ``lalm_audit.scoring``); every indicator is a function of these.
TOKEN_STAT_COLUMNS: dict[str, str] = {
    "logp": "l_t = log p_t(y_t), the target token's log-probability",
    "mink_mu": "mu_t = sum_v p log p (Min-K%++ mean)",
    "mink_sigma": "sigma_t = sqrt(sum_v p (log p)^2 - mu_t^2) (Min-K%++ scale)",
    "renyi_05": "Renyi entropy H_0.5 of p_t",
    "renyi_1": "Shannon entropy H_1 of p_t",
    "renyi_2": "Renyi entropy H_2 of p_t",
    "renyi_inf": "min-entropy H_inf = -log max_v p_t(v)",
    "mod_entropy": "modified entropy M_t",
    "mod_renyi_05": "modified Renyi entropy M_0.5,t",
    "mod_renyi_2": "modified Renyi entropy M_2,t",
    "prob_gap": "log p_t(top1) - log p_t(top2)",
}

GENERATIONS = TableSchema(
    name="generations",
    columns={
        "item_id": pa.string(),
        "response": pa.string(),
        "response_token_ids": pa.list_(pa.int32()),
        "prompt": pa.string(),
        "audio_window_truncated": pa.bool_(),
    },
    key=("item_id",),
    doc={
        "response": "stage 1: the model's greedy response to audio + prompt (special tokens stripped)",
        "response_token_ids": "the generated token ids (without the end-of-turn token)",
        "prompt": "the text prompt the model was given",
        "audio_window_truncated": "true when the clip was longer than the model's audio window and was cut "
        "(scoring.long_clip_policy=truncate; a warning is logged per item)",
    },
)

TOKEN_STATS = TableSchema(
    name="token_stats",
    columns={
        "item_id": pa.string(),
        "slice": pa.string(),
        "n_tokens": pa.int32(),
        "token_ids": pa.list_(pa.int32()),
        "text": pa.string(),
        **{c: pa.list_(pa.float32()) for c in TOKEN_STAT_COLUMNS},
    },
    key=("item_id", "slice"),
    doc={
        "slice": "'audio', 'prompt' or 'response': positions from token offsets of the full sequence",
        "n_tokens": "number of positions in the slice",
        "token_ids": "y_t: the next token at each position (audio positions: the model's own argmax)",
        "text": "decoded text of the slice's target tokens (empty for 'audio'); used by zlib-style indicators",
        **TOKEN_STAT_COLUMNS,
    },
)

ALL_SCHEMAS: dict[str, TableSchema] = {
    s.name: s for s in (MANIFEST, REJECTED, GENERATIONS, TOKEN_STATS)
}


def empty_frame(schema: TableSchema) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return pa.schema([pa.field(c, t) for c, t in schema.columns.items()]).empty_table().to_pandas()
