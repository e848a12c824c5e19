"""Hugging Face `datasets` Parquet shards, written with the same Arrow layout `datasets` uses."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lalm_audit.config import parse_config
from lalm_audit.errors import DatasetError
from lalm_audit.manifest import build_manifest
from tests.conftest import sine, write

AUDIO_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_shard(path: Path, rows: list[dict]) -> None:
    schema = pa.schema(
        [
            ("audio", AUDIO_TYPE),
            ("text", pa.string()),
            ("id", pa.string()),
            ("speaker_id", pa.int64()),
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def test_shards_with_embedded_bytes_paths_and_bad_rows(in_tmp, tmp_path):
    blob = write(tmp_path / "src.wav", sine(dur=0.5, sr=24000), 24000).read_bytes()
    write(in_tmp / "data" / "clips" / "ext.flac", sine(dur=0.5))
    train = [
        {
            "audio": {"bytes": blob, "path": f"t{i}.wav"},
            "text": f"train {i}",
            "id": f"t{i}",
            "speaker_id": i % 2,
        }
        for i in range(6)
    ]
    test = [
        {
            "audio": {"bytes": blob, "path": None},
            "text": f"test {i}",
            "id": f"v{i}",
            "speaker_id": 7,
        }
        for i in range(5)
    ]
    test.append(
        {
            "audio": {"bytes": None, "path": "clips/ext.flac"},
            "text": "external file",
            "id": "v-ext",
            "speaker_id": 7,
        }
    )
    test.append(
        {
            "audio": {"bytes": b"\x00garbage" * 20, "path": "bad.wav"},
            "text": "x",
            "id": "v-bad",
            "speaker_id": 7,
        }
    )
    test.append({"audio": None, "text": "x", "id": "v-none", "speaker_id": 7})
    write_shard(in_tmp / "data" / "train-00000-of-00002.parquet", train[:3])
    write_shard(in_tmp / "data" / "train-00001-of-00002.parquet", train[3:])
    write_shard(in_tmp / "data" / "test-00000-of-00001.parquet", test)
    cfg = parse_config(
        {
            "datasets": {
                "hf": {
                    "loader": "hf_parquet",
                    "files": {"train": "data/train-*.parquet", "test": "data/test-*.parquet"},
                    "member_splits": ["train"],
                    "nonmember_splits": ["test"],
                    "min_items_per_class": 3,
                }
            }
        }
    )
    res = build_manifest(cfg, "hf")
    k = res.kept.set_index("item_id")
    assert list(k.index[:6]) == [f"t{i}" for i in range(6)]  # shards read in order
    assert k.loc["t4", "label"] == 1 and k.loc["v0", "label"] == 0
    assert k.loc["t4", "audio_bytes"] == blob and k.loc["t4", "sample_rate"] == 24000
    assert k.loc["v-ext", "audio_path"] == "data/clips/ext.flac"
    assert k.loc["t1", "speaker_id"] == "1"
    reasons = dict(zip(res.rejected["item_id"], res.rejected["reason_code"], strict=True))
    assert reasons == {"v-bad": "unreadable_audio", "v-none": "missing_audio"}
    assert res.summary["items_in"] == 14 == res.summary["kept"] + res.summary["rejected"]


def test_no_matching_shards_and_bad_mapping(in_tmp):
    conf = {
        "datasets": {
            "hf": {
                "loader": "hf_parquet",
                "files": {"train": "nothing/*.parquet", "test": "x"},
                "member_splits": ["train"],
                "nonmember_splits": ["test"],
            }
        }
    }
    with pytest.raises(DatasetError, match="no shard matches"):
        build_manifest(parse_config(conf), "hf")
    write_shard(in_tmp / "s.parquet", [{"audio": None, "text": "x", "id": "a", "speaker_id": 1}])
    conf["datasets"]["hf"]["files"] = {"train": "s.parquet", "test": "s.parquet"}
    conf["datasets"]["hf"]["columns"] = {"text": "sentence"}
    with pytest.raises(DatasetError, match="text -> 'sentence'"):
        build_manifest(parse_config(conf), "hf")
