"""Offline speech synthesis with espeak-ng, through the library shipped by PyPI's ``espeakng-loader``.

``espeakng-loader`` ships the espeak-ng shared library and its voice data but
no Python API, so this module drives the C API with ctypes (synchronous
output, a callback that collects 16-bit samples).

Determinism: espeak-ng keeps synthesis state in static variables (pitch
flutter phase, noise generator) that no API call resets, so two renderings of
the same text in one process differ sample by sample. Each utterance is
therefore rendered by a freshly loaded private copy of the library (dlopen,
synthesize, dlclose: about 8 ms), which makes every rendering a pure function
of (text, voice, rate, pitch, range) regardless of what was rendered before.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_CHARS_UTF8 = 1
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

ESPEAK_SAMPLE_RATE = 22050


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice with prosody settings: one synthetic 'speaker'."""

    name: str  # e.g. "en-us+f3"
    rate: int = 160  # words per minute (espeak 80..450)
    pitch: int = 50  # 0..100
    range: int = 50  # pitch range 0..100

    @property
    def key(self) -> str:
        return f"{self.name}/r{self.rate}/p{self.pitch}/g{self.range}"

    @classmethod
    def parse(cls, spec: str) -> Voice:
        """``"en-us+f3"`` or ``"en-us+f3/r170/p60/g50"`` (the :attr:`key` format) -> Voice."""
        name, *opts = spec.split("/")
        fields = {"r": "rate", "p": "pitch", "g": "range"}
        kw: dict[str, int] = {}
        for o in opts:
            if not o or o[0] not in fields or not o[1:].isdigit():
                raise ValueError(
                    f"bad voice option {o!r} in {spec!r}: use r<rate>, p<pitch>, g<range>"
                )
            kw[fields[o[0]]] = int(o[1:])
        return cls(name, **kw)


class EspeakError(RuntimeError):
    pass


class Espeak:
    """Renders text to 22.05 kHz int16 audio; one instance per process is enough.

    Not thread-safe (espeak-ng is a global-state C library): calls are serialized.
    """

    _lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader

        self._pid = os.getpid()
        self._data = espeakng_loader.get_data_path().encode()
        self._tmp = tempfile.mkdtemp(prefix="lalm-espeak-")
        self._lib_path = os.path.join(self._tmp, "libespeak-ng.so")
        shutil.copyfile(espeakng_loader.get_library_path(), self._lib_path)

    def __del__(self) -> None:
        if (
            getattr(self, "_pid", None) == os.getpid()
        ):  # a forked child must not delete its parent's copy
            shutil.rmtree(self._tmp, ignore_errors=True)

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        """int16 samples at :data:`ESPEAK_SAMPLE_RATE`."""
        chunks: list[np.ndarray] = []

        def collect(wav: ctypes._Pointer, n: int, _events: int) -> int:
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        callback = _CALLBACK(collect)
        with self._lock:
            lib = ctypes.CDLL(
                self._lib_path, mode=os.RTLD_LOCAL
            )  # fresh static state, see module doc
            try:
                lib.espeak_Initialize.argtypes = [
                    ctypes.c_int,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                ]
                sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data, 0)
                if sr != ESPEAK_SAMPLE_RATE:
                    raise EspeakError(f"espeak-ng initialisation failed (returned {sr})")
                lib.espeak_SetSynthCallback(callback)
                lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
                if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                    raise EspeakError(f"espeak-ng has no voice {voice.name!r}")
                for param, value in (
                    (_PARAM_RATE, voice.rate),
                    (_PARAM_PITCH, voice.pitch),
                    (_PARAM_RANGE, voice.range),
                ):
                    lib.espeak_SetParameter(param, int(value), 0)
                lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
                lib.espeak_ng_SetRandSeed(1)
                lib.espeak_Synth.argtypes = [
                    ctypes.c_char_p,
                    ctypes.c_size_t,
                    ctypes.c_uint,
                    ctypes.c_int,
                    ctypes.c_uint,
                    ctypes.c_uint,
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                ]
                raw = text.encode("utf-8")
                if lib.espeak_Synth(raw, len(raw) + 1, 0, 0, 0, _CHARS_UTF8, None, None) != 0:
                    raise EspeakError(f"espeak-ng failed to synthesize {text!r}")
                lib.espeak_Synchronize()
                lib.espeak_Terminate()
            finally:
                _ctypes.dlclose(lib._handle)
        if not chunks:
            raise EspeakError(f"espeak-ng produced no audio for {text!r} with voice {voice.key}")
        return np.concatenate(chunks)


_ENGINE: Espeak | None = None


def engine() -> Espeak:
    """The process-wide engine."""
    global _ENGINE
    if _ENGINE is None or _ENGINE._pid != os.getpid():
        _ENGINE = Espeak()
    return _ENGINE
