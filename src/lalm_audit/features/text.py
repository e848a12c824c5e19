"""Text features: the transcript itself (TF-IDF is fit later, inside each CV fold) and scalar statistics.

Nothing here is fitted on data: the TF-IDF vocabulary and IDF weights are
learned by the blind classifier's pipeline on each training fold only
(``lalm_audit.blind``), so the feature table stores the raw transcript.
"""

from __future__ import annotations

import re
import string
from typing import Any

from lalm_audit.config import Config

NAME = "text"
TRANSCRIPT = "transcript"
_WORD = re.compile(r"\w+(?:'\w+)?")
_PUNCT = frozenset(string.punctuation)

STATS = (
    "n_words",
    "n_chars",
    "mean_word_len",
    "type_token_ratio",
    "digit_rate",
    "punct_rate",
    "upper_rate",
)

# feature -> (readable phrase, unit, word for "higher", word for "lower")
DESCRIPTIONS: dict[str, tuple[str, str, str, str]] = {
    "n_words": (
        "transcript length",
        "words",
        "have longer transcripts",
        "have shorter transcripts",
    ),
    "n_chars": (
        "transcript length",
        "characters",
        "have longer transcripts",
        "have shorter transcripts",
    ),
    "mean_word_len": ("mean word length", "characters", "use longer words", "use shorter words"),
    "type_token_ratio": ("type/token ratio", "", "repeat fewer words", "repeat more words"),
    "digit_rate": ("share of digits", "", "contain more digits", "contain fewer digits"),
    "punct_rate": ("share of punctuation", "", "are more punctuated", "are less punctuated"),
    "upper_rate": ("share of upper-case letters", "", "use more capitals", "use fewer capitals"),
    TRANSCRIPT: ("transcript wording", "", "", ""),
}


def columns(cfg: Config) -> list[str]:
    return [TRANSCRIPT, *STATS]


def text_stats(text: str) -> dict[str, float]:
    """Scalar statistics of one transcript (pure; empty text gives zeros)."""
    words = _WORD.findall(text)
    n_chars = len(text)
    letters = [c for c in text if c.isalpha()]
    return {
        "n_words": float(len(words)),
        "n_chars": float(n_chars),
        "mean_word_len": sum(map(len, words)) / len(words) if words else 0.0,
        "type_token_ratio": len({w.lower() for w in words}) / len(words) if words else 0.0,
        "digit_rate": sum(c.isdigit() for c in text) / n_chars if n_chars else 0.0,
        "punct_rate": sum(c in _PUNCT for c in text) / n_chars if n_chars else 0.0,
        "upper_rate": sum(c.isupper() for c in letters) / len(letters) if letters else 0.0,
    }


def extract(row: dict[str, Any], cfg: Config) -> dict[str, Any]:
    text = row.get("text")
    if not isinstance(text, str):
        raise ValueError(f"item {row.get('item_id')!r} has no transcript text (got {text!r})")
    return {TRANSCRIPT: text, **text_stats(text)}
