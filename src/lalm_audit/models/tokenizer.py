"""Byte-level BPE tokenizers trained on the spot (demo models and tiny test models).

Real models ship their tokenizer; the demo models and the offline tests need one
that matches a family's special tokens without a download. ``tokenizers``
trains a byte-level BPE (the scheme of Qwen2 and GPT-2) on a few hundred
sentences in milliseconds; ``PreTrainedTokenizerFast`` wraps it so that
processors, chat templates, offsets and ``save_pretrained`` work as with a
real checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

#: Special tokens every Qwen2-based LALM tokenizer has (end of text, chat turns).
BASE_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: The Qwen-style chat template (ChatML) used by the demo models: a system turn,
#: then the user turn with the audio placeholder(s) first and the text after.
#: ``{audio}`` is replaced by the family's placeholder text.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'audio' %}{audio}{% endif %}{% endfor %}"
    "{% for content in message['content'] %}{% if content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def chatml_template(audio_placeholder: str) -> str:
    """The ChatML template with ``audio_placeholder`` (e.g. ``<sound>``) where the audio goes."""
    return CHATML_TEMPLATE.replace("{audio}", audio_placeholder)


def train_bpe_tokenizer(
    texts: Iterable[str],
    *,
    special_tokens: Sequence[str] = BASE_SPECIAL_TOKENS,
    vocab_size: int = 512,
    chat_template: str | None = None,
    pad_token: str = "<|endoftext|>",
    eos_token: str = "<|im_end|>",
    extra_attributes: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers fast tokenizer.

    ``special_tokens`` get the first ids (0, 1, ...) in the given order; the
    result is deterministic for the same texts and settings. ``extra_attributes``
    become named special tokens (e.g. ``{"audio_token": "<|AUDIO|>"}``), which
    processors read from the tokenizer.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    extra = dict(extra_attributes or {})
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token=eos_token,
        pad_token=pad_token,
        unk_token=None,
        extra_special_tokens=extra or None,
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    if chat_template is not None:
        wrapped.chat_template = chat_template
    return wrapped


#: GPT-2's pre-tokenization regex, the one ``pre_tokenizers.ByteLevel(use_regex=True)``
#: applies, so a tiktoken encoder splits text as the BPE was trained.
_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def train_tekken_vocab(texts: Iterable[str], *, vocab_size: int = 512) -> dict:
    """A byte-level BPE trained on ``texts`` in the tiktoken form of Mistral's ``tekken.json``.

    mistral-common's ``Tekkenizer`` is a tiktoken encoder: a list of
    ``{rank, token_bytes (base64), token_str}`` in which every byte is a token
    and each merged token's rank follows its merge order. This trains the same
    BPE as :func:`train_bpe_tokenizer` and writes its tokens that way (the
    256 single bytes first, by byte value, then the merges in the order they
    were learnt). Returns ``{"pattern", "vocab"}`` for a tekken file.
    """
    import base64

    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    # byte-level BPE writes bytes as printable characters; map them back
    char_to_byte = {c: b for b, c in bytes_to_unicode().items()}
    by_id = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    singles = sorted((s for s, _ in by_id if len(s) == 1), key=lambda s: char_to_byte[s])
    merged = [s for s, _ in by_id if len(s) > 1]
    vocab = []
    for rank, s in enumerate(singles + merged):
        raw = bytes(char_to_byte[c] for c in s)
        vocab.append(
            {
                "rank": rank,
                "token_bytes": base64.b64encode(raw).decode("ascii"),
                "token_str": raw.decode("utf-8", "replace"),
            }
        )
    return {"pattern": _GPT2_PATTERN, "vocab": vocab}
