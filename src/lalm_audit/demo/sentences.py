"""A seeded sentence generator with a large vocabulary (about 1,000 words).

A small phrase grammar (subject, verb, object, prepositional and adverbial
phrases, reported speech) over hand-written word lists yields well over
10^12 distinct sentences; lengths are controlled by rejection sampling so a
dataset can draw from a chosen sentence-length distribution.
"""

from __future__ import annotations

from importlib import resources

import numpy as np


def _load_lexicon() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    text = resources.files("lalm_audit.demo").joinpath("lexicon.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        elif current is not None:
            current.extend(line.split())
    return sections


_LEX = _load_lexicon()
_ADJ, _NOUN, _NAME, _VT, _VI, _ADV, _PREP = (
    _LEX[k] for k in ("adj", "noun", "name", "vt", "vi", "adv", "prep")
)
_DET = [
    "the",
    "the",
    "the",
    "a",
    "a",
    "his",
    "her",
    "their",
    "our",
    "my",
    "this",
    "that",
    "every",
    "one",
    "some",
]
_NUM = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty"]
_REPORT = ["said", "thought", "explained", "claimed", "remembered", "noticed", "wrote", "believed"]
_TIME = [
    "in the morning",
    "at noon",
    "at night",
    "last winter",
    "every summer",
    "on monday",
    "after dinner",
]

VOCABULARY = frozenset(
    w.lower() for ws in (_ADJ, _NOUN, _NAME, _VT, _VI, _ADV, _PREP, _DET, _NUM, _REPORT) for w in ws
)


class SentenceGenerator:
    """Draws sentences from the grammar; every draw is a function of the generator's seed."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def _pick(self, words: list[str] | tuple[str, ...]) -> str:
        return words[int(self.rng.integers(len(words)))]

    def _np(self, allow_name: bool = True) -> list[str]:
        r = self.rng.random()
        if allow_name and r < 0.25:
            return [self._pick(_NAME)]
        if r < 0.35:
            det = self._pick(_NUM)
            noun = self._pick(_NOUN) + "s"
            adjs = [self._pick(_ADJ)] if self.rng.random() < 0.5 else []
            return [det, *adjs, noun]
        n_adj = int(self.rng.choice([0, 1, 1, 2]))
        return [self._pick(_DET), *(self._pick(_ADJ) for _ in range(n_adj)), self._pick(_NOUN)]

    def _clause(self) -> list[str]:
        words = self._np()
        if self.rng.random() < 0.7:
            words += [self._pick(_VT), *self._np()]
        else:
            words += [self._pick(_VI)]
        if self.rng.random() < 0.45:
            words += [self._pick(_PREP), *self._np(allow_name=False)]
        if self.rng.random() < 0.3:
            words += [self._pick(_ADV)]
        if self.rng.random() < 0.15:
            words += self._pick(_TIME).split()
        return words

    def _words(self) -> list[str]:
        if self.rng.random() < 0.15:
            return [self._pick(_NAME), self._pick(_REPORT), "that", *self._clause()]
        return self._clause()

    def sentence(self, min_words: int, max_words: int, max_tries: int = 10_000) -> str:
        """One sentence with ``min_words <= len <= max_words`` words."""
        for _ in range(max_tries):
            words = self._words()
            if min_words <= len(words) <= max_words:
                text = " ".join(words)
                return text[0].upper() + text[1:] + "."
        raise ValueError(
            f"cannot draw a sentence of {min_words}-{max_words} words from the grammar"
        )

    def unique(self, n: int, min_words: int, max_words: int, used: set[str]) -> list[str]:
        """``n`` sentences not in ``used`` (which is updated)."""
        out: list[str] = []
        while len(out) < n:
            s = self.sentence(min_words, max_words)
            if s not in used:
                used.add(s)
                out.append(s)
        return out
