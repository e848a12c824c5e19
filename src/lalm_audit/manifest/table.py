"""Generic tables: CSV, TSV, JSONL or Parquet, one row per item, columns mapped in config."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from lalm_audit.config import TableDataset
from lalm_audit.errors import DatasetError
from lalm_audit.manifest.base import Candidate, LoadResult, Rejection, decode_text, display_path

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


def _format(name: str, cfg: TableDataset) -> str:
    if cfg.format != "auto":
        return cfg.format
    fmt = _FORMATS.get(Path(cfg.path).suffix.lower())
    if fmt is None:
        raise DatasetError(
            name,
            f"cannot tell the format of table {cfg.path!r} from its extension",
            "set format: csv|tsv|jsonl|parquet",
        )
    return fmt


def _read(name: str, cfg: TableDataset) -> tuple[pd.DataFrame, list[Rejection]]:
    path = Path(cfg.path)
    if not path.is_file():
        raise DatasetError(
            name, f"table file {cfg.path!r} does not exist", "fix datasets.<name>.path"
        )
    fmt = _format(name, cfg)
    bad: list[Rejection] = []
    if fmt in ("csv", "tsv"):
        # Bytes that are not UTF-8 survive as surrogates so that only the rows holding them are rejected.
        records: list[dict[str, Any]] = []
        index: list[int] = []
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="," if fmt == "csv" else "\t")
            for rec in reader:
                where = f"{cfg.path}:{reader.line_num}"
                if None in rec or any(v is None for v in rec.values()):
                    bad.append(
                        Rejection(
                            where,
                            None,
                            "bad_row",
                            f"row at line {reader.line_num} has the wrong number of fields",
                        )
                    )
                    continue
                records.append(rec)
                index.append(reader.line_num)
        df = pd.DataFrame(records, index=index, columns=reader.fieldnames or [], dtype=object)
    elif fmt == "jsonl":
        rows: list[dict[str, Any]] = []
        index: list[int] = []
        for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8", errors="surrogateescape"))
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                bad.append(
                    Rejection(
                        f"{cfg.path}:{lineno}",
                        None,
                        "bad_row",
                        f"line {lineno} is not a JSON object ({exc})",
                    )
                )
                continue
            rows.append(rec)
            index.append(lineno)
        df = pd.DataFrame(rows, index=index, dtype=object)
    else:
        df = pd.read_parquet(path)
        df.index = df.index + 1
    return df, bad


def load_table(name: str, cfg: TableDataset) -> LoadResult:
    df, rejected = _read(name, cfg)
    cols = cfg.columns
    mapped = {k: v for k, v in cols.model_dump().items() if v is not None}
    if len(df) or not rejected:
        absent = {k: v for k, v in mapped.items() if v not in df.columns}
        if absent:
            raise DatasetError(
                name,
                "the column mapping points to columns the table lacks: "
                + ", ".join(f"{k} -> {v!r}" for k, v in absent.items())
                + f" (table columns: {list(df.columns)})",
                "fix datasets.<name>.columns, or map an absent field to null",
            )
    if cfg.metadata_columns == "all":
        meta_cols = [c for c in df.columns if c not in mapped.values()]
    else:
        meta_cols = list(cfg.metadata_columns)
        missing = [c for c in meta_cols if c not in df.columns]
        if missing:
            raise DatasetError(
                name, f"metadata_columns {missing} are not in the table", "fix metadata_columns"
            )
    root = Path(cfg.audio_root) if cfg.audio_root else Path(cfg.path).parent
    stem = Path(cfg.path).stem
    out: list[Candidate] = []
    for row_no, row in zip(df.index, df.to_dict("records"), strict=True):
        src = f"{cfg.path}:{row_no}"
        item_id = _as_id(row[cols.item_id]) if cols.item_id else f"{stem}-{row_no}"
        text, text_error = decode_text(row[cols.text])
        audio_path, audio_bytes = _audio_ref(row[cols.audio], root)
        out.append(
            Candidate(
                source=src,
                item_id=item_id,
                audio_path=audio_path,
                audio_bytes=audio_bytes,
                offset_s=_float(row[cols.offset_s]) if cols.offset_s else 0.0,
                duration_s=_float(row[cols.duration_s]) if cols.duration_s else None,
                text=text,
                text_error=text_error,
                speaker_id=_as_id(row[cols.speaker_id]) if cols.speaker_id else None,
                label_raw=row[cols.label] if cols.label else None,
                source_split=_as_id(row[cols.source_split]) if cols.source_split else None,
                meta={c: row[c] for c in meta_cols},
            )
        )
    return LoadResult(out, rejected)


def _as_id(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    s = str(v).strip()
    return s or None


def _float(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")  # flagged as bad_segment by validation
    return None if f != f and not isinstance(v, str) else f


def _audio_ref(v: Any, root: Path) -> tuple[str | None, bytes | None]:
    """A path string, or an HF-style {bytes, path} struct (bytes win when present)."""
    if isinstance(v, dict):
        blob = v.get("bytes")
        if blob:
            return None, bytes(blob)
        v = v.get("path")
    if v is None or (isinstance(v, float) and v != v) or str(v).strip() == "":
        return None, None
    p = Path(str(v))
    return display_path(p if p.is_absolute() else root / p), None
