"""Perturbation conditions against known signals, and the perturbation stage."""

import json

import numpy as np
import pandas as pd
import pytest

from lalm_audit.config import (
    BandlimitCondition,
    NoiseCondition,
    PitchShiftCondition,
    ResynthesisCondition,
    SilenceCondition,
    SnrNoiseCondition,
    VtlpCondition,
    parse_config,
)
from lalm_audit.perturb import derived_id, rendering_group, run_perturb
from lalm_audit.perturb.conditions import apply_condition
from tests.conftest import sine, write

SR = 16000


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * SR / x.size)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def one(x, cond, seed=0, text="hello"):
    out = apply_condition(x, SR, text, cond, np.random.default_rng(seed))
    assert len(out) == 1 and out[0].dtype == np.float32
    return out[0]


def test_silence_fixed_and_same_length():
    x = sine(200, dur=1.7)
    assert one(x, SilenceCondition(kind="silence", length="same")).size == x.size
    fixed = one(x, SilenceCondition(kind="silence", length="fixed", seconds=3.0))
    assert fixed.size == 3 * SR and not fixed.any()


def test_noise_keeps_length_and_rms_and_is_seeded():
    x = sine(200, dur=2.0, amp=0.3)
    y = one(x, NoiseCondition(kind="noise"))
    assert y.size == x.size and rms(y) == pytest.approx(rms(x), rel=0.02)
    assert np.array_equal(y, one(x, NoiseCondition(kind="noise"))) and not np.array_equal(
        y, one(x, NoiseCondition(kind="noise"), seed=1)
    )
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.05  # nothing of the original survives


def test_snr_noise_hits_the_target():
    x = sine(300, dur=2.0, amp=0.3)
    y = one(x, SnrNoiseCondition(kind="snr_noise", snr_db=10.0))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_bandlimit_passes_the_band_only():
    cond = BandlimitCondition(kind="bandlimit", low_hz=300, high_hz=3400)
    for freq, kept in ((1000, True), (80, False), (6000, False)):
        ratio = rms(one(sine(freq, dur=1.0), cond)) / rms(sine(freq, dur=1.0))
        assert (ratio > 0.8) if kept else (ratio < 0.1), (freq, ratio)


def test_pitch_shift_moves_the_fundamental():
    y = one(sine(200, dur=1.0), PitchShiftCondition(kind="pitch_shift", semitones=4.0))
    assert peak_hz(y) == pytest.approx(200 * 2 ** (4 / 12), rel=0.03)


def test_vtlp_moves_spectral_peaks_and_keeps_length():
    x = sine(1000, dur=1.0)
    y = one(x, VtlpCondition(kind="vtlp", alpha=1.2))
    assert y.size == x.size
    assert peak_hz(y) == pytest.approx(1200, rel=0.03)
    assert peak_hz(one(x, VtlpCondition(kind="vtlp", alpha=0.8))) == pytest.approx(800, rel=0.03)


def test_espeak_resynthesis_renders_each_voice_deterministically():
    cond = ResynthesisCondition(kind="resynthesis")
    a = apply_condition(
        np.zeros(10, np.float32), SR, "The old dog slept.", cond, np.random.default_rng(0)
    )
    b = apply_condition(
        np.zeros(10, np.float32), SR, "The old dog slept.", cond, np.random.default_rng(9)
    )
    assert len(a) == 3 and all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0][:8000], a[1][:8000])
    assert all(0.5 < u.size / SR < 3.0 for u in a)


def test_resynthesis_voices_are_never_demo_speakers():
    from lalm_audit.config import DemoConfig
    from lalm_audit.demo import make_speakers
    from lalm_audit.demo.espeak import Voice
    from lalm_audit.demo.world import RESYNTHESIS_VOICES

    used = {s.voice.name for s in make_speakers(DemoConfig(n_speakers_a=15, n_speakers_b=12))}
    assert not used & {Voice.parse(v).name for v in RESYNTHESIS_VOICES}


def test_transformers_tts_engine_on_a_tiny_local_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from lalm_audit.perturb.testing import tiny_vits

    model = tiny_vits(tmp_path / "vits", sampling_rate=22050)
    cond = ResynthesisCondition(
        kind="resynthesis", engine="transformers", model=str(model), renderings=2
    )
    from lalm_audit.perturb.tts import TransformersTTS

    tts = TransformersTTS(cond)
    out = apply_condition(
        np.zeros(10, np.float32), SR, "hello there", cond, np.random.default_rng(0), tts
    )
    again = apply_condition(
        np.zeros(10, np.float32), SR, "hello there", cond, np.random.default_rng(0), tts
    )
    assert len(out) == 2 and all(u.size > 0 and u.dtype == np.float32 for u in out)
    assert all(
        np.array_equal(u, v) for u, v in zip(out, again, strict=True)
    )  # seeded per rendering


def test_condition_config_errors():
    with pytest.raises(ValueError, match="needs `model`"):
        ResynthesisCondition(kind="resynthesis", engine="transformers")
    with pytest.raises(ValueError, match="one voice per rendering"):
        ResynthesisCondition(kind="resynthesis", voices=["en-us+m1"], renderings=3)
    with pytest.raises(Exception, match="not be 'original'"):
        parse_config(
            {
                "datasets": {"d": {"loader": "table", "path": "x"}},
                "perturb": {"conditions": {"original": {"kind": "noise"}}},
            }
        )


def test_ids():
    assert (
        derived_id("a", "noise") == "a__noise"
        and derived_id("a", "resynthesis", 2) == "a__resynthesis__r2"
    )
    assert (
        rendering_group("a__resynthesis__r2") == "a__resynthesis"
        and rendering_group("a__noise") == "a__noise"
    )


def test_stage_writes_a_manifest_and_records_failures(in_tmp):
    from lalm_audit import io
    from lalm_audit.schemas import MANIFEST

    rows = []
    for i in range(4):
        path = write(in_tmp / f"a{i}.wav", sine(200 + 50 * i, dur=1.0))
        rows.append({"item_id": f"a{i}", "dataset": "d", "audio_path": str(path.name), "audio_bytes": None, "audio_format": "WAV",
                     "offset_s": 0.0, "duration_s": 1.0, "source_duration_s": 1.0, "sample_rate": SR, "channels": 1,
                     "text": f"item {i}", "speaker_id": "s", "label": i % 2, "source_split": "x", "truncated": False, "meta_group": "A"})  # fmt: skip
    rows[3]["audio_path"] = "gone.wav"
    io.write_table(pd.DataFrame(rows), "m.parquet", schema=MANIFEST)
    cfg = parse_config({"datasets": {"d": {"loader": "table", "path": "x"}},
                        "perturb": {"conditions": {"quiet": {"kind": "silence", "length": "fixed", "seconds": 2.0},
                                                   "voices": {"kind": "resynthesis", "renderings": 2,
                                                              "voices": ["en-us+m1", "en-us+f2/r150"]}}}})  # fmt: skip
    s = run_perturb(cfg, "d", "quiet", "m.parquet", "q.parquet", "q.rej.parquet", "audio/quiet")
    assert s == {"items_in": 4, "perturbed": 3, "derived_items": 3, "rejected": 1}
    q = io.read_table("q.parquet").set_index("item_id")
    assert list(q.index) == ["a0__quiet", "a1__quiet", "a2__quiet"]
    assert (
        q.loc["a1__quiet", "label"] == 1
        and q.loc["a1__quiet", "text"] == "item 1"
        and q.loc["a1__quiet", "meta_group"] == "A"
    )
    assert (
        q.loc["a1__quiet", "duration_s"] == 2.0
        and json.loads(q.loc["a1__quiet", "meta_params"])["seconds"] == 2.0
    )
    assert io.read_table("q.rej.parquet")["reason_code"].tolist() == ["perturbation_failed"]
    assert io.read_provenance("q.parquet")["condition"] == "quiet"
    s = run_perturb(cfg, "d", "voices", "m.parquet", "v.parquet", "v.rej.parquet", "audio/voices")
    v = io.read_table("v.parquet")
    assert s["derived_items"] == 6 and set(v["item_id"].map(rendering_group)) == {
        "a0__voices",
        "a1__voices",
        "a2__voices",
    }


def test_perturb_datasets_must_be_audit_datasets():
    base = {
        "datasets": {
            "a": {"loader": "table", "path": "x"},
            "pool": {"loader": "table", "path": "y", "role": "train_pool"},
        }
    }
    assert parse_config(base).perturbed_datasets() == ["a"]
    with pytest.raises(Exception, match="unknown datasets"):
        parse_config({**base, "perturb": {"datasets": ["nope"]}})
    with pytest.raises(Exception, match="not audit datasets"):
        parse_config({**base, "perturb": {"datasets": ["pool"]}})
