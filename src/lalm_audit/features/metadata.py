"""Metadata features: facts about the file and the recording, read at the source's own rate.

Inputs are the audio file and the manifest's technical columns only. Never
``meta_*`` columns (free metadata, which in the demo holds the ground truth),
nor ``item_id``, ``speaker_id``, ``label`` or ``source_split``: a blind
baseline that read them would be measuring the answer key, not a shift.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

import librosa
import numpy as np

from lalm_audit.audio import AudioInfo, decode, probe
from lalm_audit.config import Config, MetadataFeaturesConfig

NAME = "metadata"
CATEGORICAL = ("audio_format", "subtype")
NUMERIC = (
    "duration_s",
    "source_duration_s",
    "sample_rate",
    "channels",
    "bit_depth",
    "file_bytes",
    "bitrate_kbps",
    "lead_silence_s",
    "trail_silence_s",
    "peak_dbfs",
    "rms_dbfs",
    "clip_ratio",
    "dc_offset",
    "snr_db",
)
#: manifest columns this group may read (everything else is off limits)
MANIFEST_COLUMNS = ("audio_path", "audio_bytes", "offset_s", "duration_s", "source_duration_s")

DESCRIPTIONS: dict[str, tuple[str, str, str, str]] = {
    "duration_s": ("duration", "s", "are longer", "are shorter"),
    "source_duration_s": ("duration in the source", "s", "are longer", "are shorter"),
    "sample_rate": (
        "original sample rate",
        "Hz",
        "are stored at a higher sample rate",
        "are stored at a lower sample rate",
    ),
    "channels": ("channel count", "", "have more channels", "have fewer channels"),
    "bit_depth": (
        "bit depth (0 = compressed)",
        "bits",
        "have a higher bit depth",
        "have a lower bit depth",
    ),
    "file_bytes": ("file size", "bytes", "are larger files", "are smaller files"),
    "bitrate_kbps": ("file bitrate", "kbit/s", "have a higher bitrate", "have a lower bitrate"),
    "lead_silence_s": (
        "leading silence",
        "s",
        "start with more silence",
        "start with less silence",
    ),
    "trail_silence_s": ("trailing silence", "s", "end with more silence", "end with less silence"),
    "peak_dbfs": ("peak level", "dBFS", "peak higher", "peak lower"),
    "rms_dbfs": ("overall level", "dBFS", "are louder", "are quieter"),
    "clip_ratio": ("share of clipped samples", "", "clip more", "clip less"),
    "dc_offset": ("DC offset", "", "have a higher DC offset", "have a lower DC offset"),
    "snr_db": ("estimated SNR", "dB", "are cleaner", "are noisier"),
    "audio_format": ("file format", "", "", ""),
    "subtype": ("sample encoding", "", "", ""),
}


def columns(cfg: Config) -> list[str]:
    return [*CATEGORICAL, *NUMERIC]


def bit_depth(subtype: str) -> float:
    """Bits per sample from a libsndfile subtype (PCM_16 -> 16, FLOAT -> 32); 0 for compressed codecs."""
    if subtype == "FLOAT":
        return 32.0
    if subtype == "DOUBLE":
        return 64.0
    m = re.search(r"(?:PCM|ALAC)_[SU]?(\d+)$", subtype)
    return float(m.group(1)) if m else 0.0


def estimate_snr_db(x: np.ndarray, sr: int, frame_s: float = 0.025) -> float:
    """Blind SNR estimate from frame energies: loud frames (speech + noise) against the quietest (noise).

    No well-kept library estimates SNR without a clean reference, hence this
    short percentile estimate: noise power = mean power of the quietest 10% of
    frames, signal power = mean power of the loudest 50% minus the noise. It
    ranks clips by noisiness; it is not a calibrated measurement.
    """
    n = max(1, round(frame_s * sr))
    frames = librosa.util.frame(np.pad(x, (0, max(0, n - x.size))), frame_length=n, hop_length=n)
    power = np.sort((frames.astype(np.float64) ** 2).mean(axis=0))
    k = max(1, power.size // 10)
    noise = max(float(power[:k].mean()), 1e-12)
    loud = float(power[power.size // 2 :].mean())
    return float(10 * np.log10(max(loud - noise, 1e-12) / noise))


def nonsilent_span(x: np.ndarray, sr: int, top_db: float) -> tuple[int, int]:
    """[start, end) samples of ``x`` between the first and last frame within ``top_db`` of the loudest frame.

    The rule and framing of ``librosa.effects.trim`` (centered 40 ms frames,
    10 ms hop, frame RMS against the maximum); written with ``librosa.util``
    alone because importing ``librosa.effects`` costs about 2.5 s per job
    (a test checks both agree).
    """
    hop = max(1, round(0.01 * sr))
    n = 4 * hop
    padded = np.pad(x.astype(np.float64), (n // 2, n // 2), mode="constant")
    frames = librosa.util.frame(padded, frame_length=n, hop_length=hop)
    rms = np.sqrt(np.mean(frames**2, axis=0))
    db = 20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10))
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return x.size, x.size
    return min(x.size, int(loud[0] * hop)), min(x.size, int((loud[-1] + 1) * hop))


def signal_features(x: np.ndarray, sr: int, p: MetadataFeaturesConfig) -> dict[str, float]:
    """Level, clipping, DC, silence and SNR of ``x``: (frames,) or (frames, channels) at its own rate."""
    raw = x if x.ndim == 2 else x[:, None]
    mono = raw.mean(axis=1)
    peak = float(np.abs(raw).max()) if raw.size else 0.0
    rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2))) if mono.size else 0.0
    start, end = nonsilent_span(mono, sr, p.silence_top_db) if peak > 0 else (mono.size, mono.size)
    return {
        "lead_silence_s": start / sr,
        "trail_silence_s": (mono.size - end) / sr,
        "peak_dbfs": 20 * np.log10(peak) if peak > 0 else -120.0,
        "rms_dbfs": 20 * np.log10(rms) if rms > 0 else -120.0,
        "clip_ratio": float(np.mean(np.abs(raw) >= p.clip_level)) if raw.size else 0.0,
        "dc_offset": float(mono.mean()) if mono.size else 0.0,
        "snr_db": estimate_snr_db(mono, sr) if peak > 0 else 0.0,
    }


def file_features(info: AudioInfo, file_bytes: int) -> dict[str, Any]:
    """Container, encoding, rate, channels, size and bitrate of the whole file."""
    file_s = info.duration_s
    return {
        "audio_format": info.format,
        "subtype": info.subtype,
        "sample_rate": float(info.sample_rate),
        "channels": float(info.channels),
        "bit_depth": bit_depth(info.subtype),
        "file_bytes": float(file_bytes),
        "bitrate_kbps": file_bytes * 8 / file_s / 1000 if file_s > 0 else 0.0,
    }


def extract(row: dict[str, Any], cfg: Config) -> dict[str, Any]:
    blob = row.get("audio_bytes")
    src = blob if isinstance(blob, bytes | bytearray) and len(blob) else row.get("audio_path")
    if src is None:
        raise ValueError(f"item {row.get('item_id')!r} has neither audio_path nor audio_bytes")
    info = probe(src)
    dec = decode(
        src,
        offset_s=float(row.get("offset_s") or 0.0),
        duration_s=row.get("duration_s"),
        target_sr=info.sample_rate,  # the source's own rate: nothing resampled
    )
    file_bytes = len(src) if isinstance(src, bytes | bytearray) else os.path.getsize(src)
    source_s = row.get("source_duration_s")
    return {
        **file_features(info, file_bytes),
        "duration_s": dec.source_duration_s,
        "source_duration_s": float(source_s) if source_s is not None else dec.source_duration_s,
        **signal_features(dec.samples, info.sample_rate, cfg.features.metadata),
    }


@cache
def describe(feature: str) -> tuple[str, str, str, str]:
    return DESCRIPTIONS.get(feature, (feature, "", "", ""))
