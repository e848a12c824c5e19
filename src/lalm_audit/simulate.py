"""Simulated audit worlds whose truth is known, for calibration tests and the calibration benchmark.

Each world is a function of a seed and a size that returns a :class:`World`:
a :class:`~lalm_audit.features.FeatureSet` built with
:func:`lalm_audit.features.feature_set` from tables that have the real
feature groups' column names and kinds (numbers, categories, the
``transcript`` text column), plus, for the model worlds, a long indicator
table shaped like the indicator stage's output (``item_id``, ``label``,
``slice``, ``indicator``, ``score``). Whether the world is shifted and the
population AUC of its optimal rule are part of the world, so a verdict can be
scored against the truth.

Null worlds (no population difference between members and non-members):

- :func:`null_world`: labels independent of every feature;
- :func:`speaker_world`: speakers drawn from one population, each speaker's
  items share a speaker effect, members' and non-members' speakers disjoint
  (an item-level CV learns the speakers; a speaker-grouped one must not);
- :func:`repeated_text_world`: a small pool of sentences, each read several
  times, in both classes at random;
- :func:`no_signal_model`: indicator scores independent of the labels
  (correlated columns, as real indicators are).

Shifted worlds:

- :func:`shifted_world`: a mean shift in a few acoustic features, sized
  analytically so that the optimal linear rule has a given AUC;
- :func:`closed_vocabulary_world`: every transcript occurs in one class only
  (each several times);
- :func:`memorizing_model`: indicators raised for members (the model has
  seen them), the optimal linear rule's AUC set analytically.

For unit-variance Gaussian classes whose means differ by a vector ``delta``
with covariance ``S``, the optimal linear rule has AUC ``Phi(d / sqrt 2)``
with ``d**2 = delta' S^-1 delta`` (the Mahalanobis distance); the shifts
below are solved from that.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy.stats import norm

from lalm_audit.config import FeaturesConfig
from lalm_audit.features import GROUPS, FeatureSet, feature_set
from lalm_audit.features.metadata import CATEGORICAL as META_CATEGORICAL
from lalm_audit.features.metadata import NUMERIC as META_NUMERIC
from lalm_audit.features.text import TRANSCRIPT, text_stats

ACOUSTIC = ("spectral", "prosodic")
DEFAULT_GROUPS = ("spectral", "prosodic")
TEXT_GROUPS = ("text", "spectral")
SCORE_SLICE = "response"


@dataclass(frozen=True)
class World:
    """One simulated dataset and its truth.

    ``shifted``: members' and non-members' features differ in distribution
    (a shift verdict should say so); ``auc``: the population AUC of the
    optimal rule on the features (0.5 when not shifted); ``scores``: the long
    indicator table of a model world (None for feature-only worlds), whose
    optimal linear rule has population AUC ``score_auc`` (0.5: the model
    carries no membership signal); ``speakers``: True when ``fs.items``
    carries a ``speaker_id`` column.
    """

    name: str
    fs: FeatureSet
    shifted: bool
    auc: float
    scores: pd.DataFrame | None = None
    score_auc: float | None = None

    @property
    def labels(self) -> pd.Series:
        """0/1 label per item, indexed by ``item_id`` (what :mod:`lalm_audit.mia` takes)."""
        return pd.Series(
            self.fs.labels, index=pd.Index(self.fs.item_ids, name="item_id"), name="label"
        )

    @property
    def speakers(self) -> bool:
        return "speaker_id" in self.fs.items.columns

    def __len__(self) -> int:
        return len(self.fs)


# --------------------------------------------------------------------------- analytic shifts


def mahalanobis_for_auc(auc: float) -> float:
    """Mahalanobis distance d between two unit-covariance Gaussian classes whose optimal rule has ``auc``."""
    _check_auc(auc)
    return float(np.sqrt(2.0) * norm.ppf(auc))


def auc_for_mahalanobis(d: float) -> float:
    """Population AUC ``Phi(d / sqrt 2)`` of the optimal linear rule at Mahalanobis distance ``d``."""
    return float(norm.cdf(d / np.sqrt(2.0)))


def feature_shift(auc: float, n_shifted: int) -> float:
    """Per-feature mean shift (in SDs) of ``n_shifted`` independent features that gives ``auc``.

    d**2 = n_shifted * shift**2 for independent unit-variance features.
    """
    if n_shifted < 1:
        raise ValueError(f"n_shifted must be >= 1 (got {n_shifted})")
    return mahalanobis_for_auc(auc) / np.sqrt(n_shifted)


def factor_shift(auc: float, n_indicators: int, rho: float) -> float:
    """Shift of the common factor of ``n_indicators`` equicorrelated columns (correlation ``rho``) that gives ``auc``.

    Column j = sqrt(rho) F + sqrt(1 - rho) e_j; shifting F by m shifts every
    column by sqrt(rho) m, and with S = rho 11' + (1 - rho) I,
    d**2 = m**2 rho p / (1 - rho + p rho) (Sherman-Morrison).
    """
    _check_rho(rho)
    p = n_indicators
    return mahalanobis_for_auc(auc) / np.sqrt(rho * p / (1.0 - rho + p * rho))


def _check_auc(auc: float) -> None:
    if not 0.5 <= auc < 1.0:
        raise ValueError(f"a target AUC must lie in [0.5, 1) (got {auc})")


def _check_rho(rho: float) -> None:
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"the indicators' correlation rho must lie in [0, 1) (got {rho})")


# --------------------------------------------------------------------------- building blocks


@cache
def _real_columns(group: str) -> tuple[str, ...]:
    """The group's real feature column names at the default settings (what the feature stage writes)."""
    if group not in GROUPS:
        raise ValueError(f"unknown feature group {group!r} (known: {list(GROUPS)})")
    # columns() reads only cfg.features; a full Config would need datasets this module has none of
    return tuple(GROUPS[group].columns(types.SimpleNamespace(features=FeaturesConfig())))


def acoustic_columns(group: str, n_features: int) -> list[str]:
    """The first ``n_features`` real numeric column names of an acoustic group."""
    if group not in ACOUSTIC:
        raise ValueError(f"{group!r} is not an acoustic group (simulated ones: {ACOUSTIC})")
    cols = _real_columns(group)
    if not 1 <= n_features <= len(cols):
        raise ValueError(f"n_features must lie in 1..{len(cols)} for {group} (got {n_features})")
    return list(cols[:n_features])


def _check_size(n: int) -> None:
    if n < 8 or n % 2:
        raise ValueError(f"a simulated world needs an even number of items, at least 8 (got n={n})")


def _check_groups(groups: Sequence[str], needs_text: bool = False) -> list[str]:
    groups = list(groups)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise ValueError(f"groups must be a non-empty list of {list(GROUPS)} (got {groups})")
    if needs_text and "text" not in groups:
        raise ValueError(
            f"this world varies the transcripts: its groups must include 'text' (got {groups})"
        )
    return groups


def _labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced 0/1 labels in random order (half members)."""
    return rng.permutation(np.repeat(np.array([1, 0], dtype=int), n // 2))


def _ids(n: int) -> list[str]:
    return [f"sim{k:06d}" for k in range(n)]


def _table(ids: list[str], columns: dict[str, np.ndarray | list]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids, "feature_error": None, **columns})


def _metadata(n: int, rng: np.random.Generator) -> dict[str, np.ndarray | list]:
    """Metadata columns of one recording setup (16-bit FLAC at 16 kHz) with label-free variation."""
    dur = rng.uniform(2.0, 15.0, n)
    nbytes = dur * 16000 * 2 * rng.uniform(0.45, 0.6, n)  # FLAC compresses 16-bit PCM to about half
    out: dict[str, np.ndarray | list] = {
        "audio_format": ["FLAC"] * n,
        "subtype": ["PCM_16"] * n,
        "duration_s": dur,
        "source_duration_s": dur,
        "sample_rate": np.full(n, 16000.0),
        "channels": np.ones(n),
        "bit_depth": np.full(n, 16.0),
        "file_bytes": nbytes,
        "bitrate_kbps": nbytes * 8 / dur / 1000,
        "lead_silence_s": rng.exponential(0.2, n),
        "trail_silence_s": rng.exponential(0.3, n),
        "peak_dbfs": -rng.exponential(3.0, n),
        "rms_dbfs": rng.normal(-22.0, 4.0, n),
        "clip_ratio": np.zeros(n),
        "dc_offset": rng.normal(0.0, 1e-4, n),
        "snr_db": rng.normal(30.0, 6.0, n),
    }
    assert tuple(out) == (*META_CATEGORICAL, *META_NUMERIC), "metadata layout changed"
    return out


_SYLLABLES = [c + v for c in "bdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def vocabulary(size: int, seed: int = 0) -> list[str]:
    """``size`` distinct pronounceable pseudo-words (2-3 syllables), seeded."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(_SYLLABLES, rng.integers(2, 4)))] = None
    return list(words)


def sentences(k: int, words: Sequence[str], rng: np.random.Generator) -> list[str]:
    """``k`` distinct sentences of 6-14 words drawn Zipf-like from ``words`` (frequent words recur, as in speech)."""
    w = np.asarray(words, dtype=object)
    p = 1.0 / np.arange(1, w.size + 1)
    p /= p.sum()
    out: dict[str, None] = {}
    while len(out) < k:
        s = " ".join(rng.choice(w, rng.integers(6, 15), p=p))
        out[s[0].upper() + s[1:] + "."] = None
    return list(out)


def _text(transcripts: Sequence[str]) -> dict[str, list]:
    """The text group's columns: the transcript and its real statistics (the text group's own function)."""
    stats = [text_stats(t) for t in transcripts]
    return {TRANSCRIPT: list(transcripts), **{k: [s[k] for s in stats] for k in stats[0]}}


def _build(
    name: str,
    ids: list[str],
    y: np.ndarray,
    groups: Sequence[str],
    acoustic: dict[str, np.ndarray],
    transcripts: Sequence[str] | None,
    rng: np.random.Generator,
    *,
    shifted: bool,
    auc: float,
    speakers: np.ndarray | None = None,
    scores: pd.DataFrame | None = None,
    score_auc: float | None = None,
) -> World:
    """A World from its label vector, acoustic matrices (group -> items x columns) and transcripts."""
    tables = {}
    for g in groups:
        if g in ACOUSTIC:
            X = acoustic[g]
            cols = acoustic_columns(g, X.shape[1])
            tables[g] = _table(ids, dict(zip(cols, X.T, strict=True)))
        elif g == "text":
            tables[g] = _table(ids, _text(transcripts))
        else:
            tables[g] = _table(ids, _metadata(len(ids), rng))
    man = pd.DataFrame({"item_id": ids, "label": y})
    if speakers is not None:  # feature_set carries it into fs.items, as from a real manifest
        man["speaker_id"] = speakers
    fs = feature_set(man, tables, dataset=name)
    return World(name, fs, shifted, auc, scores, score_auc)


def _acoustic(
    groups: Sequence[str], n: int, n_features: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Independent unit-variance Gaussian features for each acoustic group."""
    return {g: rng.standard_normal((n, n_features)) for g in groups if g in ACOUSTIC}


def _unique_transcripts(n: int, rng: np.random.Generator, vocab_size: int = 400) -> list[str]:
    """One distinct sentence per item (no sentence repeats: the ordinary case)."""
    return list(
        rng.permutation(
            np.asarray(
                sentences(n, vocabulary(vocab_size, int(rng.integers(2**31))), rng), dtype=object
            )
        )
    )


# --------------------------------------------------------------------------- null worlds


def null_world(
    n: int, *, seed: int, groups: Sequence[str] = DEFAULT_GROUPS, n_features: int = 8
) -> World:
    """No shift: labels independent of every feature (``n`` items, half members)."""
    _check_size(n)
    groups = _check_groups(groups)
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    texts = _unique_transcripts(n, rng) if "text" in groups else None
    return _build("null", _ids(n), y, groups, _acoustic(groups, n, n_features, rng), texts, rng,
                  shifted=False, auc=0.5)  # fmt: skip


def speaker_world(
    n: int,
    *,
    seed: int,
    items_per_speaker: int = 10,
    speaker_share: float = 0.5,
    groups: Sequence[str] = DEFAULT_GROUPS,
    n_features: int = 8,
) -> World:
    """Speaker-clustered, no population shift: each class has its own speakers, all from one population.

    Every feature of item i of speaker s is ``sqrt(share) u_s + sqrt(1 - share) e_i``
    (unit variance; ``speaker_share`` of it is the speaker's), with u_s and e_i
    standard normal for every speaker. Members' speakers and non-members'
    speakers are disjoint, so a model can recognize a training speaker's
    other items, but a new speaker says nothing about membership: the
    population AUC is 0.5. ``fs.items`` carries ``speaker_id``.
    """
    _check_size(n)
    groups = _check_groups(groups)
    if not 0.0 <= speaker_share < 1.0:
        raise ValueError(f"speaker_share must lie in [0, 1) (got {speaker_share})")
    per_class = n // 2
    if not 1 <= items_per_speaker <= per_class // 2:
        raise ValueError(
            f"items_per_speaker must lie in 1..{per_class // 2} so that each class has >= 2 speakers "
            f"(got {items_per_speaker} with {per_class} items per class)"
        )
    rng = np.random.default_rng(seed)
    # speakers of each class: consecutive blocks of items_per_speaker items (the last block takes the rest)
    block = np.minimum(
        np.arange(per_class) // items_per_speaker, per_class // items_per_speaker - 1
    )
    y = np.repeat([1, 0], per_class)
    spk_index = np.concatenate([block, block + block.max() + 1])
    n_spk = int(spk_index.max()) + 1
    order = rng.permutation(n)  # item ids carry no trace of label or speaker
    y, spk_index = y[order], spk_index[order]
    acoustic = {}
    for g in groups:
        if g in ACOUSTIC:
            u = rng.standard_normal((n_spk, n_features))
            e = rng.standard_normal((n, n_features))
            acoustic[g] = np.sqrt(speaker_share) * u[spk_index] + np.sqrt(1.0 - speaker_share) * e
    texts = _unique_transcripts(n, rng) if "text" in groups else None
    speakers = np.array([f"spk{s:04d}" for s in spk_index], dtype=object)
    return _build("speakers", _ids(n), y, groups, acoustic, texts, rng, shifted=False, auc=0.5,
                  speakers=speakers)  # fmt: skip


def repeated_text_world(
    n: int,
    *,
    seed: int,
    reads_per_sentence: int = 4,
    groups: Sequence[str] = TEXT_GROUPS,
    n_features: int = 8,
) -> World:
    """Repeated transcripts, no shift: about n / ``reads_per_sentence`` sentences, each read several times,
    every reading's label drawn independently of the sentence (so most sentences occur in both classes)."""
    _check_size(n)
    groups = _check_groups(groups, needs_text=True)
    if not 2 <= reads_per_sentence <= n // 2:
        raise ValueError(f"reads_per_sentence must lie in 2..{n // 2} (got {reads_per_sentence})")
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    pool = sentences(
        max(2, n // reads_per_sentence), vocabulary(400, int(rng.integers(2**31))), rng
    )
    texts = [pool[i] for i in rng.integers(0, len(pool), n)]
    return _build("repeated-text", _ids(n), y, groups, _acoustic(groups, n, n_features, rng), texts, rng,
                  shifted=False, auc=0.5)  # fmt: skip


def _indicator_names(n_indicators: int) -> list[str]:
    """``n_indicators`` real indicator names spread over the families (loss, Min-K%, Renyi, ...)."""
    from lalm_audit.indicators import build_indicators

    names = [i.name for i in build_indicators()]
    if not 2 <= n_indicators <= len(names):
        raise ValueError(f"n_indicators must lie in 2..{len(names)} (got {n_indicators})")
    pick = np.unique(np.linspace(0, len(names) - 1, n_indicators).round().astype(int))
    return [names[i] for i in pick]


def _scores(ids: list[str], y: np.ndarray, names: list[str], factor: np.ndarray, rho: float,
            rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    """Long indicator table: column j = sqrt(rho) factor + sqrt(1 - rho) e_j (one shared 'memorization' factor)."""
    e = rng.standard_normal((len(ids), len(names)))
    S = np.sqrt(rho) * factor[:, None] + np.sqrt(1.0 - rho) * e
    return pd.DataFrame({
        "item_id": np.repeat(np.asarray(ids, dtype=object), len(names)),
        "label": np.repeat(y.astype(np.int8), len(names)),
        "slice": SCORE_SLICE,
        "indicator": np.tile(np.asarray(names, dtype=object), len(ids)),
        "score": S.ravel(),
    })  # fmt: skip


def no_signal_model(
    n: int,
    *,
    seed: int,
    n_indicators: int = 30,
    rho: float = 0.6,
    groups: Sequence[str] = DEFAULT_GROUPS,
    n_features: int = 8,
) -> World:
    """A model that learned nothing about membership: ``n_indicators`` indicator scores independent of the
    labels, pairwise correlation ``rho`` (real indicators of one model are strongly correlated), on a
    feature set without shift (for the confound adjustment)."""
    _check_size(n)
    _check_rho(rho)
    groups = _check_groups(groups)
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    ids = _ids(n)
    scores = _scores(ids, y, _indicator_names(n_indicators), rng.standard_normal(n), rho, rng)
    return _build("no-signal-model", ids, y, groups, _acoustic(groups, n, n_features, rng),
                  _unique_transcripts(n, rng) if "text" in groups else None, rng,
                  shifted=False, auc=0.5, scores=scores, score_auc=0.5)  # fmt: skip


# --------------------------------------------------------------------------- shifted worlds


def shifted_world(
    n: int,
    *,
    seed: int,
    auc: float = 0.7,
    n_shifted: int = 3,
    group: str = "spectral",
    groups: Sequence[str] = DEFAULT_GROUPS,
    n_features: int = 8,
) -> World:
    """Members' mean is shifted in ``n_shifted`` features of ``group`` so that the optimal linear rule
    has population AUC ``auc`` (:func:`feature_shift`); everything else as :func:`null_world`."""
    _check_size(n)
    groups = _check_groups(groups)
    if group not in groups or group not in ACOUSTIC:
        raise ValueError(
            f"the shifted group {group!r} must be an acoustic group in groups {groups}"
        )
    if not 1 <= n_shifted <= n_features:
        raise ValueError(f"n_shifted must lie in 1..n_features={n_features} (got {n_shifted})")
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    acoustic = _acoustic(groups, n, n_features, rng)
    acoustic[group][:, :n_shifted] += feature_shift(auc, n_shifted) * y[:, None]
    texts = _unique_transcripts(n, rng) if "text" in groups else None
    return _build(f"shift-{auc:g}", _ids(n), y, groups, acoustic, texts, rng,
                  shifted=auc > 0.5, auc=auc)  # fmt: skip


def closed_vocabulary_world(
    n: int,
    *,
    seed: int,
    reads_per_sentence: int = 6,
    vocab_size: int = 60,
    groups: Sequence[str] = TEXT_GROUPS,
    n_features: int = 8,
) -> World:
    """A closed vocabulary split by class: each class reads its own sentences (about n / (2 x
    ``reads_per_sentence``) of them, each several times); no sentence occurs in both classes.

    Both classes' sentences draw on one small vocabulary of ``vocab_size``
    words, so the sentences themselves, not their words, mark the class: a new reading of a sentence seen in training is
    classified perfectly (population AUC 1), and only a CV that keeps every
    reading of a sentence on one side of the split can miss it.
    """
    _check_size(n)
    groups = _check_groups(groups, needs_text=True)
    per_class = n // 2
    if not 2 <= reads_per_sentence <= per_class // 2:
        raise ValueError(
            f"reads_per_sentence must lie in 2..{per_class // 2} (got {reads_per_sentence})"
        )
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    k = max(2, per_class // reads_per_sentence)
    pool = sentences(2 * k, vocabulary(vocab_size, int(rng.integers(2**31))), rng)
    own = {1: pool[:k], 0: pool[k:]}
    texts = np.empty(n, dtype=object)
    for c in (0, 1):  # each sentence of a class read equally often (+-1), in random order
        idx = np.flatnonzero(y == c)
        texts[idx] = [own[c][i % k] for i in rng.permutation(idx.size)]
    return _build("closed-vocabulary", _ids(n), y, groups, _acoustic(groups, n, n_features, rng), texts,
                  rng, shifted=True, auc=1.0)  # fmt: skip


def shift_reading_model(
    n: int,
    *,
    seed: int,
    auc: float = 0.7,
    n_shifted: int = 3,
    group: str = "spectral",
    n_indicators: int = 30,
    rho: float = 0.6,
    groups: Sequence[str] = DEFAULT_GROUPS,
    n_features: int = 8,
) -> World:
    """A model that learned nothing about membership but reads a recording artifact.

    The members' ``group`` features are shifted as in :func:`shifted_world` (blind AUC
    ``auc``), and the indicators' shared factor is the shifted features' standardized sum:
    the scores separate the classes (an aggregate reads "signal", truly: they *are*
    distinguishable) only through a shift the blind features also see. The correlation
    stage must not call that a membership signal (``score_auc`` 0.5: no membership).
    """
    _check_size(n)
    groups = _check_groups(groups)
    if group not in groups or group not in ACOUSTIC:
        raise ValueError(
            f"the shifted group {group!r} must be an acoustic group in groups {groups}"
        )
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    ids = _ids(n)
    acoustic = _acoustic(groups, n, n_features, rng)
    acoustic[group][:, :n_shifted] += feature_shift(auc, n_shifted) * y[:, None]
    factor = acoustic[group][:, :n_shifted].sum(axis=1) / np.sqrt(n_shifted)
    scores = _scores(ids, y, _indicator_names(n_indicators), factor, rho, rng)
    return _build(f"shift-reading-{auc:g}", ids, y, groups, acoustic,
                  _unique_transcripts(n, rng) if "text" in groups else None, rng,
                  shifted=True, auc=auc, scores=scores, score_auc=0.5)  # fmt: skip


def memorizing_model(
    n: int,
    *,
    seed: int,
    auc: float = 0.7,
    n_indicators: int = 30,
    rho: float = 0.6,
    groups: Sequence[str] = DEFAULT_GROUPS,
    n_features: int = 8,
) -> World:
    """A model that memorized its members: the shared factor of the indicators is raised for members
    by :func:`factor_shift` (optimal linear rule's AUC ``auc``), on a feature set without shift (a
    clean split: the signal is membership, not artifacts)."""
    _check_size(n)
    groups = _check_groups(groups)
    rng = np.random.default_rng(seed)
    y = _labels(n, rng)
    ids = _ids(n)
    factor = rng.standard_normal(n) + factor_shift(auc, n_indicators, rho) * y
    scores = _scores(ids, y, _indicator_names(n_indicators), factor, rho, rng)
    return _build(f"memorizing-{auc:g}", ids, y, groups, _acoustic(groups, n, n_features, rng),
                  _unique_transcripts(n, rng) if "text" in groups else None, rng,
                  shifted=False, auc=0.5, scores=scores, score_auc=auc)  # fmt: skip
