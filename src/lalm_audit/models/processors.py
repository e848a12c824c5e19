"""Audio-only variants of omni-modal transformers processors (no image or video processor).

Qwen2.5-Omni's released processor (``Qwen2_5OmniProcessor``) bundles an image
processor and a video processor. transformers' video processors need
torchvision, and torchvision must match the installed torch build exactly: the
PyPI wheel of torchvision 0.28.0 fails to import beside the CPU build of torch
2.13.0 (``RuntimeError: operator torchvision::nms does not exist``), and an
unpinned torchvision pulls another torch. ``AutoProcessor.from_pretrained``
on a Qwen2.5-Omni checkpoint therefore fails without torchvision
(``Qwen2VLVideoProcessor requires the Torchvision library``), although scoring
audio never touches images or video.

:class:`Qwen2_5OmniAudioProcessor` is the released processor class with only
its audio feature extractor and tokenizer as sub-processors. transformers
derives a processor's sub-processors from its ``__init__`` signature, so
narrowing the signature is all it takes: ``from_pretrained`` then loads just
the feature extractor and the tokenizer from a released checkpoint, and
``__call__`` (chat-template text, audio features, the ``<|AUDIO|>`` expansion
to one token per encoder frame, text replacement offsets) is transformers' own
code, unchanged. The tests check the expansion against the processor's own
token-count API and the audio encoder's output length.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2_5OmniProcessor
from transformers.processing_utils import ProcessorMixin

# The released tokenizer's special tokens for audio (used when the tokenizer
# does not name them as attributes).
_OMNI_AUDIO_TOKENS = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}


class Qwen2_5OmniAudioProcessor(Qwen2_5OmniProcessor):
    """``Qwen2_5OmniProcessor`` for audio + text only: a Whisper feature extractor and the tokenizer."""

    def __init__(self, feature_extractor: Any = None, tokenizer: Any = None, chat_template=None):
        # Skips Qwen2_5OmniProcessor.__init__, which reads the image/video token
        # names too; the mixin checks the two sub-processors' classes.
        ProcessorMixin.__init__(self, feature_extractor, tokenizer, chat_template=chat_template)
        for attr, default in _OMNI_AUDIO_TOKENS.items():
            token = getattr(tokenizer, attr, None) or default
            token_id = tokenizer.convert_tokens_to_ids(token)
            if not isinstance(token_id, int) or token_id == tokenizer.unk_token_id:
                raise ValueError(
                    f"Qwen2.5-Omni tokenizer has no {token!r} token ({attr}); "
                    "is this a Qwen2.5-Omni checkpoint?"
                )
            setattr(self, attr, token)
            setattr(self, f"{attr}_id", token_id)

    @property
    def model_input_names(self) -> list[str]:
        return list(
            dict.fromkeys(
                self.tokenizer.model_input_names
                + self.feature_extractor.model_input_names
                + ["feature_attention_mask"]
            )
        )
