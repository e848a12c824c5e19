"""Turn a loader's candidates into a manifest: every item kept or rejected with its reason."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lalm_audit.audio import AudioSource, decode, peak_dbfs
from lalm_audit.config import AudioConfig, DatasetBase
from lalm_audit.errors import AudioError, DatasetError
from lalm_audit.manifest.base import Candidate, LoadResult, Rejection, bad_encoding
from lalm_audit.schemas import MANIFEST, REJECTED, empty_frame

log = logging.getLogger(__name__)


@dataclass
class ManifestResult:
    kept: pd.DataFrame
    rejected: pd.DataFrame
    summary: dict[str, Any]


def parse_label(raw: Any) -> int | None:
    """1/0 from ints, floats, bools or strings '1'/'0'/'true'/'false'; None if anything else."""
    if isinstance(raw, bool | np.bool_):
        return int(raw)
    if isinstance(raw, int | np.integer) and raw in (0, 1):
        return int(raw)
    if isinstance(raw, float | np.floating) and raw in (0.0, 1.0):
        return int(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("0", "1", "0.0", "1.0", "true", "false"):
        return int(raw.strip().lower() in ("1", "1.0", "true"))
    return None


def _check_audio(c: Candidate, audio: AudioConfig) -> dict[str, Any] | Rejection:
    src: AudioSource | None = c.audio_bytes if c.audio_bytes else c.audio_path
    if src is None:
        return Rejection(c.source, c.item_id, "missing_audio", "no audio path or bytes given")
    if c.duration_s is not None and not (c.duration_s > 0):  # also catches NaN
        return Rejection(
            c.source,
            c.item_id,
            "bad_segment",
            f"segment duration {c.duration_s!r} is not a positive number",
        )
    offset = 0.0 if c.offset_s is None else c.offset_s  # an empty cell: the file's start
    if math.isnan(offset):
        return Rejection(c.source, c.item_id, "bad_segment", "segment offset is not a number")
    try:
        dec = decode(
            src,
            offset_s=offset,
            duration_s=c.duration_s,
            target_sr=audio.sample_rate,
            max_duration_s=audio.max_duration_s,
        )
    except AudioError as exc:
        return Rejection(c.source, c.item_id, exc.code, str(exc))
    dur = dec.source_duration_s
    if dur < audio.min_duration_s:
        return Rejection(
            c.source,
            c.item_id,
            "empty_audio",
            f"clip is {dur:.3f}s long, below audio.min_duration_s={audio.min_duration_s}",
        )
    peak = peak_dbfs(dec.samples)
    if peak < audio.silence_threshold_dbfs:
        return Rejection(
            c.source,
            c.item_id,
            "silent_audio",
            f"peak level {peak:.1f} dBFS is below audio.silence_threshold_dbfs={audio.silence_threshold_dbfs}",
        )
    truncated = dur > audio.max_duration_s
    if truncated and audio.long_clip_policy == "reject":
        return Rejection(
            c.source,
            c.item_id,
            "too_long",
            f"clip is {dur:.2f}s, longer than audio.max_duration_s={audio.max_duration_s}",
        )
    if truncated:
        log.warning(
            "item %s: %.2fs clip truncated to audio.max_duration_s=%.2fs",
            c.item_id,
            dur,
            audio.max_duration_s,
        )
    return {
        "audio_format": dec.info.format,
        "source_duration_s": dur,
        "duration_s": min(dur, audio.max_duration_s),
        "sample_rate": dec.info.sample_rate,
        "channels": dec.info.channels,
        "truncated": truncated,
    }


def validate_candidates(
    name: str,
    cfg: DatasetBase,
    audio: AudioConfig,
    loaded: LoadResult,
    *,
    seed: int,
    workers: int = 1,
) -> ManifestResult:
    """Check every candidate; return kept items, rejected items and a reconciled summary.

    Raises :class:`DatasetError` when what is left cannot be audited
    (one class only, too few items per class).
    """
    rejected: list[Rejection] = list(loaded.rejected)
    seen: dict[str, str] = {}
    pending: list[tuple[Candidate, int]] = []
    for c in loaded.candidates:
        if not c.item_id:
            rejected.append(Rejection(c.source, None, "missing_id", "the item id is empty"))
            continue
        id_error = bad_encoding(c.item_id, "the item id")
        if id_error:
            rejected.append(Rejection(c.source, c.item_id, "bad_field_encoding", id_error))
            continue
        if "__" in c.item_id:
            rejected.append(
                Rejection(c.source, c.item_id, "bad_id", f"item id {c.item_id!r} contains '__'")
            )
            continue
        if c.item_id in seen:
            rejected.append(
                Rejection(
                    c.source,
                    c.item_id,
                    "duplicate_id",
                    f"id {c.item_id!r} already used at {seen[c.item_id]}",
                )
            )
            continue
        seen[c.item_id] = c.source
        empty = c.label_raw is None or (
            isinstance(c.label_raw, float) and c.label_raw != c.label_raw
        )
        if c.has_label and not (empty and cfg.role == "train_pool"):
            label = parse_label(c.label_raw)
            if label is None:
                rejected.append(
                    Rejection(
                        c.source,
                        c.item_id,
                        "bad_label",
                        "the label cell is empty"
                        if empty
                        else f"label {c.label_raw!r} is not 0 or 1",
                    )
                )
                continue
        elif c.source_split in cfg.member_splits:
            label = 1
        elif c.source_split in cfg.nonmember_splits:
            label = 0
        elif cfg.role == "train_pool":
            label = 1
        else:
            rejected.append(
                Rejection(
                    c.source,
                    c.item_id,
                    "split_not_selected",
                    f"source split {c.source_split!r} is in neither member_splits "
                    f"{list(cfg.member_splits)} nor nonmember_splits {list(cfg.nonmember_splits)}",
                )
            )
            continue
        if c.text_error:
            rejected.append(Rejection(c.source, c.item_id, "bad_text_encoding", c.text_error))
            continue
        if not (c.text or "").strip():
            rejected.append(Rejection(c.source, c.item_id, "empty_text", "the transcript is empty"))
            continue
        field_error = _field_encoding_error(c)
        if field_error:
            rejected.append(Rejection(c.source, c.item_id, "bad_field_encoding", field_error))
            continue
        pending.append((c, label))

    with ThreadPoolExecutor(
        max_workers=max(1, workers)
    ) as pool:  # libsndfile and soxr release the GIL
        checks = list(pool.map(lambda cl: _check_audio(cl[0], audio), pending))

    rows: list[dict[str, Any]] = []
    n_truncated = 0
    for (c, label), res in zip(pending, checks, strict=True):
        if isinstance(res, Rejection):
            rejected.append(res)
            continue
        n_truncated += int(res["truncated"])
        rows.append(
            {
                "item_id": c.item_id,
                "dataset": name,
                "audio_path": c.audio_path if c.audio_bytes is None else None,
                "audio_bytes": c.audio_bytes,
                "offset_s": float(c.offset_s or 0.0),
                **res,
                "text": c.text.strip(),
                "speaker_id": c.speaker_id or "unknown",
                "label": label,
                "source_split": c.source_split or "",
                **{f"meta_{k}": v for k, v in c.meta.items()},
            }
        )
    kept = pd.DataFrame(rows) if rows else empty_frame(MANIFEST)
    kept = _json_mixed_metadata(name, kept)
    kept = _subsample(kept, cfg, seed, rejected)
    kept = kept.astype(
        {"label": "int8", "sample_rate": "int32", "channels": "int16", "truncated": bool}
    )

    rej = (
        pd.DataFrame(
            [
                {
                    "dataset": name,
                    "item_id": _printable(r.item_id),
                    "source": _printable(r.source),
                    "reason_code": r.reason_code,
                    "reason": _printable(r.reason),
                }
                for r in rejected
            ]
        )
        if rejected
        else empty_frame(REJECTED)
    )

    n_in = loaded.n_in
    summary = {
        "dataset": name,
        "items_in": n_in,
        "kept": len(kept),
        "rejected": len(rej),
        "kept_members": int((kept["label"] == 1).sum()),
        "kept_nonmembers": int((kept["label"] == 0).sum()),
        "truncated": n_truncated if len(kept) else 0,
        "rejected_by_reason": dict(sorted(Counter(r.reason_code for r in rejected).items())),
    }
    if summary["kept"] + summary["rejected"] != n_in:  # a bug, never bad input
        raise AssertionError(
            f"dataset {name!r}: {n_in} items in but {len(kept)} kept + {len(rej)} rejected"
        )
    _check_usable(name, cfg, summary)
    return ManifestResult(kept, rej, summary)


def _field_encoding_error(c: Candidate) -> str | None:
    """The first non-transcript text field holding bytes that are not UTF-8 (Parquet cannot store them)."""
    fields = {
        "the speaker id": c.speaker_id,
        "the source split": c.source_split,
        "the audio path": c.audio_path,
        **{f"metadata field {k!r}": v for k, v in c.meta.items()},
    }
    for what, value in fields.items():
        err = bad_encoding(value, what)
        if err:
            return err
    for k in c.meta:
        err = bad_encoding(str(k), "a metadata field name")
        if err:
            return err
    return None


def _printable(s: str | None) -> str | None:
    """A string Parquet can store: bytes kept by surrogateescape shown as \\xNN."""
    if s is None:
        return None
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _kind(v: Any) -> str | None:
    """The Arrow-compatible family of a metadata value (ints and floats share one)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, int | float | np.integer | np.floating):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, bytes | bytearray):
        return "bytes"
    return "nested"


def _json_mixed_metadata(name: str, kept: pd.DataFrame) -> pd.DataFrame:
    """Store as JSON strings every metadata column Arrow cannot hold as one type.

    A column that is a string in one row and an object in another (common in JSONL) or
    holds nested values of varying shape would stop the Parquet write; JSON keeps every
    value readable and the column typed.
    """
    for col in [c for c in kept.columns if c.startswith("meta_")]:
        values = kept[col].tolist()
        kinds = {_kind(v) for v in values} - {None}
        if len(kinds) <= 1 and kinds != {"nested"}:
            continue
        if kinds == {"nested"}:
            try:
                pa.array(values)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
                pass
        log.warning(
            "dataset %r: metadata column %r holds values of mixed types (%s); stored as JSON strings",
            name,
            col[len("meta_") :],
            ", ".join(sorted(kinds)),
        )
        kept[col] = [
            None if _kind(v) is None else json.dumps(v, ensure_ascii=False, default=str)
            for v in values
        ]
    return kept


def _subsample(
    kept: pd.DataFrame, cfg: DatasetBase, seed: int, rejected: list[Rejection]
) -> pd.DataFrame:
    if cfg.max_items_per_class is None or kept.empty:
        return kept.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keep_idx: list[int] = []
    for _label, grp in kept.groupby("label", sort=True):
        idx = grp.index.to_numpy()
        if len(idx) > cfg.max_items_per_class:
            chosen = set(rng.choice(idx, size=cfg.max_items_per_class, replace=False).tolist())
            for i in idx:
                if i not in chosen:
                    rejected.append(
                        Rejection(
                            str(kept.at[i, "audio_path"] or kept.at[i, "item_id"]),
                            kept.at[i, "item_id"],
                            "subsampled",
                            f"class {_label} has {len(idx)} items, max_items_per_class={cfg.max_items_per_class}",
                        )
                    )
            idx = np.array(sorted(chosen))
        keep_idx.extend(idx.tolist())
    return kept.loc[sorted(keep_idx)].reset_index(drop=True)


def _check_usable(name: str, cfg: DatasetBase, s: dict[str, Any]) -> None:
    top = ", ".join(
        f"{k}: {v}" for k, v in sorted(s["rejected_by_reason"].items(), key=lambda kv: -kv[1])[:3]
    )
    why = f" (rejections: {top}; see the rejected table)" if top else ""
    if s["kept"] == 0:
        raise DatasetError(
            name,
            f"no item survived validation out of {s['items_in']}{why}",
            "fix the source data or the column mapping",
        )
    if cfg.role != "audit":
        return
    m, n = s["kept_members"], s["kept_nonmembers"]
    if m == 0 or n == 0:
        which = "members" if n == 0 else "non-members"
        raise DatasetError(
            name,
            f"only {which} remain ({m} members, {n} non-members){why}",
            "give both classes: a label column with 0 and 1, or member_splits and nonmember_splits that both exist",
        )
    if min(m, n) < cfg.min_items_per_class:
        raise DatasetError(
            name,
            f"too few items per class ({m} members, {n} non-members; min_items_per_class={cfg.min_items_per_class}){why}",
            "add items, or lower min_items_per_class (statistics on tiny sets are not meaningful)",
        )
