"""Hugging Face ``datasets`` Parquet shards: audio embedded as ``{bytes, path}`` structs.

``datasets`` writes one or more shards per split (``data/train-00000-of-00004.parquet``);
the config maps each source split to a glob of its shards.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lalm_audit.config import HFParquetDataset
from lalm_audit.errors import DatasetError
from lalm_audit.manifest.base import (
    Candidate,
    LoadResult,
    arrow_reason,
    arrow_records,
    decode_text,
    display_path,
)
from lalm_audit.manifest.table import _as_id


def load_hf_parquet(name: str, cfg: HFParquetDataset) -> LoadResult:
    cols = cfg.columns
    candidates: list[Candidate] = []
    splits = [*cfg.member_splits, *cfg.nonmember_splits] if cfg.role == "audit" else list(cfg.files)
    for split in splits:
        patterns = cfg.files[split]
        patterns = [patterns] if isinstance(patterns, str) else patterns
        shards = sorted({p for pat in patterns for p in glob.glob(pat)})
        if not shards:
            raise DatasetError(
                name,
                f"no shard matches {patterns} for split {split!r}",
                f"fix datasets.{name}.files",
            )
        for shard in shards:
            try:
                table = pq.read_table(shard)
            except (pa.ArrowException, OSError) as exc:
                raise DatasetError(
                    name,
                    f"shard {display_path(shard)} of split {split!r} is not a readable Parquet file ({arrow_reason(exc)})",
                    f"re-download or rewrite the shard, or drop it from datasets.{name}.files",
                ) from None
            mapped = {k: v for k, v in cols.model_dump().items() if v is not None}
            absent = {k: v for k, v in mapped.items() if v not in table.column_names}
            if absent:
                raise DatasetError(
                    name,
                    f"shard {shard} lacks mapped columns "
                    + ", ".join(f"{k} -> {v!r}" for k, v in absent.items())
                    + f" (columns: {table.column_names})",
                    f"fix datasets.{name}.columns, or map an absent field to null",
                )
            if cfg.metadata_columns == "all":
                meta_cols = [c for c in table.column_names if c not in mapped.values()]
            else:
                meta_cols = [c for c in cfg.metadata_columns if c in table.column_names]
            shard_dir = Path(shard).parent
            for i, row in enumerate(arrow_records(table)):
                audio = row[cols.audio] or {}
                if not isinstance(audio, dict):
                    audio = {
                        "bytes": audio if isinstance(audio, bytes) else None,
                        "path": audio if isinstance(audio, str) else None,
                    }
                blob, path = audio.get("bytes"), audio.get("path")
                if not isinstance(blob, bytes | bytearray):
                    blob = None
                if isinstance(path, bytes | bytearray):
                    path = bytes(path).decode("utf-8", errors="surrogateescape")
                audio_path = None
                if not blob and isinstance(path, str) and path:
                    p = Path(path)
                    audio_path = display_path(p if p.is_absolute() else shard_dir / p)
                text, err = decode_text(row[cols.text])
                candidates.append(
                    Candidate(
                        source=f"{display_path(shard)}:row {i}",
                        item_id=_as_id(row[cols.item_id])
                        if cols.item_id
                        else f"{Path(shard).stem}-{i}",
                        audio_path=audio_path,
                        audio_bytes=bytes(blob) if blob else None,
                        text=text,
                        text_error=err,
                        speaker_id=_as_id(row[cols.speaker_id]) if cols.speaker_id else None,
                        source_split=split,
                        meta={c: row[c] for c in meta_cols},
                    )
                )
    return LoadResult(candidates, [])
