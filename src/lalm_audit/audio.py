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


@dataclass(frozen=True)
class Decoded:
    """Decoded samples (mono float32 at ``sample_rate``) and what the source said."""

    samples: np.ndarray
    sample_rate: int
    info: AudioInfo
    source_frames: int  # frames read from the source, at the source rate

    @property
    def source_duration_s(self) -> float:
        """Exact duration of the decoded segment, from the source's own frame count."""
        return self.source_frames / self.info.sample_rate


def decode(
    src: AudioSource,
    *,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    target_sr: int = 16000,
) -> Decoded:
    """Decode ``[offset_s, offset_s + duration_s)`` of ``src`` to mono float32 at ``target_sr``.

    Raises
    :class:`AudioError` with code ``missing_audio``, ``empty_audio``,
    ``unreadable_audio`` or ``bad_segment``.
    """
    with _open(src) as f:
        info = AudioInfo(
            int(f.samplerate), int(f.channels), int(f.frames), str(f.format), str(f.subtype)
        )
        start = round(offset_s * info.sample_rate)
        if offset_s < 0 or (info.frames and start >= info.frames and start > 0):
            raise AudioError(
                "bad_segment",
                f"offset {offset_s:.3f}s is outside {_describe(src)} ({info.duration_s:.3f}s long)",
            )
        n = -1 if duration_s is None else max(0, round(duration_s * info.sample_rate))
        try:
            f.seek(start)
            data = f.read(frames=n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(
                "unreadable_audio", f"decoding {_describe(src)} failed: {exc}"
            ) from None
    if data.shape[0] == 0:
        raise AudioError(
            "empty_audio", f"{_describe(src)} holds no samples in the requested segment"
        )
    if not np.isfinite(data).all():
        raise AudioError("unreadable_audio", f"{_describe(src)} decodes to NaN/inf samples")
    mono = to_mono(data)
    return Decoded(resample(mono, info.sample_rate, target_sr), target_sr, info, int(data.shape[0]))


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
