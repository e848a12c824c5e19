import numpy as np
import pytest

from lalm_audit.audio import decode, load_item, peak_dbfs, probe
from lalm_audit.errors import AudioError
from tests.conftest import sine, write


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg", ".mp3"])
@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_any_format_rate_and_channels_decode_to_16k_mono_float32(tmp_path, ext, sr):
    stereo = sine(440.0, dur=1.5, sr=sr, channels=2)
    path = write(tmp_path / f"a{ext}", stereo, sr)
    dec = decode(path, target_sr=16000)
    assert dec.samples.dtype == np.float32 and dec.samples.ndim == 1
    assert dec.info.sample_rate == sr and dec.info.channels == 2
    # MP3 encoders pad a few ms; everything else is exact to the sample.
    tol = 0.06 if ext == ".mp3" else 1 / 16000
    assert abs(len(dec.samples) / 16000 - 1.5) <= tol
    spectrum = np.abs(np.fft.rfft(dec.samples))
    assert abs(np.argmax(spectrum) * 16000 / len(dec.samples) - 440.0) < 2.0


def test_channels_are_averaged(tmp_path):
    left = sine(300, sr=16000)
    both = np.stack([left, np.zeros_like(left)], axis=1)
    dec = decode(write(tmp_path / "s.wav", both, subtype="FLOAT"), target_sr=16000)
    np.testing.assert_allclose(dec.samples, left / 2, atol=1e-6)


def test_segment_is_cut_exactly(tmp_path):
    x = np.arange(16000 * 3, dtype=np.float32) / (
        16000 * 3
    )  # a ramp: position is readable from the value
    path = write(tmp_path / "r.wav", x, subtype="FLOAT")
    dec = decode(path, offset_s=1.0, duration_s=0.5)
    assert len(dec.samples) == 8000 and dec.source_duration_s == 0.5
    assert dec.samples[0] == pytest.approx(x[16000])


def test_bytes_source_and_probe(tmp_path):
    path = write(tmp_path / "b.flac", sine(dur=0.25, sr=22050), 22050)
    dec = decode(path.read_bytes())
    assert dec.info.format == "FLAC" and len(dec.samples) == 4000
    assert probe(path).frames == round(0.25 * 22050)


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda p: p, "missing_audio"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty_audio"),
        (lambda p: (p.write_bytes(b"RIFF\x00\x00garbage" * 50), p)[1], "unreadable_audio"),
    ],
)
def test_bad_files_raise_with_reason_code(tmp_path, setup, code):
    path = setup(tmp_path / "x.wav")
    with pytest.raises(AudioError) as exc:
        decode(path)
    assert exc.value.code == code
    assert "x.wav" in str(exc.value)


def test_zero_sample_file_and_bad_offset(tmp_path):
    empty = write(tmp_path / "e.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError) as exc:
        decode(empty)
    assert exc.value.code == "empty_audio"
    with pytest.raises(AudioError) as exc:
        decode(write(tmp_path / "s.wav", sine(dur=1.0)), offset_s=5.0)
    assert exc.value.code == "bad_segment"


def test_peak_and_load_item(tmp_path):
    assert peak_dbfs(np.zeros(10)) == float("-inf")
    assert peak_dbfs(np.array([0.5])) == pytest.approx(-6.0206, abs=1e-3)
    path = write(tmp_path / "i.wav", sine(dur=2.0))
    x = load_item(
        {"audio_path": str(path), "audio_bytes": None, "offset_s": 0.5, "duration_s": 1.0}
    )
    assert len(x) == 16000


def _lying_flac(tmp_path, seconds=1.0):
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, sine(300, dur=seconds), 16000, format="FLAC", subtype="PCM_16")
    b = bytearray(buf.getvalue())
    v = int.from_bytes(b[18:26], "big") | ((1 << 36) - 1)  # STREAMINFO total samples: 2^36 - 1
    b[18:26] = v.to_bytes(8, "big")
    path = tmp_path / "lying.flac"
    path.write_bytes(bytes(b))
    return path


def test_lying_header_is_read_to_its_real_end_within_the_cap(tmp_path):
    import tracemalloc

    path = _lying_flac(tmp_path)
    assert probe(path).frames == (1 << 36) - 1  # the header's claim: ~50 days
    tracemalloc.start()
    dec = decode(path, max_duration_s=30.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert dec.source_frames == 16000 and not dec.capped and len(dec.samples) == 16000
    # the buffer is sized by the 30 s cap (1.9 MB of float32), never by the header (256 GiB)
    assert peak < 4 * 30 * 16000 * 4


def test_long_file_is_cut_before_resampling(tmp_path):
    import tracemalloc

    path = write(tmp_path / "long.wav", sine(dur=60.0, sr=44100, channels=2), 44100)
    tracemalloc.start()
    dec = decode(path, target_sr=16000, max_duration_s=2.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert dec.capped and len(dec.samples) == 32000
    assert dec.source_duration_s == pytest.approx(60.0)  # the full length, from the header
    whole = 60 * 44100 * 2 * 4  # what reading the whole file as float32 would take (21 MB)
    assert peak < whole / 10
    # a segment shorter than the cap is read exactly, cap or not
    seg = decode(path, offset_s=10.0, duration_s=1.5, max_duration_s=2.0)
    assert not seg.capped and seg.source_duration_s == pytest.approx(1.5)


def test_implausible_sample_rate_is_unreadable(tmp_path):
    import soundfile as sf

    path = tmp_path / "onehz.wav"
    sf.write(path, np.full(16000, 0.3, np.float32), 1, subtype="PCM_16")
    with pytest.raises(AudioError) as exc:
        decode(path, max_duration_s=30.0)
    assert exc.value.code == "unreadable_audio" and "1 Hz" in str(exc.value)
