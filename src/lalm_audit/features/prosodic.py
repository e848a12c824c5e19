"""Prosodic and voice-quality features: openSMILE eGeMAPSv02 functionals (88 per clip).

F0, jitter, shimmer, loudness, HNR, formants, spectral slopes, and voiced /
unvoiced segment statistics (speaking-rate proxies). One derived column,
``f0_mean_hz``, restates the mean F0 (openSMILE reports semitones above
27.5 Hz) in Hz, so explanations and tests can read it directly.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np
import opensmile

from lalm_audit.audio import load_item
from lalm_audit.config import Config

NAME = "prosodic"
F0_HZ = "f0_mean_hz"
_F0_ST = "F0semitoneFrom27.5Hz_sma3nz_amean"


@cache
def smile(feature_set: str = "eGeMAPSv02") -> opensmile.Smile:
    """One openSMILE extractor per process (building it parses the config files)."""
    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def columns(cfg: Config) -> list[str]:
    return [*smile(cfg.features.prosodic.feature_set).feature_names, F0_HZ]


def prosodic_features(y: np.ndarray, sr: int, feature_set: str = "eGeMAPSv02") -> dict[str, float]:
    """eGeMAPS functionals of ``y`` (mono float32 at ``sr``) plus ``f0_mean_hz``."""
    df = smile(feature_set).process_signal(y, sr)
    out = {str(k): float(v) for k, v in df.iloc[0].items()}
    st = out.get(_F0_ST, 0.0)
    # openSMILE reports 0 semitones when no frame is voiced: no pitch, not 27.5 Hz
    out[F0_HZ] = 27.5 * 2.0 ** (st / 12.0) if st > 0 else 0.0
    return out


def extract(row: dict[str, Any], cfg: Config) -> dict[str, Any]:
    sr = cfg.audio.sample_rate
    return prosodic_features(load_item(row, sr), sr, cfg.features.prosodic.feature_set)


# low-level descriptor -> (phrase, unit, "higher" words, "lower" words); generic ones get no words
_LLD: dict[str, tuple[str, str, str, str]] = {
    "F0semitoneFrom27.5Hz": ("pitch (F0)", "semitones", "speak higher", "speak lower"),
    "loudness": ("loudness", "sone", "are louder", "are quieter"),
    "jitterLocal": ("jitter", "", "have a less steady pitch", "have a steadier pitch"),
    "shimmerLocaldB": (
        "shimmer",
        "dB",
        "have a less steady amplitude",
        "have a steadier amplitude",
    ),
    "HNRdBACF": (
        "harmonics-to-noise ratio",
        "dB",
        "sound cleaner (more harmonic)",
        "sound noisier (less harmonic)",
    ),
    "logRelF0-H1-H2": ("H1-H2 harmonic difference", "dB", "", ""),
    "logRelF0-H1-A3": ("H1-A3 harmonic difference", "dB", "", ""),
    "alphaRatio": (
        "alpha ratio",
        "dB",
        "have more high-frequency energy",
        "have less high-frequency energy",
    ),
    "hammarbergIndex": (
        "Hammarberg index",
        "dB",
        "have less high-frequency energy",
        "have more high-frequency energy",
    ),
    "spectralFlux": ("spectral flux", "", "change spectrum faster", "change spectrum slower"),
}
_GLOBAL: dict[str, tuple[str, str, str, str]] = {
    F0_HZ: ("mean pitch (F0)", "Hz", "speak higher", "speak lower"),
    "VoicedSegmentsPerSec": (
        "voiced segments per second (speaking rate)",
        "1/s",
        "speak faster",
        "speak slower",
    ),
    "MeanVoicedSegmentLengthSec": (
        "mean voiced segment length",
        "s",
        "have longer voiced stretches",
        "have shorter voiced stretches",
    ),
    "StddevVoicedSegmentLengthSec": ("variability of voiced segment length", "s", "", ""),
    "MeanUnvoicedSegmentLength": (
        "mean unvoiced segment length (pauses)",
        "s",
        "pause longer",
        "pause less",
    ),
    "StddevUnvoicedSegmentLength": ("variability of unvoiced segment length", "s", "", ""),
    "loudnessPeaksPerSec": (
        "loudness peaks per second (syllable rate)",
        "1/s",
        "speak faster",
        "speak slower",
    ),
    "equivalentSoundLevel_dBp": ("equivalent sound level", "dB", "are louder", "are quieter"),
}
_FUNC = {
    "amean": "mean",
    "stddevNorm": "variability of",
    "percentile20.0": "20th percentile of",
    "percentile50.0": "median",
    "percentile80.0": "80th percentile of",
    "pctlrange0-2": "range of",
    "meanRisingSlope": "mean rising slope of",
    "stddevRisingSlope": "variability of the rising slope of",
    "meanFallingSlope": "mean falling slope of",
    "stddevFallingSlope": "variability of the falling slope of",
}
_VOICING = {"V": " in voiced frames", "UV": " in unvoiced frames", "": ""}
_LLD_RE = re.compile(
    r"^(?:(?P<mfcc>mfcc(?P<k>\d))|(?P<slope>slope)|(?P<formant>F(?P<f>\d)(?P<fkind>frequency|bandwidth|amplitudeLogRelF0))|"
    r"(?P<base>alphaRatio|hammarbergIndex|spectralFlux))(?P<vu>V|UV)?(?P<band>\d+-\d+)?$"
)
_FORMANT = {
    "frequency": ("frequency", "Hz"),
    "bandwidth": ("bandwidth", "Hz"),
    "amplitudeLogRelF0": ("relative amplitude", "dB"),
}


def _lld(lld: str) -> tuple[str, str, str, str]:
    if lld in _LLD:
        return _LLD[lld]
    m = _LLD_RE.match(lld)
    if not m:
        return lld, "", "", ""
    where = _VOICING[m["vu"] or ""]
    if m["mfcc"]:
        return f"MFCC {m['k']} (openSMILE){where}", "", "", ""
    if m["slope"]:
        return f"spectral slope {m['band']} Hz{where}", "", "", ""
    if m["formant"]:
        kind, unit = _FORMANT[m["fkind"]]
        hi, lo = (
            (f"have a higher F{m['f']}", f"have a lower F{m['f']}")
            if m["fkind"] == "frequency"
            else ("", "")
        )
        return f"formant {m['f']} {kind}", unit, hi, lo
    phrase, unit, hi, lo = _LLD[m["base"]]
    return f"{phrase}{where}", unit, hi, lo


@cache
def describe(feature: str) -> tuple[str, str, str, str]:
    """Readable phrase, unit and direction words of an eGeMAPS column."""
    if feature in _GLOBAL:
        return _GLOBAL[feature]
    lld, _, rest = feature.partition("_sma3")
    func = rest.rpartition("_")[2]
    phrase, unit, hi, lo = _lld(lld)
    if func == "amean":
        return f"mean {phrase}", unit, hi, lo
    if func in _FUNC:
        return f"{_FUNC[func]} {phrase}", unit if "variability" not in _FUNC[func] else "", "", ""
    return feature, "", "", ""
