"""Blind-baseline features against signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lalm_audit import io
from lalm_audit.config import Config, parse_config
from lalm_audit.errors import DatasetError
from lalm_audit.features import (
    GROUPS,
    extract_group,
    feature_set,
    load_features,
    merge_shards,
    metadata,
    prosodic,
    run_features_shard,
    shard_rows,
    spectral,
    text,
)
from tests.conftest import sine, write

SR = 16000


@pytest.fixture(scope="module")
def cfg() -> Config:
    return parse_config({"datasets": {"d": {"loader": "table", "path": "t.csv"}}})


def _row(path, item_id="x-1", **extra) -> dict:
    return {
        "item_id": item_id,
        "audio_path": str(path),
        "audio_bytes": None,
        "offset_s": 0.0,
        "duration_s": None,
        "source_duration_s": None,
        "text": "hello world",
        **extra,
    }


# --------------------------------------------------------------------------- text


def test_text_stats_count_what_they_say():
    s = text.text_stats("Hello, world 42 hello")
    assert s["n_words"] == 4
    assert s["n_chars"] == 21
    assert s["type_token_ratio"] == pytest.approx(3 / 4)  # 'hello' twice, case folded
    assert s["digit_rate"] == pytest.approx(2 / 21)
    assert s["punct_rate"] == pytest.approx(1 / 21)
    assert s["upper_rate"] == pytest.approx(1 / 15)  # 'H' among 15 letters
    assert s["mean_word_len"] == pytest.approx((5 + 5 + 2 + 5) / 4)
    assert text.text_stats("")["n_words"] == 0


def test_text_group_keeps_the_raw_transcript(cfg):
    out = text.extract({"item_id": "a", "text": "the cat sat"}, cfg)
    assert out["transcript"] == "the cat sat" and out["n_words"] == 3
    with pytest.raises(ValueError, match="no transcript"):
        text.extract({"item_id": "a", "text": None}, cfg)


# --------------------------------------------------------------------------- spectral


def test_spectral_features_of_a_sine_and_of_silence(cfg):
    p = cfg.features.spectral
    tone = spectral.spectral_features(sine(200.0, 1.0, SR, amp=0.5), SR, p)
    assert set(tone) == set(spectral.columns(cfg))
    assert tone["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.03)
    assert tone["centroid_p50"] == pytest.approx(200.0, abs=40.0)  # window leakage only
    assert tone["rolloff_p50"] < 400.0
    assert tone["zcr_mean"] == pytest.approx(2 * 200 / SR, rel=0.05)  # two crossings per period
    quiet = spectral.spectral_features(np.zeros(SR, np.float32), SR, p)
    assert quiet["rms_mean"] == pytest.approx(0.0, abs=1e-9)
    assert quiet["zcr_mean"] == 0.0


def test_spectral_features_of_a_very_short_clip(cfg):
    out = spectral.spectral_features(sine(300.0, 0.02, SR), SR, cfg.features.spectral)
    assert all(np.isfinite(v) for v in out.values())


# --------------------------------------------------------------------------- prosodic


def test_prosodic_f0_of_a_200_hz_sine():
    out = prosodic.prosodic_features(sine(200.0, 2.0, SR, amp=0.5), SR)
    assert out["f0_mean_hz"] == pytest.approx(200.0, rel=0.03)
    assert out["F0semitoneFrom27.5Hz_sma3nz_amean"] == pytest.approx(
        12 * np.log2(200 / 27.5), abs=0.3
    )
    low = prosodic.prosodic_features(sine(120.0, 2.0, SR, amp=0.5), SR)
    assert low["f0_mean_hz"] == pytest.approx(120.0, rel=0.03)


def test_prosodic_silence_has_no_pitch_and_no_loudness():
    out = prosodic.prosodic_features(np.zeros(SR, np.float32), SR)
    assert out["f0_mean_hz"] == 0.0
    tone = prosodic.prosodic_features(sine(200.0, 1.0, SR, amp=0.5), SR)
    assert out["loudness_sma3_amean"] < 0.01 * tone["loudness_sma3_amean"]  # openSMILE's floor only
    assert len(out) == 89  # 88 eGeMAPS functionals + f0_mean_hz


# --------------------------------------------------------------------------- metadata


def test_metadata_file_facts_are_exact(tmp_path, cfg):
    x = sine(440.0, 1.5, 22050, amp=0.5, channels=2)
    path = write(tmp_path / "a.wav", x, 22050, subtype="PCM_24")
    out = metadata.extract(_row(path), cfg)
    assert out["duration_s"] == 1.5  # 33075 frames at 22050 Hz, exactly
    assert out["sample_rate"] == 22050 and out["channels"] == 2
    assert out["audio_format"] == "WAV" and out["subtype"] == "PCM_24" and out["bit_depth"] == 24
    assert out["file_bytes"] == path.stat().st_size
    assert out["bitrate_kbps"] == pytest.approx(path.stat().st_size * 8 / 1.5 / 1000)
    assert out["peak_dbfs"] == pytest.approx(20 * np.log10(0.5), abs=0.05)


def test_metadata_signal_facts(cfg):
    p = cfg.features.metadata
    sr = 16000
    tone = sine(300.0, 1.0, sr, amp=0.5)
    padded = np.concatenate([np.zeros(sr // 2, np.float32), tone, np.zeros(sr // 4, np.float32)])
    out = metadata.signal_features(padded, sr, p)
    assert out["lead_silence_s"] == pytest.approx(0.5, abs=0.03)
    assert out["trail_silence_s"] == pytest.approx(0.25, abs=0.03)
    clipped = np.clip(4 * tone, -1, 1)  # |2 sin| >= 1 for 2/3 of each period
    assert metadata.signal_features(clipped, sr, p)["clip_ratio"] == pytest.approx(2 / 3, abs=0.01)
    assert metadata.signal_features(tone, sr, p)["clip_ratio"] == 0.0
    assert metadata.signal_features(tone + 0.1, sr, p)["dc_offset"] == pytest.approx(0.1, abs=1e-3)
    silent = metadata.signal_features(np.zeros(sr, np.float32), sr, p)
    assert silent["rms_dbfs"] == -120.0 and silent["lead_silence_s"] == 1.0


def test_nonsilent_span_agrees_with_librosa_trim():
    import librosa

    rng = np.random.default_rng(3)
    sr = 16000
    x = np.concatenate(
        [
            1e-4 * rng.standard_normal(7000),
            sine(300.0, 0.7, sr, amp=0.4),
            1e-4 * rng.standard_normal(5300),
        ]
    ).astype(np.float32)
    hop = 160
    _, (start, end) = librosa.effects.trim(x, top_db=40, frame_length=4 * hop, hop_length=hop)
    assert metadata.nonsilent_span(x, sr, 40.0) == (start, end)


@pytest.mark.parametrize("snr", [10.0, 30.0])
def test_snr_estimate_tracks_a_known_snr(snr):
    rng = np.random.default_rng(0)
    sr = 16000
    burst = sine(250.0, 0.5, sr, amp=0.5)
    speechlike = np.concatenate([burst, np.zeros(sr // 2, np.float32)] * 4)
    noise_power = np.mean(burst**2) / 10 ** (snr / 10)
    x = speechlike + rng.standard_normal(speechlike.size) * np.sqrt(noise_power)
    assert metadata.estimate_snr_db(x, sr) == pytest.approx(snr, abs=3.0)


def test_bit_depth_from_subtype():
    assert metadata.bit_depth("PCM_16") == 16
    assert metadata.bit_depth("PCM_U8") == 8
    assert metadata.bit_depth("FLOAT") == 32
    assert metadata.bit_depth("VORBIS") == 0  # compressed: no fixed bit depth


def test_metadata_never_reads_ground_truth_columns(tmp_path, cfg):
    path = write(tmp_path / "a.flac", sine(200.0, 1.0))
    a = metadata.extract(_row(path), cfg)
    b = metadata.extract(
        _row(
            path,
            item_id="other",
            label=0,
            speaker_id="spk-9",
            source_split="test",
            meta_snr_db=5.0,
            meta_condition="shifted",
        ),
        cfg,
    )
    assert a == b
    assert not any(c.startswith("meta_") or c in ("label", "speaker_id") for c in a)


# --------------------------------------------------------------------------- registry, shards


def test_registry_declares_the_modules_columns():
    assert GROUPS["text"].text_columns == (text.TRANSCRIPT,)
    assert GROUPS["metadata"].categorical_columns == metadata.CATEGORICAL
    assert set(GROUPS) == {"text", "spectral", "prosodic", "metadata"}


def test_shards_cover_every_item_once():
    df = pd.DataFrame({"item_id": [f"i{k}" for k in range(11)]})
    parts = [shard_rows(df, s, 3)["item_id"].tolist() for s in range(3)]
    assert sorted(i for p in parts for i in p) == sorted(df["item_id"]) and all(parts)
    with pytest.raises(ValueError):
        shard_rows(df, 3, 3)


def _manifest(tmp_path, n=4, missing=()) -> pd.DataFrame:
    rows = []
    for k in range(n):
        path = tmp_path / f"a{k}.wav"
        if k not in missing:
            write(path, sine(200.0 + 50 * k, 0.5))
        rows.append({**_row(path, item_id=f"i{k}"), "label": k % 2, "duration_s": 0.5})
    return pd.DataFrame(rows)


def test_one_failing_item_is_recorded_not_fatal(tmp_path, cfg):
    man = _manifest(tmp_path, missing=(2,))
    df = extract_group(man, "metadata", cfg)
    assert list(df["item_id"]) == ["i0", "i1", "i2", "i3"]
    assert df["feature_error"].notna().tolist() == [False, False, True, False]
    assert "not found" in df.loc[2, "feature_error"]
    assert df.loc[2, "duration_s"] != df.loc[2, "duration_s"]  # NaN
    assert df.loc[0, "duration_s"] == 0.5
    assert df["duration_s"].dtype == np.float64


def test_shards_merge_and_reconcile_with_the_manifest(tmp_path, cfg):
    man = _manifest(tmp_path, missing=(1,))
    io.write_table(man, tmp_path / "m.parquet")
    shards = [tmp_path / f"s{k}.parquet" for k in range(2)]
    for k in range(2):
        run_features_shard(cfg, "d", "text", k, 2, tmp_path / "m.parquet", shards[k])
    merged = merge_shards(cfg, "d", "text", shards, tmp_path / "m.parquet", tmp_path / "t.parquet")
    assert merged["item_id"].tolist() == ["i0", "i1", "i2", "i3"]
    with pytest.raises(DatasetError, match="do not match the manifest"):
        merge_shards(cfg, "d", "text", shards[:1], tmp_path / "m.parquet", tmp_path / "x.parquet")
    # 1 of 4 items fails metadata: fine at 0.5, fatal at 0.2
    run_features_shard(
        cfg, "d", "metadata", 0, 1, tmp_path / "m.parquet", tmp_path / "meta0.parquet"
    )
    merge_shards(cfg, "d", "metadata", [tmp_path / "meta0.parquet"], tmp_path / "m.parquet", tmp_path / "meta.parquet")  # fmt: skip
    strict = cfg.model_copy(
        update={"features": cfg.features.model_copy(update={"max_failed_fraction": 0.2})}
    )
    with pytest.raises(DatasetError, match="1 of 4 items failed metadata"):
        merge_shards(strict, "d", "metadata", [tmp_path / "meta0.parquet"], tmp_path / "m.parquet", tmp_path / "y.parquet")  # fmt: skip


def test_feature_set_joins_groups_and_labels(tmp_path, cfg):
    man = _manifest(tmp_path, missing=(3,))
    tables = {g: extract_group(man, g, cfg) for g in ("text", "metadata")}
    fs = feature_set(man, tables, dataset="d")
    assert fs.labels.tolist() == [0, 1, 0, 1]
    assert "text__transcript" in fs.columns("text").text
    assert "metadata__audio_format" in fs.columns("metadata").categorical
    assert "metadata__snr_db" in fs.columns("metadata").numeric
    assert fs.failed["metadata"].tolist() == [False, False, False, True]
    assert fs.frame.loc[3, "metadata__audio_format"] == "<missing>"
    sub = fs.subset(["i1", "i3"])
    assert sub.labels.tolist() == [1, 1] and len(sub.frame) == 2
    # round trip through the workflow's file layout
    io.write_table(man, tmp_path / "results" / "manifests" / "d.parquet")
    for g, t in tables.items():
        io.write_table(t, tmp_path / "results" / "features" / "d" / f"{g}.parquet")
    again = load_features("d", results=tmp_path / "results")
    assert list(again.groups) == ["text", "metadata"]
    pd.testing.assert_frame_equal(again.frame, fs.frame)
