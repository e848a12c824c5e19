"""Tiny random-weight models of every supported family, built offline (test builders).

Each builder trains a byte-level BPE on the spot with the family's special
tokens, builds the family's real processor class around it and a real model
class from a small config, so adapters are exercised on the same code paths
a released checkpoint takes, without a download. ``save_tiny`` writes the
model and processor with ``save_pretrained`` (safetensors), so loading goes
through ``from_pretrained`` as for a real model.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lalm_audit.models.tokenizer import BASE_SPECIAL_TOKENS, chatml_template, train_bpe_tokenizer

#: Texts the tiny tokenizers are trained on (prompts and a few sentences).
TINY_TEXTS = (
    "Transcribe the audio.",
    "Describe the audio.",
    "What is said in this recording?",
    "the old clock in the hall struck nine at night",
    "a small brown dog ran across the wide green field",
    "she said that the river was cold in the morning",
    "twenty people waited quietly near the wooden bridge",
    "my brother painted the fence blue last summer",
) * 4

#: Window (seconds) of the tiny models' Whisper feature extractor.
TINY_CHUNK_S = 4

_TEXT = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 64,
    "max_position_embeddings": 2048,
}
_ENCODER = {
    "d_model": 32,
    "encoder_layers": 1,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "num_mel_bins": 80,
    "max_source_positions": TINY_CHUNK_S * 50,
}


def _whisper_fe(chunk_s: int = TINY_CHUNK_S) -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=chunk_s)


def _tokenizer(extra_specials: list[str], attrs: dict[str, str], template: str | None) -> Any:
    return train_bpe_tokenizer(
        TINY_TEXTS,
        special_tokens=[*BASE_SPECIAL_TOKENS, *extra_specials],
        vocab_size=320,
        chat_template=template,
        extra_attributes=attrs,
    )


def tiny_qwen2_audio() -> tuple[Any, Any]:
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
    )

    tok = _tokenizer(
        ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"],
        {
            "audio_token": "<|AUDIO|>",
            "audio_bos_token": "<|audio_bos|>",
            "audio_eos_token": "<|audio_eos|>",
        },
        None,
    )
    proc = Qwen2AudioProcessor(feature_extractor=_whisper_fe(), tokenizer=tok)
    cfg = Qwen2AudioConfig(
        audio_config=dict(_ENCODER),
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tok),
            "tie_word_embeddings": True,
            "pad_token_id": tok.pad_token_id,
            **_TEXT,
        },
        audio_token_id=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    return Qwen2AudioForConditionalGeneration(cfg), proc


def _flamingo(music: bool) -> tuple[Any, Any]:
    import transformers as tf

    extra = ["<sound>", "<|sound_bos|>", "<|sound_eos|>"] if music else ["<sound>"]
    tok = _tokenizer(extra, {}, chatml_template("<sound>"))
    fe = _whisper_fe()
    enc = {
        "model_type": "audioflamingo3_encoder",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "num_mel_bins": 80,
        "max_source_positions": TINY_CHUNK_S * 50,
    }
    text = {
        "model_type": "qwen2",
        "vocab_size": len(tok),
        "tie_word_embeddings": True,
        "pad_token_id": tok.pad_token_id,
        **_TEXT,
    }
    if music:
        proc = tf.MusicFlamingoProcessor(
            feature_extractor=fe, tokenizer=tok, max_audio_len=2 * TINY_CHUNK_S
        )
        cfg = tf.MusicFlamingoConfig(
            audio_config=enc,
            text_config=text,
            audio_token_id=tok.convert_tokens_to_ids("<sound>"),
            audio_bos_token_id=tok.convert_tokens_to_ids("<|sound_bos|>"),
            audio_eos_token_id=tok.convert_tokens_to_ids("<|sound_eos|>"),
        )
        return tf.MusicFlamingoForConditionalGeneration(cfg), proc
    proc = tf.AudioFlamingo3Processor(
        feature_extractor=fe, tokenizer=tok, max_audio_len=2 * TINY_CHUNK_S
    )
    cfg = tf.AudioFlamingo3Config(
        audio_config=enc, text_config=text, audio_token_id=tok.convert_tokens_to_ids("<sound>")
    )
    return tf.AudioFlamingo3ForConditionalGeneration(cfg), proc


def tiny_qwen2_5_omni() -> tuple[Any, Any]:
    """Qwen2.5-Omni thinker (audio encoder, a one-block vision encoder it always builds, Qwen2 LM)."""
    import transformers as tf

    from lalm_audit.models.processors import Qwen2_5OmniAudioProcessor

    audio = {"<|AUDIO|>": "audio_token", "<|audio_bos|>": "audio_bos_token"}
    audio["<|audio_eos|>"] = "audio_eos_token"
    vision = ["<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"]
    tok = _tokenizer(
        [*audio, *vision],
        {v: k for k, v in audio.items()},
        chatml_template("<|audio_bos|><|AUDIO|><|audio_eos|>"),
    )
    # as released: Whisper features with an attention mask (it sets the audio token count)
    fe = tf.WhisperFeatureExtractor(
        feature_size=80, sampling_rate=16000, chunk_length=TINY_CHUNK_S, return_attention_mask=True
    )
    proc = Qwen2_5OmniAudioProcessor(
        feature_extractor=fe, tokenizer=tok, chat_template=tok.chat_template
    )
    ids = tok.convert_tokens_to_ids
    head_dim = _TEXT["hidden_size"] // _TEXT["num_attention_heads"]
    cfg = tf.Qwen2_5OmniThinkerConfig(
        audio_config={
            **{k: v for k, v in _ENCODER.items()},
            "n_window": 50,  # 1 s encoder chunks (2 s released): a 3 s clip spans several
            "output_dim": _TEXT["hidden_size"],
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": _TEXT["hidden_size"],
            "fullatt_block_indexes": [0],
        },
        text_config={
            **_TEXT,
            "vocab_size": len(tok),
            "pad_token_id": tok.pad_token_id,
            # multimodal RoPE: temporal/height/width sections sum to head_dim / 2
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8],
            },
        },
        audio_token_index=ids("<|AUDIO|>"),
        image_token_index=ids("<|IMAGE|>"),
        video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"),
        audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids(
            "<|vision_bos|>"
        ),  # read by the RoPE index, as in released configs
    )
    return tf.Qwen2_5OmniThinkerForConditionalGeneration(cfg), proc


#: Voxtral's control tokens at the ranks of the released ``tekken.json`` (``[AUDIO]`` = 24 is
#: also hard-coded in ``VoxtralProcessor``); the other ranks below 40 are ``<SPECIAL_i>`` fillers.
_VOXTRAL_SPECIALS = {
    **dict(
        enumerate(
            [
                "<unk>",
                "<s>",
                "</s>",
                "[INST]",
                "[/INST]",
                "[AVAILABLE_TOOLS]",
                "[/AVAILABLE_TOOLS]",
                "[TOOL_RESULTS]",
                "[/TOOL_RESULTS]",
                "[TOOL_CALLS]",
                "[IMG]",
                "<pad>",
                "[IMG_BREAK]",
                "[IMG_END]",
                "[PREFIX]",
                "[MIDDLE]",
                "[SUFFIX]",
                "[SYSTEM_PROMPT]",
                "[/SYSTEM_PROMPT]",
                "[TOOL_CONTENT]",
            ]
        )
    ),
    24: "[AUDIO]",
    25: "[BEGIN_AUDIO]",
    34: "[TRANSCRIBE]",
}
#: Voxtral pads audio to whole chunks of this many seconds (30 s released).
TINY_VOXTRAL_CHUNK_S = 2


def write_tiny_tekken(path: str | Path, chunk_s: float = TINY_VOXTRAL_CHUNK_S) -> Path:
    """A Voxtral-style ``tekken.json`` (BPE on :data:`TINY_TEXTS`, ``chunk_s`` audio chunks) in ``path``."""
    import json

    from lalm_audit.models.tokenizer import train_tekken_vocab

    n_special = 40
    trained = train_tekken_vocab(TINY_TEXTS, vocab_size=400)
    tekken = {
        "config": {
            "pattern": trained["pattern"],
            "num_vocab_tokens": len(trained["vocab"]),
            "default_vocab_size": n_special + len(trained["vocab"]),
            "default_num_special_tokens": n_special,
            "version": "v7",
        },
        "vocab": trained["vocab"],
        "special_tokens": [
            {"rank": i, "token_str": _VOXTRAL_SPECIALS.get(i, f"<SPECIAL_{i}>"), "is_control": True}
            for i in range(n_special)
        ],
        # as released but for the chunk length and mel bins: 12.5 audio tokens per second
        "audio": {
            "sampling_rate": 16000,
            "frame_rate": 12.5,
            "chunk_length_s": float(chunk_s),
            "audio_encoding_config": {"num_mel_bins": 80, "hop_length": 160, "window_size": 400},
        },
    }
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "tekken.json").write_text(json.dumps(tekken))
    return path


@functools.cache
def _tiny_tekken_folder() -> Path:
    # mistral-common reads its tokenizer from a file: one per process
    return write_tiny_tekken(tempfile.mkdtemp(prefix="lalm-audit-tiny-tekken-"))


def tiny_voxtral() -> tuple[Any, Any]:
    """Voxtral: Whisper-style encoder in 2 s chunks, 4 frames per audio token, a Llama LM."""
    import transformers as tf

    tok = tf.MistralCommonBackend.from_pretrained(_tiny_tekken_folder())
    fe = tf.WhisperFeatureExtractor(
        feature_size=80, sampling_rate=16000, chunk_length=TINY_VOXTRAL_CHUNK_S
    )
    proc = tf.VoxtralProcessor(feature_extractor=fe, tokenizer=tok)
    cfg = tf.VoxtralConfig(
        audio_config={
            "hidden_size": 32,
            # the projector takes 4 encoder frames per audio token: 4 x hidden_size
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_mel_bins": 80,
            "max_source_positions": TINY_VOXTRAL_CHUNK_S * 50,
        },
        text_config={
            **_TEXT,
            "model_type": "llama",
            "head_dim": _TEXT["hidden_size"] // _TEXT["num_attention_heads"],
            "vocab_size": len(tok),
            "pad_token_id": tok.pad_token_id,
            "tie_word_embeddings": True,
        },
        audio_token_id=proc.audio_token_id,
    )
    return tf.VoxtralForConditionalGeneration(cfg), proc


TINY_BUILDERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "qwen2_audio": tiny_qwen2_audio,
    "audio_flamingo3": lambda: _flamingo(music=False),
    "music_flamingo": lambda: _flamingo(music=True),
    "qwen2_5_omni": tiny_qwen2_5_omni,
    "voxtral": tiny_voxtral,
}

#: The token that ends an assistant turn, per family (ChatML's by default).
_END_OF_TURN = {"voxtral": "</s>"}


def builder_available(family: str) -> bool:
    """Whether the tiny model of ``family`` can be built here (Voxtral needs mistral-common)."""
    if family == "voxtral":
        from transformers.utils import is_mistral_common_available

        return bool(is_mistral_common_available())
    return family in TINY_BUILDERS


def tiny_model(family: str, seed: int = 0) -> tuple[Any, Any]:
    """A tiny random-weight model (eval mode, fp32) and its processor for ``family``."""
    if family not in TINY_BUILDERS:
        raise KeyError(f"no tiny builder for family {family!r} (have {sorted(TINY_BUILDERS)})")
    torch.manual_seed(seed)
    model, proc = TINY_BUILDERS[family]()
    tok = proc.tokenizer
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids(
        _END_OF_TURN.get(family, "<|im_end|>")
    )
    return model.eval(), proc


def save_tiny(family: str, path: str | Path, seed: int = 0) -> Path:
    """Write a tiny model + processor to ``path`` (safetensors), loadable with ``from_pretrained``.

    Families whose released checkpoints are laid out differently from what
    ``save_pretrained`` writes are saved in the released layout, so loading
    takes the path a real checkpoint takes.
    """
    path = Path(path)
    model, proc = tiny_model(family, seed)
    if family in _RELEASE_LAYOUT:
        _RELEASE_LAYOUT[family](model, proc, path)
        return path
    model.save_pretrained(path, safe_serialization=True)
    proc.save_pretrained(path)
    return path


def _save_qwen2_5_omni_release(model: Any, proc: Any, path: Path) -> None:
    """The layout of ``Qwen/Qwen2.5-Omni-7B``: a full-Omni config, ``thinker.`` weights, one preprocessor file.

    config.json is a ``qwen2_5_omni`` config whose ``thinker_config`` holds the
    thinker (no talker weights: ``enable_audio_output: false``); weight names
    carry the pre-transformers-5 prefixes (``thinker.model.*`` for the LM,
    ``thinker.audio_tower.*``, ``thinker.visual.*``, ``thinker.lm_head``);
    preprocessor_config.json names ``Qwen2_5OmniProcessor`` and holds the
    Whisper and the image-processor settings side by side.
    """
    import json

    from safetensors.torch import save_file
    from transformers import Qwen2_5OmniConfig

    path.mkdir(parents=True, exist_ok=True)
    full = Qwen2_5OmniConfig(thinker_config=model.config.to_dict(), enable_audio_output=False)
    config = {**full.to_dict(), "architectures": ["Qwen2_5OmniForConditionalGeneration"]}
    (path / "config.json").write_text(json.dumps(config, indent=2))
    renames = {
        "model.language_model.": "thinker.model.",
        "model.audio_tower.": "thinker.audio_tower.",
        "model.visual.": "thinker.visual.",
        "lm_head.": "thinker.lm_head.",
    }
    weights = {}
    for key, value in model.state_dict().items():
        old = next(o for o in renames if key.startswith(o))
        weights[renames[old] + key[len(old) :]] = value.contiguous().clone()
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    proc.tokenizer.save_pretrained(path)
    # released tokenizer configs predate named audio tokens: the processor must find them by text
    tok_cfg = json.loads((path / "tokenizer_config.json").read_text())
    for name in ("audio_token", "audio_bos_token", "audio_eos_token"):
        tok_cfg.pop(name, None)
    (path / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
    (path / "chat_template.jinja").write_text(proc.chat_template)
    pre = {
        **proc.feature_extractor.to_dict(),
        "processor_class": "Qwen2_5OmniProcessor",
        "image_processor_type": "Qwen2VLImageProcessor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
    }
    (path / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))


_RELEASE_LAYOUT: dict[str, Callable[[Any, Any, Path], None]] = {
    "qwen2_5_omni": _save_qwen2_5_omni_release,
}
