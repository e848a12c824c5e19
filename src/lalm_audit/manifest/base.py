"""What loaders produce: candidate items and recorded rejections."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

#: Every rejection reason code, with the fix a user should apply.
REASONS: dict[str, str] = {
    "bad_row": "the row cannot be parsed (malformed JSON or CSV); fix the row in the source table",
    "missing_id": "the row has no item id; fill the id column or map columns.item_id to null to derive ids",
    "duplicate_id": "the item id was already used by an earlier row (or a second source line "
    "names the same item); make ids unique or drop the repeated line",
    "bad_id": "the item id contains '__', which separates derived items ('<item>__<condition>'); "
    "rename the item (or map columns.item_id to null to derive ids)",
    "bad_label": "the label is not 0 or 1; use 1 for members and 0 for non-members",
    "split_not_selected": "the item's source split is in neither member_splits nor nonmember_splits; add it to one",
    "bad_text_encoding": "the transcript is not valid UTF-8; re-encode the source as UTF-8",
    "bad_field_encoding": "a text field other than the transcript (id, speaker, split, audio path "
    "or metadata) is not valid UTF-8; re-encode the source as UTF-8",
    "empty_text": "the transcript is empty; drop the item or supply its transcript",
    "missing_text": "no transcript line exists for this audio file; add it to the transcript file",
    "missing_audio": "the audio file does not exist; fix the path or audio_root",
    "unreadable_audio": "the audio cannot be decoded (corrupt or unsupported); re-encode it as WAV or FLAC",
    "empty_audio": "the audio holds no samples (or fewer than audio.min_duration_s); drop or replace the file",
    "silent_audio": "the audio is silent (peak below audio.silence_threshold_dbfs); drop or replace the file",
    "bad_segment": "offset/duration point outside the audio file; fix the segment columns",
    "too_long": "the clip is longer than audio.max_duration_s and long_clip_policy is 'reject'; "
    "raise max_duration_s, cut the clip, or use long_clip_policy 'truncate'",
    "perturbation_failed": "the perturbation could not be applied to this item (see the reason); check its audio",
    "subsampled": "not drawn by the balanced subsample (max_items_per_class); raise max_items_per_class to keep it",
}


@dataclass
class Candidate:
    """One source row before validation. ``text`` is None when it could not be decoded."""

    source: str
    item_id: str | None
    audio_path: str | None = None
    audio_bytes: bytes | None = None
    offset_s: float | None = 0.0  # None (an empty cell): the file's start
    duration_s: float | None = None
    text: str | None = None
    text_error: str | None = None  # set when the transcript could not be decoded
    speaker_id: str | None = None
    label_raw: Any = None
    has_label: bool = False  # the source maps a label column: an empty cell is a bad label
    source_split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rejection:
    source: str
    item_id: str | None
    reason_code: str
    detail: str

    def __post_init__(self) -> None:
        if self.reason_code not in REASONS:
            raise ValueError(f"unknown rejection reason code {self.reason_code!r}")

    @property
    def reason(self) -> str:
        return f"{self.detail}; fix: {REASONS[self.reason_code]}"


@dataclass
class LoadResult:
    """What a loader read: candidates, rows it already rejected, and how many rows it saw."""

    candidates: list[Candidate]
    rejected: list[Rejection]

    @property
    def n_in(self) -> int:
        return len(self.candidates) + len(self.rejected)


def _surrogate_at(text: str) -> int | None:
    """Position of the first byte that ``surrogateescape`` kept from a non-UTF-8 source."""
    return next((i for i, ch in enumerate(text) if "\udc80" <= ch <= "\udcff"), None)


def decode_text(raw: Any, what: str = "transcript") -> tuple[str | None, str | None]:
    """(text, error): text decoded as UTF-8, or an error message naming the bad bytes."""
    if raw is None:
        return "", None
    if isinstance(raw, bytes | bytearray):
        try:
            return bytes(raw).decode("utf-8"), None
        except UnicodeDecodeError as exc:
            return (
                None,
                f"{what} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start})",
            )
    if isinstance(raw, float) and raw != raw:  # NaN: an empty cell
        return "", None
    text = str(raw)
    pos = _surrogate_at(text)
    if pos is not None:  # surrogateescape'd bytes from a non-UTF-8 file
        return (
            None,
            f"{what} is not valid UTF-8 (byte 0x{ord(text[pos]) - 0xDC00:02x} at position {pos})",
        )
    return text, None


def bad_encoding(value: Any, what: str) -> str | None:
    """Why ``value`` (a string, bytes, or a JSON-like nest of them) is not valid UTF-8, or None."""
    if isinstance(value, str):
        pos = _surrogate_at(value)
        if pos is None:
            return None
        return (
            f"{what} is not valid UTF-8 (byte 0x{ord(value[pos]) - 0xDC00:02x} at position {pos})"
        )
    if isinstance(value, dict):
        for k, v in value.items():
            err = bad_encoding(k, f"a key of {what}") or bad_encoding(v, f"{what}.{k}")
            if err:
                return err
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            err = bad_encoding(v, f"{what}[{i}]")
            if err:
                return err
    return None


def _invalid_string_columns(table: pa.Table) -> list[str]:
    """String columns holding bytes that are not UTF-8 (writers other than Arrow allow them)."""
    bad = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            try:
                col.validate(full=True)
            except pa.ArrowInvalid:
                bad.append(name)
    return bad


def arrow_records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts; a string column with non-UTF-8 bytes gives surrogate-escaped strings.

    Converting such a column directly raises for the whole table; read as bytes and
    decoded cell by cell, only the rows holding bad bytes are rejected (by validation).
    """
    bad = _invalid_string_columns(table)
    for name in bad:
        i = table.column_names.index(name)
        binary = (
            pa.binary() if pa.types.is_string(table.schema.field(i).type) else pa.large_binary()
        )
        col = pa.chunked_array([c.view(binary) for c in table.column(i).chunks], type=binary)
        table = table.set_column(i, name, col)
    rows = table.to_pylist()
    for row in rows:
        for name in bad:
            if isinstance(row[name], bytes):
                row[name] = row[name].decode("utf-8", errors="surrogateescape")
    return rows


def arrow_reason(exc: Exception) -> str:
    """Arrow's reason for a failed read, without the '<Buffer>' it names instead of the file."""
    return str(exc).replace("Could not open Parquet input source '<Buffer>': ", "").strip()


def display_path(path: str | os.PathLike[str]) -> str:
    """A path relative to the working directory when inside it (portable manifests), else absolute."""
    p = Path(path).absolute()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)
