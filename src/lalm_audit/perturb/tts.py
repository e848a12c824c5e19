"""Re-synthesis with a transformers text-to-speech model (hub id or local path), for users with a GPU.

Loaded through ``transformers.pipeline("text-to-speech")``, so any model that
pipeline supports works (VITS / MMS-TTS, SpeechT5 with its vocoder, Bark, ...).
Remote code runs only when the condition sets ``trust_remote_code``; weights
load from safetensors. Stochastic models are seeded per rendering, so
rendering k of a text is the same in every run.
"""

from __future__ import annotations

import numpy as np

from lalm_audit.audio import resample
from lalm_audit.config import ResynthesisCondition


class TransformersTTS:
    def __init__(self, cond: ResynthesisCondition):
        import torch
        from transformers import pipeline

        self._torch = torch
        self.pipe = pipeline(
            "text-to-speech",
            model=cond.model,
            revision=cond.revision,
            trust_remote_code=cond.trust_remote_code,
            device=cond.device,
            model_kwargs={"use_safetensors": True},
        )

    def synthesize(self, text: str, *, seed: int, target_sr: int) -> np.ndarray:
        self._torch.manual_seed(seed)
        out = self.pipe(text)
        audio = np.asarray(out["audio"], dtype=np.float32).reshape(-1)
        return resample(audio, int(out["sampling_rate"]), target_sr)
