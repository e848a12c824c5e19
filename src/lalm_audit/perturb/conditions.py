"""Perturbations of one item's audio: pure functions of (samples, item, condition, rng).

Each returns a list of renderings (one for every condition but re-synthesis,
which renders the transcript in several voices). Library choices:
audiomentations for pitch shifting, noise at an SNR and filtering; librosa's Griffin-Lim for
the phase of the VTLP-warped spectrogram; the
espeak-ng engine of the demo world (or a transformers text-to-speech model)
for re-synthesis. VTLP is written here because no maintained library applies
it to waveforms: it is a piecewise-linear warp of the STFT's frequency axis
(Jaitly & Hinton, 2013) on top of librosa's STFT.
"""

from __future__ import annotations

import random
from typing import Any

import librosa
import numpy as np
from audiomentations import AddGaussianSNR, HighPassFilter, LowPassFilter, PitchShift

from lalm_audit.audio import resample
from lalm_audit.config import (
    BandlimitCondition,
    NoiseCondition,
    PitchShiftCondition,
    ResynthesisCondition,
    SilenceCondition,
    SnrNoiseCondition,
    VtlpCondition,
)


def _seed_globals(rng: np.random.Generator) -> None:
    """audiomentations draws from the global generators: seed them from the item's own generator."""
    seed = int(rng.integers(2**31 - 1))
    random.seed(seed)
    np.random.seed(seed)


def silence(x: np.ndarray, sr: int, cond: SilenceCondition) -> np.ndarray:
    n = x.size if cond.length == "same" else round(cond.seconds * sr)
    return np.zeros(n, dtype=np.float32)


def noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (rng.standard_normal(x.size) * rms).astype(np.float32)


def pitch_shift(
    x: np.ndarray, sr: int, cond: PitchShiftCondition, rng: np.random.Generator
) -> np.ndarray:
    _seed_globals(rng)
    t = PitchShift(min_semitones=cond.semitones, max_semitones=cond.semitones, p=1.0)
    return t(samples=x.astype(np.float32), sample_rate=sr)


def snr_noise(
    x: np.ndarray, sr: int, cond: SnrNoiseCondition, rng: np.random.Generator
) -> np.ndarray:
    _seed_globals(rng)
    t = AddGaussianSNR(min_snr_db=cond.snr_db, max_snr_db=cond.snr_db, p=1.0)
    return t(samples=x.astype(np.float32), sample_rate=sr)


def bandlimit(
    x: np.ndarray, sr: int, cond: BandlimitCondition, rng: np.random.Generator
) -> np.ndarray:
    _seed_globals(rng)
    y = x.astype(np.float32)
    if cond.low_hz > 0:
        y = HighPassFilter(
            min_cutoff_freq=cond.low_hz,
            max_cutoff_freq=cond.low_hz,
            min_rolloff=24,
            max_rolloff=24,
            zero_phase=True,
            p=1.0,
        )(samples=y, sample_rate=sr)
    if cond.high_hz < sr / 2:
        y = LowPassFilter(
            min_cutoff_freq=cond.high_hz,
            max_cutoff_freq=cond.high_hz,
            min_rolloff=24,
            max_rolloff=24,
            zero_phase=True,
            p=1.0,
        )(samples=y, sample_rate=sr)
    return y


def vtlp_warp(freqs: np.ndarray, alpha: float, boundary_hz: float, nyquist: float) -> np.ndarray:
    """Jaitly & Hinton's piecewise-linear warp f -> f' (alpha > 1 moves formants up)."""
    knee = boundary_hz * min(alpha, 1.0) / alpha
    high = nyquist - (nyquist - boundary_hz * min(alpha, 1.0)) / (nyquist - knee) * (
        nyquist - freqs
    )
    return np.where(freqs <= knee, freqs * alpha, high)


def vtlp(
    x: np.ndarray, sr: int, cond: VtlpCondition, n_fft: int = 512, hop: int = 128, n_iter: int = 32
) -> np.ndarray:
    """Warp the magnitude spectrogram's frequency axis, then re-estimate phase with Griffin-Lim.

    Moving complex STFT values between bins keeps each component's original
    phase advance (so its old frequency); Griffin-Lim (librosa) finds a phase
    consistent with the warped magnitudes instead.
    """
    mag = np.abs(librosa.stft(x.astype(np.float32), n_fft=n_fft, hop_length=hop))
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    warped = vtlp_warp(freqs, cond.alpha, cond.boundary_hz, sr / 2)
    # energy at source frequency f moves to warp(f): read the new spectrum at warp^-1 of each bin
    source = np.interp(freqs, warped, freqs)
    out = np.stack([np.interp(source, freqs, mag[:, i]) for i in range(mag.shape[1])], axis=1)
    y = librosa.griffinlim(
        out, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=x.size, random_state=0
    )
    return y.astype(np.float32)


def resynthesize(
    text: str, sr: int, cond: ResynthesisCondition, tts: Any = None
) -> list[np.ndarray]:
    """The transcript rendered ``cond.renderings`` times (one voice or seed each), at ``sr``."""
    if cond.engine == "espeak":
        from lalm_audit.demo.espeak import ESPEAK_SAMPLE_RATE, Voice, engine
        from lalm_audit.demo.world import RESYNTHESIS_VOICES

        voices = (
            cond.voices if cond.voices is not None else list(RESYNTHESIS_VOICES[: cond.renderings])
        )
        if len(voices) < cond.renderings:
            raise ValueError(
                f"resynthesis needs {cond.renderings} voices, {len(voices)} available: list them in `voices`"
            )
        out = []
        for spec in voices:
            raw = engine().synthesize(text, Voice.parse(spec)).astype(np.float32) / 32768.0
            out.append(resample(raw, ESPEAK_SAMPLE_RATE, sr))
        return out
    if tts is None:
        raise ValueError("the transformers engine needs a loaded text-to-speech model")
    return [tts.synthesize(text, seed=k, target_sr=sr) for k in range(cond.renderings)]


def apply_condition(
    x: np.ndarray, sr: int, text: str, cond: Any, rng: np.random.Generator, tts: Any = None
) -> list[np.ndarray]:
    """Every rendering of one item under ``cond``."""
    if isinstance(cond, SilenceCondition):
        return [silence(x, sr, cond)]
    if isinstance(cond, NoiseCondition):
        return [noise(x, rng)]
    if isinstance(cond, ResynthesisCondition):
        return resynthesize(text, sr, cond, tts)
    if isinstance(cond, PitchShiftCondition):
        return [pitch_shift(x, sr, cond, rng)]
    if isinstance(cond, VtlpCondition):
        return [vtlp(x, sr, cond)]
    if isinstance(cond, SnrNoiseCondition):
        return [snr_noise(x, sr, cond, rng)]
    if isinstance(cond, BandlimitCondition):
        return [bandlimit(x, sr, cond, rng)]
    raise TypeError(f"unknown condition {type(cond).__name__}")
