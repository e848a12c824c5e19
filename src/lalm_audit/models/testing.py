"""Tiny random-weight models of every supported family, built offline (test builders).

Each builder trains a byte-level BPE on the spot with the family's special
tokens, builds the family's real processor class around it and a real model
class from a small config, so adapters are exercised on the same code paths
a released checkpoint takes, without a download. ``save_tiny`` writes the
model and processor with ``save_pretrained`` (safetensors), so loading goes
through ``from_pretrained`` as for a real model.
"""

from __future__ import annotations

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


TINY_BUILDERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "qwen2_audio": tiny_qwen2_audio,
    "audio_flamingo3": lambda: _flamingo(music=False),
    "music_flamingo": lambda: _flamingo(music=True),
}


def tiny_model(family: str, seed: int = 0) -> tuple[Any, Any]:
    """A tiny random-weight model (eval mode, fp32) and its processor for ``family``."""
    if family not in TINY_BUILDERS:
        raise KeyError(f"no tiny builder for family {family!r} (have {sorted(TINY_BUILDERS)})")
    torch.manual_seed(seed)
    model, proc = TINY_BUILDERS[family]()
    tok = proc.tokenizer
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    return model.eval(), proc


def save_tiny(family: str, path: str | Path, seed: int = 0) -> Path:
    """Write a tiny model + processor to ``path`` (safetensors), loadable with ``from_pretrained``."""
    path = Path(path)
    model, proc = tiny_model(family, seed)
    model.save_pretrained(path, safe_serialization=True)
    proc.save_pretrained(path)
    return path
