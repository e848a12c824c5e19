"""Shared test builders: small audio files and configs written on the spot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]

# Nothing in the tests may reach a model hub (read by huggingface_hub at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def sine(
    freq: float = 220.0, dur: float = 1.0, sr: int = 16000, amp: float = 0.5, channels: int = 1
) -> np.ndarray:
    t = np.arange(round(dur * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write(path: Path, x: np.ndarray, sr: int = 16000, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp3" or path.suffix == ".ogg":
        sf.write(path, x, sr, **kw)
    else:
        sf.write(path, x, sr, subtype=kw.pop("subtype", "PCM_16"), **kw)
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside a fresh temporary working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def _quiet_threads() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
