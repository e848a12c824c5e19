"""Decode any clip to mono float32 at the target rate, or fail with a reason code.

Decoding goes through libsndfile (the ``soundfile`` package), which reads WAV,
FLAC, OGG/Vorbis/Opus and MP3 (libsndfile >= 1.1) from a path or from bytes;
resampling uses soxr (the resampler librosa itself uses). Every failure is an
:class:`~lalm_audit.errors.AudioError` whose ``code`` is the rejection reason
code written to the rejected-items table.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from lalm_audit.errors import AudioError

AudioSource = str | os.PathLike[str] | bytes


@dataclass(frozen=True)
class AudioInfo:
    """What the source file says about itself (before any resampling or mixing)."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _describe(src: AudioSource) -> str:
    return f"<{len(src)} embedded bytes>" if isinstance(src, bytes | bytearray) else str(src)


def _open(src: AudioSource) -> sf.SoundFile:
    if isinstance(src, bytes | bytearray):
        if len(src) == 0:
            raise AudioError("empty_audio", "embedded audio has 0 bytes")
        handle: Any = io.BytesIO(src)
    else:
        path = os.fspath(src)
        if not os.path.exists(path):
            raise AudioError("missing_audio", f"audio file not found: {path}")
        if os.path.getsize(path) == 0:
            raise AudioError("empty_audio", f"audio file is 0 bytes: {path}")
        handle = path
    try:
        return sf.SoundFile(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            "unreadable_audio", f"cannot decode {_describe(src)} as WAV/FLAC/OGG/MP3: {exc}"
        ) from None


def probe(src: AudioSource) -> AudioInfo:
    """Read the header only."""
    with _open(src) as f:
        return AudioInfo(
            int(f.samplerate), int(f.channels), int(f.frames), str(f.format), str(f.subtype)
        )


def to_mono(x: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) by averaging channels."""
    return x if x.ndim == 1 else x.mean(axis=1)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return x.astype(np.float32, copy=False)
    return soxr.resample(x, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


#: Below this a header's sample rate is not audio (a 1 Hz WAV is 16,000 "seconds" of noise).
MIN_SOURCE_RATE = 1000


def _read_frames(f: sf.SoundFile, n: int) -> np.ndarray:
    """Read up to ``n`` frames from the current position into a buffer of exactly ``n``.

    Written against libsndfile directly because ``SoundFile.read`` re-seeks after every
    read to track its position, and libsndfile's FLAC seek fails once the header's sample
    count overstates the data: the one case where reading must simply stop at the end.
    The buffer is sized by the caller's (capped) request, never by the header.
    """
    out = np.empty((n, f.channels), dtype=np.float32)
    if n == 0:
        return out
    got = sf._snd.sf_readf_float(f._file, sf._ffi.cast("float *", out.ctypes.data), n)
    err = sf._snd.sf_error(f._file)
    if err:
        raise sf.LibsndfileError(err)
    return out[: int(got)]


@dataclass(frozen=True)
class Decoded:
    """Decoded samples (mono float32 at ``sample_rate``) and what the source said."""

    samples: np.ndarray
    sample_rate: int
    info: AudioInfo
    source_frames: int  # frames of the requested segment in the source, at the source rate
    capped: bool = False  # True when only the first ``max_duration_s`` were read

    @property
    def source_duration_s(self) -> float:
        """Duration of the requested segment in the source, before any cap.

        Frames actually read when the whole segment was read; when the cap cut it, the
        segment length the header gives (the only thing known without reading the rest).
        """
        return self.source_frames / self.info.sample_rate


def decode(
    src: AudioSource,
    *,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    target_sr: int = 16000,
    max_duration_s: float | None = None,
) -> Decoded:
    """Decode ``[offset_s, offset_s + duration_s)`` of ``src`` to mono float32 at ``target_sr``.

    With ``max_duration_s`` at most that many seconds are read and resampled, whatever the
    header claims, so memory is bounded by the cap: a header that lies about its length
    (a 1 s FLAC claiming 2^36 samples) or a one-hour recording costs no more than a
    ``max_duration_s`` clip. ``source_frames`` still reports the segment's full length.

    Raises
    :class:`AudioError` with code ``missing_audio``, ``empty_audio``,
    ``unreadable_audio`` or ``bad_segment``.
    """
    with _open(src) as f:
        info = AudioInfo(
            int(f.samplerate), int(f.channels), int(f.frames), str(f.format), str(f.subtype)
        )
        if info.sample_rate < MIN_SOURCE_RATE:
            raise AudioError(
                "unreadable_audio",
                f"{_describe(src)} says its sample rate is {info.sample_rate} Hz "
                f"(below {MIN_SOURCE_RATE} Hz: a broken header, not audio)",
            )
        start = round(offset_s * info.sample_rate)
        if offset_s < 0 or (info.frames and start >= info.frames and start > 0):
            raise AudioError(
                "bad_segment",
                f"offset {offset_s:.3f}s is outside {_describe(src)} ({info.duration_s:.3f}s long)",
            )
        # What the header says the segment holds; never allocated unless the cap allows it.
        claimed = max(0, info.frames - start)
        if duration_s is not None:
            claimed = min(claimed, max(0, round(duration_s * info.sample_rate)))
        want = claimed
        cap = None if max_duration_s is None else max(1, round(max_duration_s * info.sample_rate))
        if cap is not None:
            want = min(want, cap + 1)  # one frame past the cap tells "longer than the cap"
        try:
            if start:
                f.seek(start)
            data = _read_frames(f, want)
        except (sf.LibsndfileError, RuntimeError, MemoryError) as exc:
            raise AudioError(
                "unreadable_audio", f"decoding {_describe(src)} failed: {exc}"
            ) from None
    got = int(data.shape[0])
    capped = cap is not None and got > cap
    if capped:
        data = data[:cap]  # cut before mixing and resampling: only the cap is ever processed
        source_frames = max(claimed, got)
    else:
        source_frames = got  # read to the end: the true length, whatever the header said
    if got == 0:
        raise AudioError(
            "empty_audio", f"{_describe(src)} holds no samples in the requested segment"
        )
    if not np.isfinite(data).all():
        raise AudioError("unreadable_audio", f"{_describe(src)} decodes to NaN/inf samples")
    mono = to_mono(data)
    return Decoded(
        resample(mono, info.sample_rate, target_sr), target_sr, info, source_frames, capped
    )


def peak_dbfs(x: np.ndarray) -> float:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def load_item(item: Any, target_sr: int = 16000) -> np.ndarray:
    """Decode a manifest row (a mapping or a namedtuple with manifest columns) to the samples every stage uses."""
    get = item.get if hasattr(item, "get") else lambda k, d=None: getattr(item, k, d)
    blob = get("audio_bytes")
    src: AudioSource = (
        blob if isinstance(blob, bytes | bytearray) and len(blob) else get("audio_path")
    )
    if src is None:
        raise AudioError(
            "missing_audio", f"item {get('item_id')!r} has neither audio_path nor audio_bytes"
        )
    return decode(
        src,
        offset_s=float(get("offset_s", 0.0) or 0.0),
        duration_s=get("duration_s"),
        target_sr=target_sr,
    ).samples


def write_audio(
    path: str | os.PathLike[str], x: np.ndarray, sample_rate: int, subtype: str | None = None
) -> None:
    """Write a clip; the container follows the file extension (.wav, .flac, .ogg, .mp3).

    WAV and FLAC default to 16-bit PCM; other containers use libsndfile's default codec.
    """
    path = os.fspath(path)
    if subtype is None and path.lower().endswith((".wav", ".flac")):
        subtype = "PCM_16"
    sf.write(path, np.clip(x, -1.0, 1.0), sample_rate, subtype=subtype)
