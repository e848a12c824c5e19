"""Generic tables: CSV, TSV, JSONL or Parquet, one row per item, columns mapped in config.

Spreadsheet habits are honoured: a UTF-8 byte-order mark ("CSV UTF-8" in Excel) is
dropped, UTF-16 files (Excel's "Unicode Text") are read by their BOM, CSV cells follow
the usual CSV quoting, and TSV is read literally (a transcript may start with a quote)
except that a cell wholly wrapped in quotes with inner quotes doubled, as spreadsheets
and pandas export a cell that holds quotes or tabs, is unwrapped.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lalm_audit.config import TableDataset
from lalm_audit.errors import DatasetError
from lalm_audit.manifest.base import (
    Candidate,
    LoadResult,
    Rejection,
    arrow_reason,
    arrow_records,
    bad_encoding,
    decode_text,
    display_path,
)

log = logging.getLogger(__name__)

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

# Python's csv module refuses cells over 128 KiB by default; a long transcript is not an
# error, so the limit is raised to what a C long holds on every platform.
_CSV_FIELD_LIMIT = 2**31 - 1

# A TSV cell as spreadsheets export one holding quotes or tabs: "...", inner quotes doubled.
_TSV_QUOTED = re.compile(r'^"((?:[^"]|"")*)"$', re.DOTALL)

# Fields that may be absent from a table when their mapping is the default column name.
_OPTIONAL = ("item_id", "speaker_id", "label", "source_split")


def _format(name: str, cfg: TableDataset) -> str:
    if cfg.format != "auto":
        return cfg.format
    fmt = _FORMATS.get(Path(cfg.path).suffix.lower())
    if fmt is None:
        raise DatasetError(
            name,
            f"cannot tell the format of table {cfg.path!r} from its extension",
            f"set datasets.{name}.format: csv|tsv|jsonl|parquet",
        )
    return fmt


def _text_encoding(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # the codec reads the BOM and drops it
    return "utf-8-sig"  # drops a UTF-8 BOM when there is one


def _read_delimited(
    name: str, cfg: TableDataset, path: Path, fmt: str
) -> tuple[pd.DataFrame, list[Rejection]]:
    bad: list[Rejection] = []
    records: list[dict[str, Any]] = []
    index: list[int] = []
    with open(path, "rb") as fh:
        encoding = _text_encoding(fh.read(4))
    old_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        # Bytes that are not UTF-8 survive as surrogates so that only the rows holding them are rejected.
        with open(path, encoding=encoding, errors="surrogateescape", newline="") as fh:
            if fmt == "csv":
                # strict: a malformed quote is an error (a bad row), never silently merged text
                reader = csv.reader(fh, strict=True)
            else:
                reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header: list[str] | None = None
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    line = start
                    if "unexpected end of data" in str(exc):
                        # An unclosed quote swallows every line after it: no row count
                        # after it could be trusted, so the table stops here.
                        raise DatasetError(
                            name,
                            f"line {start} of {cfg.path!r} opens a quoted cell that is never "
                            f"closed, so lines {start}-{reader.line_num} read as one cell",
                            'close the quote (or double a quote inside a quoted cell: "")',
                        ) from None
                    if header is None:
                        raise DatasetError(
                            name, f"cannot read the header of {cfg.path!r} ({exc})", "fix the file"
                        ) from None
                    bad.append(
                        Rejection(
                            f"{cfg.path}:{line}",
                            None,
                            "bad_row",
                            f"line {line} cannot be parsed ({exc})",
                        )
                    )
                    continue
                if fmt == "tsv":
                    row = [_unquote_tsv(v) for v in row]
                if header is None:
                    if not row or not any(v.strip() for v in row):
                        continue  # blank lines before the header
                    header = [v.strip() for v in row]
                    while header and not header[-1]:
                        header.pop()  # spreadsheets export unused columns as trailing commas
                    for col in header:
                        err = bad_encoding(col, f"column name '{_printable(col)}'")
                        if err:
                            raise DatasetError(
                                name,
                                f"the header of {cfg.path!r}: {err}",
                                "save the table as UTF-8 (in a spreadsheet: 'CSV UTF-8')",
                            )
                    dups = sorted(k for k, n in Counter(header).items() if n > 1)
                    if dups:
                        raise DatasetError(
                            name,
                            f"table {cfg.path!r} has repeated column names {dups}",
                            "give every column a unique name",
                        )
                    continue
                if not row:
                    continue  # a blank line, as csv.DictReader skips it
                line = start
                if len(row) > len(header) and not any(v.strip() for v in row[len(header) :]):
                    row = row[: len(header)]  # empty trailing cells of unused columns
                if len(row) != len(header):
                    bad.append(
                        Rejection(
                            f"{cfg.path}:{line}",
                            None,
                            "bad_row",
                            f"row at line {line} has {len(row)} fields, the header has {len(header)}",
                        )
                    )
                    continue
                records.append(dict(zip(header, row, strict=True)))
                index.append(line)
    finally:
        csv.field_size_limit(old_limit)
    if header is None:
        raise DatasetError(
            name, f"table {cfg.path!r} is empty (no header line)", "write a header line and rows"
        )
    return pd.DataFrame(records, index=index, columns=header, dtype=object), bad


def _unquote_tsv(v: str) -> str:
    m = _TSV_QUOTED.match(v)
    return m.group(1).replace('""', '"') if m else v


def _read_jsonl(cfg: TableDataset, path: Path) -> tuple[pd.DataFrame, list[Rejection]]:
    bad: list[Rejection] = []
    rows: list[dict[str, Any]] = []
    index: list[int] = []
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8", errors="surrogateescape"))
            if not isinstance(rec, dict):
                raise ValueError(f"a JSON {type(rec).__name__}, not an object")
        except (ValueError, RecursionError) as exc:
            bad.append(
                Rejection(
                    f"{cfg.path}:{lineno}",
                    None,
                    "bad_row",
                    f"line {lineno} is not a JSON object ({str(exc)[:200]})",
                )
            )
            continue
        rows.append(rec)
        index.append(lineno)
    # dtype=object keeps each cell as JSON gave it (no int/float coercion across rows).
    return pd.DataFrame(rows, index=index, dtype=object), bad


def _read(name: str, cfg: TableDataset) -> tuple[pd.DataFrame, list[Rejection]]:
    path = Path(cfg.path)
    if not path.is_file():
        raise DatasetError(
            name, f"table file {cfg.path!r} does not exist", f"fix datasets.{name}.path"
        )
    fmt = _format(name, cfg)
    if fmt in ("csv", "tsv"):
        return _read_delimited(name, cfg, path, fmt)
    if fmt == "jsonl":
        return _read_jsonl(cfg, path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DatasetError(
            name,
            f"table {cfg.path!r} is not a readable Parquet file ({arrow_reason(exc)})",
            f"rewrite it (e.g. pandas.DataFrame.to_parquet) or set datasets.{name}.format",
        ) from None
    records = arrow_records(table)
    df = pd.DataFrame(records, columns=table.column_names, dtype=object)
    df.index = df.index + 1
    return df, []


def _effective_mapping(name: str, cfg: TableDataset, columns: list[str]) -> dict[str, str | None]:
    """Field -> column; optional fields left at their default name are dropped when absent."""
    cols = cfg.columns
    mapping: dict[str, str | None] = cols.model_dump()
    for field in _OPTIONAL:
        if field not in cols.model_fields_set and mapping[field] not in columns:
            log.info(
                "dataset %r: no %r column, so %s is not read (set columns.%s to use another column)",
                name,
                mapping[field],
                field,
                field,
            )
            mapping[field] = None
    return mapping


def load_table(name: str, cfg: TableDataset) -> LoadResult:
    df, rejected = _read(name, cfg)
    columns = [str(c) for c in df.columns]
    cols = _effective_mapping(name, cfg, columns)
    mapped = {k: v for k, v in cols.items() if v is not None}
    if len(df) or not rejected:
        absent = {k: v for k, v in mapped.items() if v not in df.columns}
        if absent:
            raise DatasetError(
                name,
                f"the column mapping points to columns table {cfg.path!r} lacks: "
                + ", ".join(f"{k} -> {v!r}" for k, v in absent.items())
                + f" (table columns: {columns})",
                f"fix datasets.{name}.columns (e.g. columns: {{{next(iter(absent))}: <your column>}}), "
                "or map an absent field to null",
            )
    if cfg.role == "audit" and cols["label"] is None and cols["source_split"] is None:
        raise DatasetError(
            name,
            f"table {cfg.path!r} has no label column and no source split column, so no item "
            f"can be labelled (table columns: {columns})",
            f"add a 0/1 'label' column, or set datasets.{name}.columns.label (or .source_split "
            "with member_splits and nonmember_splits) to your column",
        )
    if cfg.metadata_columns == "all":
        meta_cols = [c for c in df.columns if c not in mapped.values()]
    else:
        meta_cols = list(cfg.metadata_columns)
        missing = [c for c in meta_cols if c not in df.columns]
        if missing:
            raise DatasetError(
                name,
                f"metadata_columns {missing} are not in table {cfg.path!r} (columns: {columns})",
                f"fix datasets.{name}.metadata_columns",
            )
    bad_keys = {c for c in meta_cols if bad_encoding(str(c), "a column name")}
    root = Path(cfg.audio_root) if cfg.audio_root else Path(cfg.path).parent
    stem = Path(cfg.path).stem
    out: list[Candidate] = []

    def cell(row: dict[str, Any], field: str) -> Any:
        return row[cols[field]] if cols[field] else None

    for row_no, row in zip(df.index, df.to_dict("records"), strict=True):
        src = f"{cfg.path}:{row_no}"
        item_id = _as_id(row[cols["item_id"]]) if cols["item_id"] else f"{stem}-{row_no}"
        text, text_error = decode_text(row[cols["text"]])
        audio_path, audio_bytes = _audio_ref(row[cols["audio"]], root)
        duration = _float(cell(row, "duration_s"))
        out.append(
            Candidate(
                source=src,
                item_id=item_id,
                audio_path=audio_path,
                audio_bytes=audio_bytes,
                offset_s=_float(cell(row, "offset_s")) if cols["offset_s"] else 0.0,
                duration_s=duration,
                text=text,
                text_error=text_error,
                speaker_id=_as_id(cell(row, "speaker_id")),
                label_raw=_blank_to_none(cell(row, "label")),
                has_label=cols["label"] is not None,
                source_split=_as_id(cell(row, "source_split")),
                # A key with bad bytes (a JSONL field name) is carried only where it holds a
                # value, so validation rejects those rows and no column is named with it.
                meta={
                    c: row[c]
                    for c in meta_cols
                    if c not in bad_keys or _blank_to_none(row[c]) is not None
                },
            )
        )
    return LoadResult(out, rejected)


def _printable(s: str) -> str:
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _blank_to_none(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
        return None
    return v


def _as_id(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bytes | bytearray):  # a binary column: bad bytes are flagged by validation
        v = bytes(v).decode("utf-8", errors="surrogateescape")
    s = str(v).strip()
    return s or None


def _float(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
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
        if isinstance(blob, bytes | bytearray) and blob:
            return None, bytes(blob)
        v = v.get("path")
    if isinstance(v, bytes | bytearray):
        v = bytes(v).decode("utf-8", errors="surrogateescape")
    if not isinstance(v, str) or v.strip() == "":
        return None, None  # absent, or not a path at all (a number, a list): missing_audio
    p = Path(v)
    return display_path(p if p.is_absolute() else root / p), None
