"""Spectral features: librosa frame series summarized per clip (mean, std, percentiles).

One magnitude STFT per clip feeds every spectral descriptor (librosa accepts a
precomputed ``S``), so the cost is one STFT plus cheap reductions.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import librosa
import numpy as np

from lalm_audit.audio import load_item
from lalm_audit.config import Config, SpectralConfig

NAME = "spectral"

# series -> (readable phrase, unit, word for "higher", word for "lower")
_SERIES: dict[str, tuple[str, str, str, str]] = {
    "centroid": (
        "spectral centroid",
        "Hz",
        "sound brighter",
        "sound duller (less high-frequency energy)",
    ),
    "bandwidth": ("spectral bandwidth", "Hz", "have a wider band", "are band-limited"),
    "rolloff": (
        "spectral rolloff",
        "Hz",
        "reach higher frequencies",
        "are band-limited (lower rolloff)",
    ),
    "flatness": (
        "spectral flatness",
        "",
        "are noisier (flatter spectrum)",
        "are more tonal (less noisy)",
    ),
    "zcr": ("zero-crossing rate", "", "are noisier or brighter", "are smoother"),
    "rms": ("frame RMS energy", "", "are louder", "are quieter"),
}


def _series_names(p: SpectralConfig) -> list[str]:
    names = [f"mfcc_{i + 1:02d}" for i in range(p.n_mfcc)]
    names += [f"dmfcc_{i + 1:02d}" for i in range(p.n_mfcc)]
    names += ["centroid", "bandwidth", "rolloff", "flatness"]
    names += [f"contrast_{i + 1}" for i in range(p.contrast_bands + 1)]
    names += ["zcr", "rms"]
    return names


def _stat_names(p: SpectralConfig) -> list[str]:
    return ["mean", "std", *(f"p{q:g}" for q in p.percentiles)]


def columns(cfg: Config) -> list[str]:
    p = cfg.features.spectral
    return [f"{s}_{t}" for s in _series_names(p) for t in _stat_names(p)]


def spectral_features(y: np.ndarray, sr: int, p: SpectralConfig) -> dict[str, float]:
    """Clip statistics of every spectral frame series of ``y`` (mono float32 at ``sr``)."""
    if y.size < p.n_fft:  # librosa pads short clips; keep at least one full window
        y = np.pad(y, (0, p.n_fft - y.size))
    S = np.abs(librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop_length))
    mel = librosa.feature.melspectrogram(S=S**2, sr=sr, n_mels=p.n_mels)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=p.n_mfcc)
    # delta needs an odd width <= the number of frames; mode="nearest" pads short clips
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    dmfcc = (
        librosa.feature.delta(mfcc, width=width, mode="nearest")
        if width >= 3
        else np.zeros_like(mfcc)
    )
    series = np.vstack(
        [
            mfcc,
            dmfcc,
            librosa.feature.spectral_centroid(S=S, sr=sr),
            librosa.feature.spectral_bandwidth(S=S, sr=sr),
            librosa.feature.spectral_rolloff(S=S, sr=sr, roll_percent=p.rolloff_percent),
            librosa.feature.spectral_flatness(S=S),
            librosa.feature.spectral_contrast(S=S, sr=sr, n_bands=p.contrast_bands),
            librosa.feature.zero_crossing_rate(y, frame_length=p.n_fft, hop_length=p.hop_length),
            librosa.feature.rms(y=y, frame_length=p.n_fft, hop_length=p.hop_length),  # unwindowed
        ]
    )
    stats = [series.mean(axis=1), series.std(axis=1)]
    stats += list(np.percentile(series, p.percentiles, axis=1))
    table = np.stack(stats, axis=1)  # (series, stat)
    names, stat_names = _series_names(p), _stat_names(p)
    return {
        f"{s}_{t}": float(table[i, j])
        for i, s in enumerate(names)
        for j, t in enumerate(stat_names)
    }


def extract(row: dict[str, Any], cfg: Config) -> dict[str, Any]:
    sr = cfg.audio.sample_rate
    return spectral_features(load_item(row, sr), sr, cfg.features.spectral)


_STAT_WORDS = {"mean": "mean", "std": "variability of"}


@cache
def describe(feature: str) -> tuple[str, str, str, str]:
    """Readable phrase, unit and direction words of a spectral column, e.g. 'rolloff_mean'."""
    series, _, stat = feature.rpartition("_")
    stat_word = _STAT_WORDS.get(
        stat, f"{_ordinal(stat[1:])} percentile of" if stat.startswith("p") else stat
    )
    if series in _SERIES:
        phrase, unit, hi, lo = _SERIES[series]
        if stat == "std":
            return f"variability of {phrase}", unit, "", ""
        return f"{stat_word} {phrase}", unit, hi, lo
    kind, _, k = series.partition("_")
    phrase = {
        "mfcc": f"MFCC {k.lstrip('0')}",
        "dmfcc": f"MFCC {k.lstrip('0')} change rate",
        "contrast": f"spectral contrast band {k}",
    }.get(kind)
    if phrase is None:
        return feature, "", "", ""
    return f"{stat_word} {phrase}", "dB" if kind == "contrast" else "", "", ""


def _ordinal(q: str) -> str:
    n = int(float(q)) if q.replace(".", "", 1).isdigit() else q
    if not isinstance(n, int):
        return str(q)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
