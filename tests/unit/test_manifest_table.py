"""The generic table loader, in every format, with every bad-input case."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lalm_audit.config import parse_config
from lalm_audit.errors import DatasetError
from lalm_audit.manifest import build_manifest, run_manifest
from lalm_audit.schemas import MANIFEST
from tests.conftest import sine, write

N_GOOD = 12  # per class


def _rows(root: Path) -> tuple[list[dict], dict[str, str]]:
    """Good rows (N_GOOD per class) plus one row per bad case; returns rows and expected reasons."""
    rows = []
    for i in range(2 * N_GOOD):
        write(root / "audio" / f"g{i}.wav", sine(200 + 10 * i, dur=1.0))
        rows.append(
            {
                "id": f"g{i}",
                "file": f"audio/g{i}.wav",
                "txt": f"good item {i}",
                "spk": f"s{i % 3}",
                "member": str(i % 2),
                "extra": i,
            }
        )
    write(root / "audio" / "silent.wav", np.zeros(16000, np.float32))
    write(root / "audio" / "empty.wav", np.zeros(0, np.float32))
    (root / "audio" / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    write(root / "audio" / "long.wav", sine(dur=3.0))
    bad = {
        "missing": ("audio/nope.wav", "x", "1", "missing_audio"),
        "corrupt": ("audio/corrupt.wav", "x", "1", "unreadable_audio"),
        "empty": ("audio/empty.wav", "x", "1", "empty_audio"),
        "silent": ("audio/silent.wav", "x", "1", "silent_audio"),
        "notext": ("audio/g0.wav", "", "1", "empty_text"),
        "badlabel": ("audio/g0.wav", "x", "2", "bad_label"),
        "long": ("audio/long.wav", "x", "0", "too_long"),
        "g3": ("audio/g0.wav", "x", "1", "duplicate_id"),  # g3 is already a good id
    }
    expected = {}
    for item_id, (file, txt, label, reason) in bad.items():
        rows.append(
            {"id": item_id, "file": file, "txt": txt, "spk": "s9", "member": label, "extra": -1}
        )
        expected[item_id] = reason
    return rows, expected


COLUMNS = {
    "item_id": "id",
    "audio": "file",
    "text": "txt",
    "speaker_id": "spk",
    "label": "member",
    "source_split": None,
}


def _config(path: Path, **audio) -> dict:
    return {
        "audio": {"max_duration_s": 2.0, "long_clip_policy": "reject", **audio},
        "datasets": {
            "t": {
                "loader": "table",
                "path": str(path),
                "columns": COLUMNS,
                "min_items_per_class": 5,
            }
        },
    }


def _write_table(rows: list[dict], path: Path) -> Path:
    df = pd.DataFrame(rows)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_bad_case_is_rejected_with_its_reason(in_tmp, ext):
    rows, expected = _rows(in_tmp)
    table = _write_table(rows, in_tmp / f"items{ext}")
    res = build_manifest(parse_config(_config(table)), "t")
    got = dict(zip(res.rejected["item_id"], res.rejected["reason_code"], strict=True))
    assert got == expected
    assert res.summary["items_in"] == len(rows) == res.summary["kept"] + res.summary["rejected"]
    assert res.summary["kept_members"] == res.summary["kept_nonmembers"] == N_GOOD
    kept = res.kept.set_index("item_id")
    assert kept.loc["g5", "label"] == 1 and kept.loc["g4", "label"] == 0
    assert kept.loc["g5", "speaker_id"] == "s2" and kept.loc["g5", "text"] == "good item 5"
    assert kept.loc["g5", "duration_s"] == 1.0 and kept.loc["g5", "sample_rate"] == 16000
    assert str(kept.loc["g5", "meta_extra"]) == "5"
    MANIFEST.check(res.kept)
    # every reason sentence says what to do
    assert res.rejected["reason"].str.contains("fix:").all()


@pytest.mark.parametrize(
    ("ext", "line"),
    [
        (".csv", b"latin,audio/g1.wav,caf\xe9 cr\xe8me,s1,1,0\n"),
        (
            ".jsonl",
            b'{"id": "latin", "file": "audio/g1.wav", "txt": "caf\xe9", "spk": "s1", "member": "1"}\n',
        ),
    ],
)
def test_non_utf8_text_rejects_only_that_row(in_tmp, ext, line):
    rows, _ = _rows(in_tmp)
    table = in_tmp / f"items{ext}"
    _write_table(rows[: 2 * N_GOOD], table)
    with open(table, "ab") as fh:
        fh.write(line)
    res = build_manifest(parse_config(_config(table)), "t")
    assert res.rejected.to_dict("records")[0]["reason_code"] == "bad_text_encoding"
    assert "0xe9" in res.rejected["reason"].iloc[0]
    assert res.summary["kept"] == 2 * N_GOOD


def test_malformed_jsonl_line_is_recorded(in_tmp):
    rows, _ = _rows(in_tmp)
    table = _write_table(rows[: 2 * N_GOOD], in_tmp / "items.jsonl")
    with open(table, "a") as fh:
        fh.write("{not json\n")
    res = build_manifest(parse_config(_config(table)), "t")
    assert list(res.rejected["reason_code"]) == ["bad_row"]
    assert res.summary["items_in"] == 2 * N_GOOD + 1


def test_truncate_policy_keeps_and_flags_long_clips(in_tmp):
    rows, _ = _rows(in_tmp)
    table = _write_table(rows, in_tmp / "items.csv")
    res = build_manifest(parse_config(_config(table, long_clip_policy="truncate")), "t")
    long = res.kept.set_index("item_id").loc["long"]
    assert (
        bool(long["truncated"]) and long["duration_s"] == 2.0 and long["source_duration_s"] == 3.0
    )
    assert res.kept["truncated"].sum() == 1 and res.summary["truncated"] == 1


def test_labels_from_splits_segments_and_embedded_audio(in_tmp):
    blob = (write(in_tmp / "b.flac", sine(dur=2.0))).read_bytes()
    rows = []
    for i in range(10):
        rows.append(
            {
                "item_id": f"a{i}",
                "audio_path": {"bytes": blob, "path": None},
                "text": "t",
                "source_split": "train",
                "speaker_id": "x",
                "start": 0.5,
                "len": 1.0,
            }
        )
        rows.append(
            {
                "item_id": f"b{i}",
                "audio_path": {"bytes": None, "path": "b.flac"},
                "text": "t",
                "source_split": "test",
                "speaker_id": "y",
                "start": 0.0,
                "len": 0.25,
            }
        )
    rows.append(
        {
            "item_id": "dev0",
            "audio_path": {"bytes": blob, "path": None},
            "text": "t",
            "source_split": "dev",
            "speaker_id": "y",
            "start": 0.0,
            "len": 1.0,
        }
    )
    pd.DataFrame(rows).to_parquet(in_tmp / "t.parquet")
    cfg = parse_config(
        {
            "datasets": {
                "t": {
                    "loader": "table",
                    "path": "t.parquet",
                    "member_splits": ["train"],
                    "nonmember_splits": ["test"],
                    "columns": {"label": None, "offset_s": "start", "duration_s": "len"},
                    "metadata_columns": [],
                }
            }
        }
    )
    res = build_manifest(cfg, "t")
    k = res.kept.set_index("item_id")
    assert k.loc["a0", "label"] == 1 and k.loc["b0", "label"] == 0
    assert k.loc["a0", "audio_bytes"] == blob and pd.isna(k.loc["a0", "audio_path"])
    assert k.loc["b0", "audio_path"] == "b.flac"
    assert (
        k.loc["a0", "duration_s"] == 1.0
        and k.loc["a0", "offset_s"] == 0.5
        and k.loc["b0", "duration_s"] == 0.25
    )
    assert res.rejected.set_index("item_id").loc["dev0", "reason_code"] == "split_not_selected"
    assert not any(c.startswith("meta_") for c in res.kept.columns)


def test_subsampling_is_balanced_seeded_and_recorded(in_tmp):
    rows, _ = _rows(in_tmp)
    table = _write_table(rows[: 2 * N_GOOD], in_tmp / "items.csv")
    conf = _config(table)
    conf["datasets"]["t"]["max_items_per_class"] = 5
    a = build_manifest(parse_config(conf), "t")
    b = build_manifest(parse_config(conf), "t")
    assert a.summary["kept_members"] == a.summary["kept_nonmembers"] == 5
    assert list(a.kept["item_id"]) == list(b.kept["item_id"])
    assert (a.rejected["reason_code"] == "subsampled").sum() == 2 * N_GOOD - 10
    other = build_manifest(parse_config({**conf, "seed": 99}), "t")
    assert list(other.kept["item_id"]) != list(a.kept["item_id"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: [r | {"member": "1"} for r in rows], "only members remain"),
        (lambda rows: rows[:6], "too few items per class"),
        (lambda rows: [r | {"file": "missing.wav"} for r in rows], "no item survived validation"),
    ],
)
def test_unusable_datasets_stop_with_a_named_error(in_tmp, mutate, message):
    rows, _ = _rows(in_tmp)
    table = _write_table(mutate(rows[: 2 * N_GOOD]), in_tmp / "items.csv")
    with pytest.raises(DatasetError) as exc:
        build_manifest(parse_config(_config(table)), "t")
    text = str(exc.value)
    assert "dataset 't'" in text and message in text and "Fix:" in text


def test_column_mapping_that_points_nowhere(in_tmp):
    rows, _ = _rows(in_tmp)
    table = _write_table(rows, in_tmp / "items.csv")
    conf = _config(table)
    conf["datasets"]["t"]["columns"] = {**COLUMNS, "text": "transcript"}
    with pytest.raises(DatasetError, match=r"text -> 'transcript'.*table columns"):
        build_manifest(parse_config(conf), "t")
    conf["datasets"]["t"]["path"] = "absent.csv"
    with pytest.raises(DatasetError, match="does not exist"):
        build_manifest(parse_config(conf), "t")


def test_run_manifest_writes_outputs_with_provenance(in_tmp):
    from lalm_audit import io

    rows, _ = _rows(in_tmp)
    table = _write_table(rows, in_tmp / "items.csv")
    cfg = parse_config(_config(table))
    summary = run_manifest(cfg, "t", "m.parquet", "r.parquet", "s.json")
    prov = io.read_provenance("m.parquet")
    assert prov["stage"] == "manifest" and prov["dataset"] == "t" and len(prov["config_hash"]) == 16
    assert len(io.read_table("m.parquet")) == summary["kept"]
    assert len(io.read_table("r.parquet")) == summary["rejected"] == 8
    assert io.read_json("s.json")["items_in"] == len(rows)
    first = Path("m.parquet").read_bytes()
    run_manifest(cfg, "t", "m.parquet", "r.parquet", "s.json")
    assert Path("m.parquet").read_bytes() == first  # deterministic, byte for byte
