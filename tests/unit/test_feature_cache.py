"""Features cached by clip content: datasets that share clips extract each clip once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lalm_audit.config import parse_config
from lalm_audit.features import registry
from lalm_audit.features.registry import extract_group, feature_cache
from tests.conftest import sine, write


def _manifest(paths, ids, texts=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ids,
            "audio_path": [str(p) for p in paths],
            "audio_bytes": [None] * len(ids),
            "offset_s": 0.0,
            "duration_s": 0.5,
            "source_duration_s": 0.5,
            "text": texts or [f"words {i}" for i in range(len(ids))],
        }
    )


@pytest.fixture
def counted(monkeypatch):
    """How many times each group's real extract ran."""
    calls = {"metadata": 0, "text": 0}
    for group in calls:
        module = registry.GROUPS[group].module
        real = module.extract

        def wrapped(row, cfg, real=real, group=group):
            calls[group] += 1
            return real(row, cfg)

        monkeypatch.setattr(module, "extract", wrapped)
    return calls


@pytest.fixture
def cfg():
    return parse_config({"datasets": {"a": {"loader": "table", "path": "x.csv"}}})


def test_shared_clips_are_extracted_once_across_datasets(tmp_path, counted, cfg):
    clips = [write(tmp_path / f"c{i}.wav", sine(200 + 50 * i, dur=0.5)) for i in range(4)]
    extra = write(tmp_path / "only_b.wav", sine(900, dur=0.5))
    # the same audio under another path (a copy) is the same content
    copy = tmp_path / "copy_of_c0.wav"
    copy.write_bytes(clips[0].read_bytes())
    a = _manifest(clips, [f"a{i}" for i in range(4)])
    b = _manifest([*clips[1:], extra, copy], ["b1", "b2", "b3", "b_extra", "b_copy"])
    root = tmp_path / "cache"
    fa = extract_group(a, "metadata", cfg, cache=feature_cache(cfg, "metadata", root))
    assert counted["metadata"] == 4
    cache_b = feature_cache(cfg, "metadata", root)
    fb = extract_group(b, "metadata", cfg, cache=cache_b)
    assert counted["metadata"] == 5  # only the one new clip
    assert (cache_b.hits, cache_b.misses) == (4, 1)
    # cached values equal computed ones exactly
    uncached = extract_group(b, "metadata", cfg)
    pd.testing.assert_frame_equal(fb, uncached)
    pd.testing.assert_frame_equal(
        fb.drop(columns="item_id").iloc[:3].reset_index(drop=True),
        fa.drop(columns="item_id").iloc[1:].reset_index(drop=True),
    )
    assert fb["item_id"].tolist() == b["item_id"].tolist()


def test_what_the_key_covers(tmp_path, counted, cfg):
    clip = write(tmp_path / "c.wav", sine(300, dur=1.0))
    root = tmp_path / "cache"
    m = _manifest([clip], ["x"])
    extract_group(m, "metadata", cfg, cache=feature_cache(cfg, "metadata", root))
    assert counted["metadata"] == 1
    # another segment of the same file: other values, so recomputed
    seg = m.assign(offset_s=0.25)
    extract_group(seg, "metadata", cfg, cache=feature_cache(cfg, "metadata", root))
    assert counted["metadata"] == 2
    # the file's bytes change under the same path: recomputed
    write(clip, sine(700, dur=1.0))
    extract_group(m, "metadata", cfg, cache=feature_cache(cfg, "metadata", root))
    assert counted["metadata"] == 3
    # other settings of the group: another cache folder, recomputed
    other = parse_config(
        {
            "datasets": {"a": {"loader": "table", "path": "x.csv"}},
            "audio": {"silence_threshold_dbfs": -50.0},
        }
    )
    assert feature_cache(other, "metadata", root).dir != feature_cache(cfg, "metadata", root).dir
    # the text group keys on the transcript alone
    t1 = extract_group(m, "text", cfg, cache=feature_cache(cfg, "text", root))
    t2 = extract_group(
        _manifest([tmp_path / "elsewhere.wav"], ["y"], texts=["words 0"]),
        "text",
        cfg,
        cache=feature_cache(cfg, "text", root),
    )
    assert counted["text"] == 1
    pd.testing.assert_frame_equal(t1.drop(columns="item_id"), t2.drop(columns="item_id"))


def test_torn_records_and_failures_are_not_served(tmp_path, counted, cfg):
    clip = write(tmp_path / "c.wav", sine(300, dur=0.5))
    root = tmp_path / "cache"
    m = _manifest([clip], ["x"])
    cache = feature_cache(cfg, "metadata", root)
    first = extract_group(m, "metadata", cfg, cache=cache)
    (record,) = list(cache.dir.rglob("*.json"))
    record.write_text('{"duration_s": 0.')  # a writer killed mid-write
    again = extract_group(m, "metadata", cfg, cache=feature_cache(cfg, "metadata", root))
    assert counted["metadata"] == 2
    pd.testing.assert_frame_equal(first, again)
    # an item whose extraction fails is recorded, never cached
    bad = _manifest([tmp_path / "missing.wav"], ["gone"])
    for _ in range(2):
        out = extract_group(bad, "metadata", cfg, cache=feature_cache(cfg, "metadata", root))
        assert out["feature_error"].notna().all()
    assert (
        not np.isfinite(out.drop(columns=["item_id", "feature_error"]).select_dtypes("number"))
        .any()
        .any()
    )
