"""One adapter per LALM family. Register a new family with :func:`register`.

Each adapter is tested offline on a tiny random-weight model built by
:mod:`lalm_audit.models.testing` (forward, generate, slice boundaries, the
hidden-state path against the model's own logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from lalm_audit.errors import LalmAuditError
from lalm_audit.models.base import LALMAdapter, TeacherForcedBatch, append_response_ids

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


@register
class VoxtralAdapter(LALMAdapter):
    """Voxtral (Mini 3B, Small 24B): Whisper-style encoder, 4 frames per audio token, Mistral/Llama LM.

    Prompt: Mistral's instruct format, built by mistral-common from the
    messages (no Jinja template, no system prompt by default):
    ``<s>[INST][BEGIN_AUDIO][AUDIO]...[AUDIO]<prompt>[/INST]<response></s>``.
    mistral-common tokenizes each message on its own, so the response tokens
    are those of the response text alone, as in training. Slices are read
    from that structure: ``audio`` = the ``[AUDIO]`` positions, ``prompt`` =
    the tokens between the last ``[AUDIO]`` and ``[/INST]``, ``response`` =
    the tokens after ``[/INST]``. Clips reach mistral-common as lossless
    float32 WAV; it pads each clip to whole 30 s chunks (``chunk_length_s`` in
    ``tekken.json``), so a clip of up to 30 s always has 375 audio tokens
    (12.5 per second), the padding's included, as the model sees them.

    Audio window: the processor never cuts audio (``truncation=False``); the
    limit is the 32k-token context Voxtral was trained with. The window is the
    most whole chunks whose audio tokens fit in that context with 1/16 of it
    left for text: 81 chunks = 2,430 s for the released models (the model card
    says up to 30 min for transcription, 40 min for understanding).

    Needs the ``mistral-common`` package (extra ``voxtral``).
    """

    family = "voxtral"
    model_class = "VoxtralForConditionalGeneration"
    processor_class = "VoxtralProcessor"
    uses_text_chat_template = False
    processor_cuts_audio = False
    #: the context length Voxtral was trained with (model card); positions beyond are untrained
    trained_context: ClassVar[int] = 32768

    @classmethod
    def load_processor(cls, source: str, **kwargs: Any) -> Any:
        from transformers.utils import is_mistral_common_available

        if not is_mistral_common_available():
            raise LalmAuditError(
                "the voxtral family needs mistral-common (Voxtral's tokenizer). "
                "Fix: pip install 'lalm-audit[voxtral]'"
            )
        return super().load_processor(source, **kwargs)

    @property
    def audio_config(self) -> Any:
        """mistral-common's audio settings from ``tekken.json`` (chunk length, frame rate)."""
        return self.tokenizer.tokenizer.instruct_tokenizer.audio_encoder.audio_config

    def _tokens_per_chunk(self) -> int:
        ac = self.audio_config
        return int(ac.num_audio_tokens(ac.chunk_frames))

    def audio_window_s(self) -> float:
        context = min(self.trained_context, self.model.config.text_config.max_position_embeddings)
        chunks = (context - context // 16) // self._tokens_per_chunk()
        return chunks * float(self.audio_config.chunk_length_s)

    def stop_token_ids(self) -> list[int]:
        ids = {int(self.tokenizer.eos_token_id)}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        if gen_eos is not None:
            ids.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
        return sorted(ids)

    def _control_id(self, token: str) -> int:
        tid = self.tokenizer.convert_tokens_to_ids(token)
        if tid == self.tokenizer.unk_token_id:
            raise ValueError(f"{self.family}: tokenizer has no {token} control token")
        return int(tid)

    def _encode_row(self, wav: np.ndarray, prompt: str, response: str | None) -> tuple:
        """One conversation through mistral-common and the processor: (input ids [L], features)."""
        import base64
        import io

        import soundfile as sf

        buf = io.BytesIO()
        sf.write(
            buf, np.asarray(wav, np.float32), self.sampling_rate, format="WAV", subtype="FLOAT"
        )
        audio = base64.b64encode(buf.getvalue()).decode("ascii")
        messages: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [{"type": "audio", "base64": audio}, {"type": "text", "text": prompt}],
            }
        ]
        # mistral-common rejects an empty assistant message: an empty response is scored as none
        if response:
            messages.append({"role": "assistant", "content": response})
        ac = self.audio_config
        hop = ac.encoding_config.hop_length
        out = self.processor.apply_chat_template(
            messages,
            continue_final_message=bool(response),
            add_generation_prompt=not response,
            processor_kwargs={
                # the tokenizer's own chunking (30 s, 3000 frames released)
                "audio_kwargs": {
                    "pad_to_multiple_of": ac.chunk_frames,
                    "max_source_positions": ac.chunk_frames // hop,
                }
            },
        )
        return out["input_ids"][0], out["input_features"]

    def _collate(self, rows: list[tuple], padding_side: str) -> dict[str, Any]:
        pad = self.tokenizer.pad_token_id
        width = max(int(ids.shape[0]) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, (ids, _) in enumerate(rows):
            n = int(ids.shape[0])
            sl = slice(width - n, width) if padding_side == "left" else slice(0, n)
            input_ids[b, sl] = ids
            mask[b, sl] = 1
        # the model fills [AUDIO] positions with encoder frames in row-major order
        feats = torch.cat([f for _, f in rows])
        return {"input_ids": input_ids, "attention_mask": mask, "input_features": feats}

    def generation_inputs(self, wavs: Sequence[np.ndarray], prompt: str) -> dict[str, Any]:
        return self._collate([self._encode_row(w, prompt, None) for w in wavs], "left")

    def encode_teacher_forced(
        self, wavs: Sequence[np.ndarray], prompt: str, responses: Sequence[str]
    ) -> TeacherForcedBatch:
        rows = [self._encode_row(w, prompt, r) for w, r in zip(wavs, responses, strict=True)]
        enc = self._collate(rows, "right")
        slices = self._slices(rows, with_response=True)
        return TeacherForcedBatch(inputs=enc, input_ids=enc["input_ids"], slices=slices)

    def _slices(self, rows: Sequence[Any], *, with_response: bool) -> list[dict[str, np.ndarray]]:
        """audio / prompt (/ response) positions of encoded rows, from the instruct token structure."""
        audio_id = self.processor.audio_token_id
        end_inst = self._control_id("[/INST]")
        slices = []
        for ids, _ in rows:
            ids = ids.numpy()
            audio = np.flatnonzero(ids == audio_id)
            close = int(np.flatnonzero(ids == end_inst)[-1])
            sl = {"audio": audio, "prompt": np.arange(int(audio[-1]) + 1, close)}
            if with_response:
                sl["response"] = np.arange(close + 1, ids.shape[0])
            slices.append(sl)
        return slices

    def encode_generated(
        self, wavs: Sequence[np.ndarray], prompt: str, response_ids: Sequence[Sequence[int]]
    ) -> TeacherForcedBatch:
        # stage 1's own context: mistral-common's generation prompt, ending in [/INST]
        rows = [self._encode_row(w, prompt, None) for w in wavs]
        enc = self._collate(rows, "right")
        return append_response_ids(self, enc, self._slices(rows, with_response=False), response_ids)
