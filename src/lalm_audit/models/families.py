"""One adapter per LALM family. Register a new family with :func:`register`.

Each adapter is tested offline on a tiny random-weight model built by
:mod:`lalm_audit.models.testing` (forward, generate, slice boundaries, the
hidden-state path against the model's own logits).
"""

from __future__ import annotations

from typing import Any

from lalm_audit.models.base import LALMAdapter

ADAPTERS: dict[str, type[LALMAdapter]] = {}


def register(cls: type[LALMAdapter]) -> type[LALMAdapter]:
    ADAPTERS[cls.family] = cls
    return cls


@register
class Qwen2AudioAdapter(LALMAdapter):
    """Qwen2-Audio (7B, 7B-Instruct) and the demo models.

    Audio window: the Whisper feature extractor's ``chunk_length`` (30 s for
    the released models); the processor pads or cuts every clip to it.
    """

    family = "qwen2_audio"
    model_class = "Qwen2AudioForConditionalGeneration"
    default_audio_placeholder = "<|audio_bos|><|AUDIO|><|audio_eos|>"


@register
class AudioFlamingo3Adapter(LALMAdapter):
    """Audio Flamingo 3 (the paper's model): Whisper-style encoder in 30 s windows, Qwen2 LM.

    Audio window: ``max_audio_len`` rounded down to whole encoder windows
    (600 s = 20 windows for the released model); the processor truncates
    beyond it with only a library warning, so the clip policy runs first.
    """

    family = "audio_flamingo3"
    model_class = "AudioFlamingo3ForConditionalGeneration"
    default_audio_placeholder = "<sound>"

    def audio_window_s(self) -> float:
        chunk = float(self.feature_extractor.chunk_length)
        return int(self.processor.max_audio_len // chunk) * chunk


@register
class MusicFlamingoAdapter(AudioFlamingo3Adapter):
    """Music Flamingo (the paper's second model): AF3 architecture, audio wrapped in sound bos/eos.

    The ``audio`` slice holds the ``<sound>`` frames only, not the bos/eos markers.
    """

    family = "music_flamingo"
    model_class = "MusicFlamingoForConditionalGeneration"
    default_audio_placeholder = "<sound>"


@register
class Qwen2_5OmniThinkerAdapter(LALMAdapter):
    """Qwen2.5-Omni (3B, 7B): the *thinker* only (audio + text in, text out; no talker, no speech).

    Loaded with ``Qwen2_5OmniThinkerForConditionalGeneration`` straight from
    the released checkpoint (transformers reads ``thinker_config`` and strips
    the ``thinker.`` weight prefix). The processor is the released one without
    its image/video processors (:class:`~lalm_audit.models.processors.Qwen2_5OmniAudioProcessor`),
    so torchvision is not needed.

    Audio window: the Whisper feature extractor's ``n_samples`` (300 s for the
    released models, ``chunk_length: 300``); the processor cuts longer clips
    silently. The encoder runs in 2 s chunks (``n_window``) and the thinker
    sees 25 audio tokens per second (a 300 s clip is 7,500 tokens of the 32k
    context).

    Chat template (the released ``chat_template.jinja``): ChatML; with no
    system message it inserts ``You are a helpful assistant.`` (Qwen's
    recommended "You are Qwen, a virtual human ..." system prompt is only
    required for speech output, which the thinker does not produce); audio is
    written as ``<|audio_bos|><|AUDIO|><|audio_eos|>`` and ``<|AUDIO|>`` is
    expanded to one token per encoder frame. The ``audio`` slice holds those
    frames, not the bos/eos markers. Positions use multimodal RoPE (TMRoPE),
    computed inside the model from the attention mask.
    """

    family = "qwen2_5_omni"
    model_class = "Qwen2_5OmniThinkerForConditionalGeneration"
    default_audio_placeholder = "<|audio_bos|><|AUDIO|><|audio_eos|>"

    @classmethod
    def load_processor(cls, source: str, **kwargs: Any) -> Any:
        from lalm_audit.models.processors import Qwen2_5OmniAudioProcessor

        return Qwen2_5OmniAudioProcessor.from_pretrained(source, **kwargs)
