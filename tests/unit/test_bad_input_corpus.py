"""A corpus of bad and awkward inputs, generated here, run through all three loaders.

Every item must be kept or rejected with the reason code expected for it (items in =
kept + rejected, duplicate source lines included), the manifests must be writable to
Parquet whatever their bytes, and every dataset-level problem must stop with one
message that names the file or dataset, the problem and the fix.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from lalm_audit import cli
from lalm_audit.config import load_config, parse_config
from lalm_audit.errors import ConfigError, DatasetError
from lalm_audit.io import read_table
from lalm_audit.manifest import REASONS, build_manifest, run_manifest
from tests.conftest import sine, write

N_GOOD = 3  # per class; min_items_per_class is 2 so every corpus stays auditable
AUDIO = {"max_duration_s": 2.0, "long_clip_policy": "truncate", "min_duration_s": 0.1}


# --------------------------------------------------------------------------- awkward audio


def lying_flac(seconds: float = 1.0, sr: int = 16000) -> bytes:
    """A real FLAC whose STREAMINFO claims 2^36 - 1 samples (~50 days at 16 kHz)."""
    buf = io.BytesIO()
    sf.write(buf, sine(300, dur=seconds, sr=sr), sr, format="FLAC", subtype="PCM_16")
    b = bytearray(buf.getvalue())
    assert b[:4] == b"fLaC"
    # STREAMINFO starts at byte 8; total samples are the low 36 bits of bytes 18..25.
    v = int.from_bytes(b[18:26], "big") | ((1 << 36) - 1)
    b[18:26] = v.to_bytes(8, "big")
    return bytes(b)


def one_hz_wav() -> bytes:
    """A 32 kB WAV whose header says 1 Hz: 16,000 "seconds" of samples."""
    buf = io.BytesIO()
    sf.write(buf, np.full(16000, 0.3, np.float32), 1, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def audio_files(root: Path) -> dict[str, str]:
    """Name -> path (relative to root) of every awkward clip the corpora point at."""
    files = {}
    for i in range(2 * N_GOOD):
        write(root / "audio" / f"g{i}.wav", sine(200 + 20 * i, dur=0.5))
        files[f"g{i}"] = f"audio/g{i}.wav"
    (root / "audio" / "lying.flac").write_bytes(lying_flac())
    (root / "audio" / "onehz.wav").write_bytes(one_hz_wav())
    write(root / "audio" / "long.wav", sine(dur=3.0))
    write(root / "audio" / "silent.wav", np.zeros(8000, np.float32))
    (root / "audio" / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    (root / "audio" / "zero.wav").write_bytes(b"")
    files |= {
        k: f"audio/{k}.{ext}"
        for k, ext in [
            ("lying", "flac"),
            ("onehz", "wav"),
            ("long", "wav"),
            ("silent", "wav"),
            ("corrupt", "wav"),
            ("zero", "wav"),
        ]
    }
    return files


def check(
    res,
    n_in: int,
    kept: set[str],
    rejected: dict[str, str],
    *,
    by_source: dict[str, str] | None = None,
):
    """Exactly these items kept, exactly these rejected (by id, or by source when id-less)."""
    by_source = by_source or {}
    assert res.summary["items_in"] == n_in
    assert res.summary["kept"] + res.summary["rejected"] == n_in
    assert len(res.kept) + len(res.rejected) == n_in
    assert set(res.kept["item_id"]) == kept
    with_id = res.rejected[
        res.rejected["item_id"].notna() & ~res.rejected["source"].isin(by_source)
    ]
    got = sorted(zip(with_id["item_id"], with_id["reason_code"], strict=True))
    assert got == sorted(rejected.items())
    no_id = res.rejected[res.rejected["source"].isin(by_source)]
    assert dict(zip(no_id["source"], no_id["reason_code"], strict=True)) == by_source
    assert set(res.rejected["reason_code"]) <= set(REASONS)
    assert res.rejected["reason"].str.contains("fix:").all()


def write_and_read(cfg_dict: dict, name: str, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The real stage: writing Parquet is where bad bytes used to crash."""
    summary = run_manifest(
        parse_config(cfg_dict),
        name,
        out / f"{name}.parquet",
        out / f"{name}.rejected.parquet",
        out / f"{name}.summary.json",
    )
    assert summary["kept"] + summary["rejected"] == summary["items_in"]
    return read_table(out / f"{name}.parquet"), read_table(out / f"{name}.rejected.parquet")


# --------------------------------------------------------------------------- tables

HEADER = ["id", "path", "text", "speaker", "label", "offset", "note"]
TABLE_COLUMNS = {
    "item_id": "id",
    "audio": "path",
    "text": "text",
    "speaker_id": "speaker",
    "label": "label",
    "source_split": None,
    "offset_s": "offset",
}


def table_rows(files: dict[str, str]) -> tuple[list[list[bytes]], set[str], dict, dict]:
    """CSV/TSV rows as raw byte cells, with what must happen to each."""
    good = [
        [f"g{i}", files[f"g{i}"], f"good item {i}", f"s{i % 2}", str(i % 2), "0", "n"]
        for i in range(2 * N_GOOD)
    ]
    rows = [[c.encode() for c in r] for r in good]
    kept = {f"g{i}" for i in range(2 * N_GOOD)}
    g0 = files["g0"].encode()
    cases: list[tuple[list[bytes], str | None]] = [
        # a cell over Python's default CSV field limit (128 KiB): a long transcript, kept
        ([b"huge", g0, b"word " * 40_000, b"s0", b"1", b"0", b"n"], None),
        ([b"spk_latin1", g0, b"fine", b"Jos\xe9", b"1", b"0", b"n"], "bad_field_encoding"),
        ([b"meta_latin1", g0, b"fine", b"s0", b"1", b"0", b"caf\xe9"], "bad_field_encoding"),
        ([b"text_latin1", g0, b"caf\xe9", b"s0", b"1", b"0", b"n"], "bad_text_encoding"),
        (
            [b"path_latin1", b"audio/\xe9.wav", b"fine", b"s0", b"1", b"0", b"n"],
            "bad_field_encoding",
        ),
        ([b"empty_offset", g0, b"fine", b"s0", b"0", b"", b"n"], None),
        ([b"word_offset", g0, b"fine", b"s0", b"0", b"soon", b"n"], "bad_segment"),
        ([b"late_offset", g0, b"fine", b"s0", b"0", b"9", b"n"], "bad_segment"),
        ([b"empty_label", g0, b"fine", b"s0", b"", b"0", b"n"], "bad_label"),
        ([b"two_label", g0, b"fine", b"s0", b"2", b"0", b"n"], "bad_label"),
        ([b"float_label", g0, b"fine", b"s0", b"1.0", b"0", b"n"], None),
        ([b"a__b", g0, b"fine", b"s0", b"1", b"0", b"n"], "bad_id"),
        ([b"g1", g0, b"fine", b"s0", b"1", b"0", b"n"], "duplicate_id"),
        ([b"no_text", g0, b"   ", b"s0", b"1", b"0", b"n"], "empty_text"),
        ([b"lying", files["lying"].encode(), b"fine", b"s0", b"1", b"0", b"n"], None),
        ([b"onehz", files["onehz"].encode(), b"fine", b"s0", b"1", b"0", b"n"], "unreadable_audio"),
        ([b"long", files["long"].encode(), b"fine", b"s0", b"0", b"0", b"n"], None),
        ([b"silent", files["silent"].encode(), b"fine", b"s0", b"0", b"0", b"n"], "silent_audio"),
        (
            [b"corrupt", files["corrupt"].encode(), b"fine", b"s0", b"0", b"0", b"n"],
            "unreadable_audio",
        ),
        ([b"zero", files["zero"].encode(), b"fine", b"s0", b"0", b"0", b"n"], "empty_audio"),
        ([b"nofile", b"audio/none.wav", b"fine", b"s0", b"0", b"0", b"n"], "missing_audio"),
        ([b"nopath", b"", b"fine", b"s0", b"0", b"0", b"n"], "missing_audio"),
    ]
    rejected = {}
    for row, code in cases:
        rows.append(row)
        item = row[0].decode()
        if code is None:
            kept.add(item)
        else:
            rejected[item] = code
    return rows, kept, rejected, {}


def _csv_cell(c: bytes) -> bytes:
    return b'"' + c.replace(b'"', b'""') + b'"' if any(x in c for x in b',"\n') else c


@pytest.mark.parametrize("bom", [False, True], ids=["plain", "excel_bom"])
def test_csv_corpus(in_tmp, bom, caplog):
    files = audio_files(in_tmp)
    rows, kept, rejected, _ = table_rows(files)
    lines = [b",".join(h.encode() for h in HEADER)]
    lines += [b",".join(_csv_cell(c) for c in r) for r in rows]
    lines.append(b"short_row,only-two")  # wrong number of fields: no id can be trusted
    n_lines = len(lines)
    table = in_tmp / "items.csv"
    table.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\r\n".join(lines) + b"\r\n")
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "t": {
                "loader": "table",
                "path": str(table),
                "columns": TABLE_COLUMNS,
                "min_items_per_class": 2,
            }
        },
    }
    res = build_manifest(parse_config(cfg), "t")
    check(res, n_lines - 1, kept, rejected, by_source={f"{table}:{n_lines}": "bad_row"})
    k = res.kept.set_index("item_id")
    assert len(k.loc["huge", "text"]) == len(("word " * 40_000).strip())
    assert k.loc["empty_offset", "offset_s"] == 0.0
    assert k.loc["float_label", "label"] == 1
    # the lying header is read to its real end (1 s), not trusted (~50 days)
    assert k.loc["lying", "source_duration_s"] == pytest.approx(1.0)
    assert not k.loc["lying", "truncated"]
    assert k.loc["long", "truncated"] and k.loc["long", "duration_s"] == 2.0
    assert k.loc["long", "source_duration_s"] == pytest.approx(3.0)
    rej = res.rejected.set_index("item_id")
    assert (
        "0xe9" in rej.loc["spk_latin1", "reason"] and "speaker" in rej.loc["spk_latin1", "reason"]
    )
    assert "'note'" in rej.loc["meta_latin1", "reason"]
    assert "audio path" in rej.loc["path_latin1", "reason"]
    assert "empty" in rej.loc["empty_label", "reason"]
    assert "1 Hz" in rej.loc["onehz", "reason"]
    kept_df, rej_df = write_and_read(cfg, "t", in_tmp / "out")
    assert len(kept_df) == len(kept) and len(rej_df) == len(rejected) + 1


def test_tsv_corpus_reads_cells_as_spreadsheets_write_them(in_tmp):
    files = audio_files(in_tmp)
    rows, kept, rejected, _ = table_rows(files)
    quoted_texts = {
        "q_lead": b'"Hello," she said.',  # a literal quote: never eaten by CSV rules
        "q_export": b'"""Hi,"" he said."',  # how spreadsheets export a cell holding quotes
        "q_plain": b'it is "fine"',
    }
    for item, text in quoted_texts.items():
        rows.append([item.encode(), files["g0"].encode(), text, b"s0", b"1", b"0", b"n"])
        kept.add(item)
    lines = [b"\t".join(h.encode() for h in HEADER)] + [b"\t".join(r) for r in rows]
    table = in_tmp / "items.tsv"
    table.write_bytes(b"\n".join(lines) + b"\n")
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "t": {
                "loader": "table",
                "path": str(table),
                "columns": TABLE_COLUMNS,
                "min_items_per_class": 2,
            }
        },
    }
    res = build_manifest(parse_config(cfg), "t")
    check(res, len(rows), kept, rejected)
    k = res.kept.set_index("item_id")
    assert k.loc["q_lead", "text"] == '"Hello," she said.'
    assert k.loc["q_export", "text"] == '"Hi," he said.'
    assert k.loc["q_plain", "text"] == 'it is "fine"'
    write_and_read(cfg, "t", in_tmp / "out")


def test_utf16_tsv_as_excel_unicode_text(in_tmp):
    files = audio_files(in_tmp)
    lines = ["\t".join(HEADER)] + [
        "\t".join([f"g{i}", files[f"g{i}"], f"crème {i}", "s", str(i % 2), "0", "n"])
        for i in range(2 * N_GOOD)
    ]
    table = in_tmp / "items.tsv"
    table.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))  # BOM + UTF-16LE
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "t": {
                "loader": "table",
                "path": str(table),
                "columns": TABLE_COLUMNS,
                "min_items_per_class": 2,
            }
        },
    }
    res = build_manifest(parse_config(cfg), "t")
    check(res, 2 * N_GOOD, {f"g{i}" for i in range(2 * N_GOOD)}, {})
    assert res.kept.set_index("item_id").loc["g3", "text"] == "crème 3"


def test_jsonl_corpus(in_tmp, caplog):
    files = audio_files(in_tmp)
    recs: list[bytes] = []
    kept, rejected, by_source = set(), {}, {}

    def add(rec: dict | bytes, code: str | None, item: str | None = None) -> None:
        recs.append(rec if isinstance(rec, bytes) else json.dumps(rec).encode())
        if item is None and isinstance(rec, dict):
            item = rec.get("id")
        if code is None:
            kept.add(item)
        elif item is None:
            by_source[f"{in_tmp / 'items.jsonl'}:{len(recs)}"] = code
        else:
            rejected[item] = code

    for i in range(2 * N_GOOD):
        # metadata: a string in some rows and an object in others (crashed Arrow)
        info = f"plain {i}" if i % 2 else {"mic": "usb", "gain": i}
        add(
            {
                "id": f"g{i}",
                "path": files[f"g{i}"],
                "text": f"t {i}",
                "label": i % 2,
                "speaker": f"s{i}",
                "info": info,
                "offset": None,
            },
            None,
        )
    base = {"path": files["g0"], "text": "fine", "speaker": "s0", "info": "x"}
    add({**base, "id": "null_label", "label": None}, "bad_label")
    add({**base, "id": "no_label_key"}, "bad_label")
    add({**base, "id": "true_label", "label": True}, None)
    add({**base, "id": "list_label", "label": [1]}, "bad_label")
    add({**base, "id": "num_id_text", "label": 1, "text": 12345}, None)
    add({**base, "id": None, "label": 1}, "missing_id", item=None)
    add({**base, "id": "x__y", "label": 1}, "bad_id")
    add({**base, "id": "path_is_number", "label": 1, "path": 7}, "missing_audio")
    add({**base, "id": "bad_duration", "label": 0, "duration": -1}, "bad_segment")
    add(
        b'{"id": "spk_bytes", "path": "' + files["g0"].encode() + b'", "text": "ok", '
        b'"label": 0, "speaker": "M\xfcller", "info": "x"}',
        "bad_field_encoding",
        "spk_bytes",
    )
    add(
        b'{"id": "nested_bytes", "path": "' + files["g0"].encode() + b'", "text": "ok", '
        b'"label": 0, "speaker": "s", "info": {"k": "\xff"}}',
        "bad_field_encoding",
        "nested_bytes",
    )
    add(
        b'{"id": "bad_key", "path": "' + files["g0"].encode() + b'", "text": "ok", '
        b'"label": 0, "speaker": "s", "info": "x", "caf\xe9": 1}',
        "bad_field_encoding",
        "bad_key",
    )
    add(b"{not json", "bad_row")
    add(b"[1, 2, 3]", "bad_row")
    add(b'"just a string"', "bad_row")
    table = in_tmp / "items.jsonl"
    table.write_bytes(b"\xef\xbb\xbf" + b"\n".join(recs) + b"\n\n")
    cols = {**TABLE_COLUMNS, "offset_s": "offset", "duration_s": "duration"}
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "j": {"loader": "table", "path": str(table), "columns": cols, "min_items_per_class": 2}
        },
    }
    with caplog.at_level(logging.WARNING):
        res = build_manifest(parse_config(cfg), "j")
    check(res, len(recs), kept, rejected, by_source=by_source)
    assert "'info'" in caplog.text and "JSON strings" in caplog.text
    k = res.kept.set_index("item_id")
    assert json.loads(k.loc["g0", "meta_info"]) == {"mic": "usb", "gain": 0}
    assert json.loads(k.loc["g1", "meta_info"]) == "plain 1"
    assert k.loc["num_id_text", "text"] == "12345"
    kept_df, _ = write_and_read(cfg, "j", in_tmp / "out")
    assert kept_df["meta_info"].map(type).eq(str).all()


def test_parquet_table_corpus(in_tmp):
    files = audio_files(in_tmp)
    rows = [
        {
            "id": f"g{i}",
            "path": files[f"g{i}"],
            "text": f"t {i}",
            "label": i % 2,
            "speaker": f"s{i}".encode(),
            "offset": None,
        }
        for i in range(2 * N_GOOD)
    ]
    rows += [
        {
            "id": "spk_bin",
            "path": files["g0"],
            "text": "ok",
            "label": 1,
            "speaker": b"\xff\xfe",
            "offset": 0.0,
        },
        {
            "id": "text_null",
            "path": files["g0"],
            "text": None,
            "label": 1,
            "speaker": b"s",
            "offset": 0.0,
        },
        {
            "id": "label_null",
            "path": files["g0"],
            "text": "ok",
            "label": None,
            "speaker": b"s",
            "offset": 0.0,
        },
        {
            "id": "lying",
            "path": files["lying"],
            "text": "ok",
            "label": 0,
            "speaker": b"s",
            "offset": None,
        },
    ]
    base = {"path": files["g0"], "label": 0, "speaker": b"s", "offset": 0.0}
    rows += [
        {**base, "id": "text_latin1", "text": b"caf\xe9"},
        {**base, "id": "note_latin1", "text": "ok", "note": b"\xe9t\xe9"},
    ]
    for r in rows:
        r["text"] = r["text"].encode() if isinstance(r["text"], str) else r["text"]
        r.setdefault("note", b"fine")
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("path", pa.string()),
            ("text", pa.binary()),
            ("label", pa.int64()),
            ("speaker", pa.binary()),
            ("offset", pa.float64()),
            ("note", pa.binary()),
        ]
    )
    t = pa.Table.from_pylist(rows, schema=schema)
    # String columns holding bytes that are not UTF-8, as writers other than Arrow produce
    # them (Arrow itself refuses to convert such a column to Python or pandas).
    for name in ("text", "note"):
        i = t.column_names.index(name)
        t = t.set_column(i, name, pa.chunked_array([c.view(pa.string()) for c in t[name].chunks]))
    assert t.schema.field("note").type == pa.string()
    table = in_tmp / "items.parquet"
    pq.write_table(t, table)
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "p": {
                "loader": "table",
                "path": str(table),
                "columns": TABLE_COLUMNS,
                "min_items_per_class": 2,
            }
        },
    }
    res = build_manifest(parse_config(cfg), "p")
    check(
        res,
        len(rows),
        {f"g{i}" for i in range(2 * N_GOOD)} | {"lying"},
        {
            "spk_bin": "bad_field_encoding",
            "text_null": "empty_text",
            "label_null": "bad_label",
            "text_latin1": "bad_text_encoding",
            "note_latin1": "bad_field_encoding",
        },
    )
    assert res.kept.set_index("item_id").loc["g3", "speaker_id"] == "s3"
    assert set(res.kept["meta_note"]) == {"fine"}
    write_and_read(cfg, "p", in_tmp / "out")


# --------------------------------------------------------------------------- librispeech


def test_librispeech_corpus(in_tmp):
    root = in_tmp / "LS"
    kept, rejected = set(), {}
    for split, label_spk in (("train-clean-100", "19"), ("test-clean", "61")):
        chap = root / split / label_spk / "7"
        lines = []
        for u in range(N_GOOD):
            utt = f"{label_spk}-7-{u:04d}"
            write(chap / f"{utt}.flac", sine(180 + 30 * u, dur=0.5))
            lines.append(f"{utt} GOOD WORDS {u}".encode())
            kept.add(utt)
        (chap / f"{label_spk}-7.trans.txt").write_bytes(b"\n".join(lines) + b"\n")
    chap = root / "train-clean-100" / "19" / "8"
    for u in range(6):
        write(chap / f"19-8-{u:04d}.flac", sine(250, dur=0.5))
    (chap / "19-8-0005.flac").write_bytes(lying_flac())
    write(chap / "19-8-0009.flac", sine(250, dur=0.5))  # audio without a transcript line
    trans = [
        b"19-8-0000 FIRST LINE",
        b"19-8-0000 A SECOND LINE FOR THE SAME UTTERANCE",  # used to vanish silently
        b"19-8-0001 CAF\xc9 NOT UTF-8",
        b"19-8-0002",  # no words
        b"19-8-0003 FINE WORDS",
        b"19-8-00\xff4 BAD BYTES IN THE ID",
        b"19-8-0005 LYING HEADER",
        b"19-8-0007 A LINE WITHOUT AUDIO",
        b"",
    ]
    (chap / "19-8.trans.txt").write_bytes(b"\r\n".join(trans))
    kept |= {"19-8-0000", "19-8-0003", "19-8-0005"}
    rejected |= {
        "19-8-0001": "bad_text_encoding",
        "19-8-0002": "empty_text",
        "19-8-00\\xff4": "bad_field_encoding",
        "19-8-0007": "missing_audio",
        "19-8-0009": "missing_text",
    }
    # 19-8-0004 has audio but its line's id is broken: it has no transcript line either
    rejected["19-8-0004"] = "missing_text"
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "ls": {
                "loader": "librispeech",
                "root": str(root),
                "member_splits": ["train-clean-100"],
                "nonmember_splits": ["test-clean"],
                "min_items_per_class": 2,
            }
        },
    }
    res = build_manifest(parse_config(cfg), "ls")
    rejected["19-8-0000"] = "duplicate_id"  # the second line: kept in the rejected table
    n_in = 2 * N_GOOD + 8 + 2  # every non-blank line plus the two audio files without one
    check(res, n_in, kept, rejected)
    dup = res.rejected[res.rejected["reason_code"] == "duplicate_id"]
    assert dup["source"].iloc[0].endswith("19-8.trans.txt:2")
    k = res.kept.set_index("item_id")
    assert k.loc["19-8-0000", "text"] == "FIRST LINE"  # the first line wins, the second is recorded
    assert k.loc["19-8-0005", "source_duration_s"] == pytest.approx(1.0)
    write_and_read(cfg, "ls", in_tmp / "out")


# --------------------------------------------------------------------------- hf parquet

HF_AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def test_hf_parquet_corpus(in_tmp, caplog):
    good = {
        i: write(in_tmp / "src" / f"{i}.wav", sine(200 + 40 * i, dur=0.5), 22050).read_bytes()
        for i in range(N_GOOD)
    }
    write(in_tmp / "data" / "ext.flac", sine(dur=0.5))

    def shard(path: Path, rows: list[dict], tag_type: pa.DataType) -> None:
        schema = pa.schema(
            [
                ("audio", HF_AUDIO),
                ("text", pa.string()),
                ("id", pa.string()),
                ("speaker_id", pa.int64()),
                ("tag", tag_type),
            ]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)

    train = [
        {
            "audio": {"bytes": good[i], "path": None},
            "text": f"tr {i}",
            "id": f"tr{i}",
            "speaker_id": i,
            "tag": i,
        }
        for i in range(N_GOOD)
    ]
    train += [
        {
            "audio": {"bytes": lying_flac(), "path": "x.flac"},
            "text": "ok",
            "id": "lying",
            "speaker_id": 1,
            "tag": 1,
        },
        {
            "audio": {"bytes": b"garbage" * 30, "path": "g.wav"},
            "text": "ok",
            "id": "garbage",
            "speaker_id": 1,
            "tag": 1,
        },
        {"audio": None, "text": "ok", "id": "no_audio", "speaker_id": 1, "tag": 1},
        {
            "audio": {"bytes": None, "path": "ext.flac"},
            "text": "ok",
            "id": "by_path",
            "speaker_id": 1,
            "tag": 1,
        },
        {
            "audio": {"bytes": good[0], "path": None},
            "text": "ok",
            "id": "a__b",
            "speaker_id": 1,
            "tag": 1,
        },
        {
            "audio": {"bytes": good[0], "path": None},
            "text": "ok",
            "id": None,
            "speaker_id": 1,
            "tag": 1,
        },
        {
            "audio": {"bytes": good[0], "path": None},
            "text": None,
            "id": "no_text",
            "speaker_id": None,
            "tag": None,
        },
    ]
    shard(in_tmp / "data" / "train-00000-of-00001.parquet", train, pa.int64())
    test = [
        {
            "audio": {"bytes": good[i], "path": None},
            "text": f"te {i}",
            "id": f"te{i}",
            "speaker_id": i,
            "tag": f"t{i}",
        }
        for i in range(N_GOOD)
    ]  # tag: int there, str here
    test.append(
        {
            "audio": {"bytes": good[1], "path": None},
            "text": "dup",
            "id": "tr1",
            "speaker_id": 0,
            "tag": "x",
        }
    )
    shard(in_tmp / "data" / "test-00000-of-00001.parquet", test, pa.string())
    cfg = {
        "audio": AUDIO,
        "datasets": {
            "hf": {
                "loader": "hf_parquet",
                "member_splits": ["train"],
                "nonmember_splits": ["test"],
                "files": {"train": "data/train-*.parquet", "test": "data/test-*.parquet"},
                "min_items_per_class": 2,
            }
        },
    }
    with caplog.at_level(logging.WARNING):
        res = build_manifest(parse_config(cfg), "hf")
    missing = res.rejected[res.rejected["reason_code"] == "missing_id"]["source"].tolist()
    assert len(missing) == 1 and missing[0].endswith("train-00000-of-00001.parquet:row 8")
    check(
        res,
        len(train) + len(test),
        {f"tr{i}" for i in range(N_GOOD)}
        | {f"te{i}" for i in range(N_GOOD)}
        | {"lying", "by_path"},
        {
            "garbage": "unreadable_audio",
            "no_audio": "missing_audio",
            "a__b": "bad_id",
            "no_text": "empty_text",
            "tr1": "duplicate_id",
        },
        by_source={missing[0]: "missing_id"},
    )
    assert "'tag'" in caplog.text  # int in one shard, string in the other: JSON strings
    k = res.kept.set_index("item_id")
    assert k.loc["tr2", "meta_tag"] == "2" and k.loc["te2", "meta_tag"] == '"t2"'
    assert k.loc["lying", "source_duration_s"] == pytest.approx(1.0)
    write_and_read(cfg, "hf", in_tmp / "out")


# --------------------------------------------------------------------------- dataset-level errors


def _table_cfg(path: Path, **extra) -> dict:
    return {"audio": AUDIO, "datasets": {"mine": {"loader": "table", "path": str(path), **extra}}}


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _good_csv(root: Path, header: str, row: str, n: int = 4) -> Path:
    for i in range(n):
        write(root / f"c{i}.wav", sine(220, dur=0.3))
    body = "\n".join(row.format(i=i, label=i % 2) for i in range(n))
    (root / "t.csv").write_text(f"{header}\n{body}\n")
    return root / "t.csv"


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (
            lambda r: _table_cfg(_put(r / "t.parquet", b"PAR1 not really" * 10)),
            ["'mine'", "t.parquet", "not a readable Parquet file", "Fix:"],
        ),
        (lambda r: _table_cfg(_put(r / "t.csv", b"")), ["'mine'", "t.csv", "is empty", "Fix:"]),
        (
            lambda r: _table_cfg(_put(r / "t.csv", b"id,text,text\n1,a,b\n")),
            ["repeated column names ['text']", "unique name"],
        ),
        (
            lambda r: _table_cfg(r / "absent.csv"),
            ["absent.csv", "does not exist", "datasets.mine.path"],
        ),
        (
            lambda r: _table_cfg(_put(r / "t.csv", b"id,caf\xe9,text\n1,a,b\n")),
            ["header of", "column name 'caf\\xe9' is not valid UTF-8", "CSV UTF-8"],
        ),
        (
            lambda r: _table_cfg(_put(r / "t.xlsx", b"PK")),
            ["t.xlsx", "cannot tell the format", "datasets.mine.format"],
        ),
        (
            lambda r: _table_cfg(
                _good_csv(r, "path,text,label", "c{i}.wav,w,{label}"),
                columns={"audio": "path", "speaker_id": "speaker"},
            ),
            [
                "speaker_id -> 'speaker'",
                "table columns: ['path', 'text', 'label']",
                "datasets.mine.columns",
            ],
        ),
        (
            lambda r: _table_cfg(
                _good_csv(r, "path,text", "c{i}.wav,w"), columns={"audio": "path"}
            ),
            ["no label column and no source split column", "datasets.mine.columns.label"],
        ),
        (
            lambda r: _table_cfg(
                _good_csv(r, "path,text,label", "c{i}.wav,,{label}"),
                columns={"audio": "path"},
                min_items_per_class=1,
            ),
            ["no item survived validation out of 4", "empty_text: 4"],
        ),
        (
            lambda r: _table_cfg(
                _good_csv(r, "path,text,label", "c{i}.wav,w,1"),
                columns={"audio": "path"},
                min_items_per_class=1,
            ),
            ["only members remain (4 members, 0 non-members)"],
        ),
    ],
    ids=[
        "corrupt_parquet",
        "empty_csv",
        "repeated_columns",
        "missing_table",
        "latin1_header",
        "unknown_extension",
        "mapping_points_nowhere",
        "no_label_no_split",
        "nothing_survives",
        "one_class",
    ],
)
def test_dataset_level_errors_are_one_clear_message(in_tmp, make, needles):
    cfg = make(in_tmp)
    with pytest.raises(DatasetError) as exc:
        build_manifest(parse_config(cfg), "mine")
    msg = str(exc.value)
    assert msg.startswith("dataset 'mine': ")
    for n in needles:
        assert n in msg, msg
    assert "<name>" not in msg and "<Buffer>" not in msg


def test_corrupt_hf_shard_names_the_shard(in_tmp):
    (in_tmp / "data").mkdir()
    (in_tmp / "data" / "train-0.parquet").write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    (in_tmp / "data" / "test-0.parquet").write_bytes(b"junk")
    cfg = {
        "datasets": {
            "hf": {
                "loader": "hf_parquet",
                "member_splits": ["train"],
                "nonmember_splits": ["test"],
                "files": {"train": "data/train-*.parquet", "test": "data/test-*.parquet"},
            }
        }
    }
    with pytest.raises(DatasetError) as exc:
        build_manifest(parse_config(cfg), "hf")
    msg = str(exc.value)
    assert "data/train-0.parquet" in msg and "split 'train'" in msg
    assert "not a readable Parquet file" in msg and "datasets.hf.files" in msg


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (None, ["does not exist", "-c/--config"]),
        ("datasets:\n  a: [1, 2\n", ["not valid YAML at line 3", "fix:"]),
        ("datasets:\n\tx: 1\n", ["not valid YAML at line 2, column 1", "indent with spaces"]),
        ("- datasets\n- audio\n", ["holds a YAML list, not a mapping"]),
        ("just a sentence\n", ["holds a YAML str, not a mapping"]),
        ("1: x\n", ["top-level keys that are not names: [1]"]),
        (b"seed: 1\ncomment: caf\xe9\n", ["not UTF-8 text (byte 0xe9"]),
        ("datasets:\n  t: {loader: table, path: x.csv}\naudoi: {}\n", ["unknown key 'audoi'"]),
    ],
    ids=["missing", "unclosed", "tab_indent", "list", "scalar", "int_key", "latin1", "unknown_key"],
)
def test_config_file_problems_are_one_message(tmp_path, text, needles, capsys):
    path = tmp_path / "my.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    for n in needles:
        assert n in str(exc.value), str(exc.value)
    # The CLI prints the same one message, no traceback, and exits 2
    assert cli.main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and needles[0] in err


def test_cli_shows_a_traceback_only_with_debug(tmp_path, capsys, monkeypatch):
    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setitem(cli.COMMANDS, "check-config", (boom, *cli.COMMANDS["check-config"][1:]))
    assert cli.main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert "KeyError" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(KeyError):
        cli.main(["--debug", "check-config"])
    with pytest.raises(KeyError):
        cli.main(["check-config", "--debug"])


JOB = """
import sys, types
from lalm_audit.errors import DatasetError
from lalm_audit.workflow import start_job
cfg = {"datasets": {"d": {"loader": "table", "path": "x.csv"}}}
start_job(types.SimpleNamespace(log=[sys.argv[1]], threads=1, config=cfg))
if sys.argv[2] == "input":
    raise DatasetError("d", "the table is unreadable", "rewrite it")
raise ZeroDivisionError("a bug")
"""


def test_a_failed_job_writes_its_error_to_the_job_log(tmp_path):
    log = tmp_path / "job.log"
    res = subprocess.run(
        [sys.executable, "-c", JOB, str(log), "input"], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert "dataset 'd': the table is unreadable. Fix: rewrite it" in log.read_text()
    assert "Traceback" not in res.stderr and "Traceback" not in log.read_text()
    # a bug (not bad input) keeps its traceback, in the log too
    res = subprocess.run(
        [sys.executable, "-c", JOB, str(log), "bug"], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert "Traceback" in log.read_text() and "ZeroDivisionError: a bug" in log.read_text()


def test_train_pool_rows_without_a_label_are_training_items(in_tmp):
    table = _good_csv(in_tmp, "path,text,label", "c{i}.wav,words {i},")
    cfg = _table_cfg(table, columns={"audio": "path"}, role="train_pool", min_items_per_class=1)
    res = build_manifest(parse_config(cfg), "mine")
    assert res.summary["kept"] == 4 and set(res.kept["label"]) == {1}
    # in an audit dataset the same empty cells are bad labels, not silently members
    with pytest.raises(DatasetError, match="bad_label: 4"):
        build_manifest(parse_config(_table_cfg(table, columns={"audio": "path"})), "mine")


def test_check_config_reads_the_tables_it_names(in_tmp, capsys):
    table = _good_csv(in_tmp, "path,text,label", "c{i}.wav,words,{label}")
    good = in_tmp / "good.yaml"
    good.write_text(yaml.safe_dump(_table_cfg(table, columns={"audio": "path"})))
    assert cli.main(["check-config", "-c", str(good)]) == 0
    assert "dataset 'mine': 4 rows read" in capsys.readouterr().err
    # the first-hour mistake: the default audio column name is not the table's
    bad = in_tmp / "bad.yaml"
    bad.write_text(yaml.safe_dump(_table_cfg(table)))
    assert cli.main(["check-config", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "audio -> 'audio_path'" in err and "datasets.mine.columns" in err
    assert "Traceback" not in err
    assert cli.main(["check-config", "--no-data", "-c", str(bad)]) == 0


def test_hf_shard_string_column_with_non_utf8_bytes(in_tmp):
    blob = write(in_tmp / "src.wav", sine(dur=0.5)).read_bytes()
    texts = [b"one", b"two", b"caf\xe9", b"three"]
    ids = [b"a0", b"a1", b"a2", b"a\xff3"]

    def shard(path: Path, texts, ids) -> None:
        t = pa.table(
            {
                "audio": pa.array([{"bytes": blob, "path": None}] * len(ids), HF_AUDIO),
                "text": pa.array(texts, pa.binary()).view(pa.string()),
                "id": pa.array(ids, pa.binary()).view(pa.string()),
            }
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, path)

    shard(in_tmp / "d" / "train-0.parquet", texts, ids)
    shard(in_tmp / "d" / "test-0.parquet", [b"x", b"y"], [b"b0", b"b1"])
    cfg = {
        "datasets": {
            "hf": {
                "loader": "hf_parquet",
                "member_splits": ["train"],
                "nonmember_splits": ["test"],
                "files": {"train": "d/train-*.parquet", "test": "d/test-*.parquet"},
                "columns": {"speaker_id": None},
                "min_items_per_class": 2,
            }
        }
    }
    res = build_manifest(parse_config(cfg), "hf")
    check(
        res,
        6,
        {"a0", "a1", "b0", "b1"},
        {"a2": "bad_text_encoding", "a\\xff3": "bad_field_encoding"},
    )
    write_and_read(cfg, "hf", in_tmp / "out")


def test_csv_quotes_never_merge_rows_silently(in_tmp):
    for i in range(4):
        write(in_tmp / f"c{i}.wav", sine(220, dur=0.3))
    lines = [
        "path,text,label",
        'c0.wav,"a ""quoted"" word",1',
        'c1.wav,"two\nlines",0',  # a quoted cell may hold a line break: one item
        'c2.wav,"closed"then more,1',  # text after a closing quote: that row only
        "c3.wav,fine,0",
    ]
    table = in_tmp / "t.csv"
    table.write_text("\n".join(lines) + "\n")
    cfg = _table_cfg(table, columns={"audio": "path"}, min_items_per_class=1)
    res = build_manifest(parse_config(cfg), "mine")
    check(res, 4, {"t-2", "t-3", "t-6"}, {}, by_source={f"{table}:5": "bad_row"})
    k = res.kept.set_index("item_id")
    assert k.loc["t-2", "text"] == 'a "quoted" word' and k.loc["t-3", "text"] == "two\nlines"
    # an unclosed quote would swallow every later line into one cell: a dataset error
    table.write_text("\n".join([*lines[:2], 'c1.wav,"never closed,0', *lines[4:]]) + "\n")
    with pytest.raises(DatasetError) as exc:
        build_manifest(parse_config(cfg), "mine")
    assert "line 3 of" in str(exc.value) and "never closed, so lines 3-4" in str(exc.value)


def test_spreadsheet_trailing_empty_columns_are_ignored(in_tmp):
    table = _good_csv(in_tmp, "path,text,label,,", "c{i}.wav,words {i},{label},,")
    with open(table, "a") as fh:
        fh.write("c0.wav,extra,1,,surprise\n")  # a value in an unnamed column: that row only
    cfg = _table_cfg(table, columns={"audio": "path"}, min_items_per_class=1)
    res = build_manifest(parse_config(cfg), "mine")
    check(res, 5, {"t-2", "t-3", "t-4", "t-5"}, {}, by_source={f"{table}:6": "bad_row"})
