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
