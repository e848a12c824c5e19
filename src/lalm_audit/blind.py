"""Blind classifiers: how well do features alone (no model) tell members from non-members?

For each feature group, and for all groups combined, a logistic regression
(the paper's choice) and gradient-boosted trees are cross-validated
(stratified k-fold); every preprocessing step (imputation, scaling, one-hot
encoding, TF-IDF) lives in one scikit-learn pipeline fit on the training fold
only. Each item gets an out-of-fold membership probability and logit. A
permutation control repeats the same CV on shuffled labels (its AUC should
sit at 0.5), and the features that drive the separation are explained in
words.

Public pieces other stages reuse:

- :func:`make_preprocessor`, :func:`make_pipeline`: the blind feature
  matrix and classifier for a group (fit them inside your own folds);
- :func:`stratified_folds` (+ :func:`text_groups`), :func:`oof_scores`:
  out-of-fold scores for one group and classifier; :func:`importance`;
- :func:`cross_validate`: the whole blind CV (all groups, both classifiers,
  control, explanations) on any feature set or subset of it, with any seed;
  :func:`pick_stronger` is its rule for the reported classifier;
- :func:`run_blind`: the workflow stage (reads features, writes the tables);
  :func:`load_blind` reads them back (``load_blind(ds).scores("combined")``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.sparsefuncs import mean_variance_axis
from threadpoolctl import threadpool_limits

from lalm_audit import evaluation as ev
from lalm_audit import io, verdicts
from lalm_audit.config import BlindConfig, Config, EvaluationConfig
from lalm_audit.errors import DatasetError
from lalm_audit.features.registry import GROUPS
from lalm_audit.features.table import SEP, FeatureSet, GroupColumns, load_features
from lalm_audit.layout import RESULTS, Layout
from lalm_audit.schemas import BLIND_EXPLANATIONS, BLIND_METRICS, BLIND_NULL, BLIND_PREDICTIONS

log = logging.getLogger(__name__)

CLASSIFIERS = ("logistic", "gbt")
COMBINED = "combined"
BLIND, PERMUTATION = "blind", "permutation"


# --------------------------------------------------------------------------- pipelines


class TranscriptTfidf(TfidfVectorizer):
    """TF-IDF that yields zero columns, instead of failing, when a training fold has no usable n-gram.

    With ``min_df`` >= 2 a small fold of unique transcripts can leave an empty
    vocabulary; the text then simply carries no information in that fold.
    """

    def fit_transform(self, raw_documents: Any, y: Any = None) -> Any:
        try:
            self._empty = False
            return super().fit_transform(raw_documents, y)
        except ValueError as exc:
            if "no terms remain" not in str(exc) and "empty vocabulary" not in str(exc):
                raise
            self._empty = True
            self.vocabulary_ = {}
            return sparse.csr_matrix((len(raw_documents), 0))

    def fit(self, raw_documents: Any, y: Any = None) -> TranscriptTfidf:
        self.fit_transform(raw_documents, y)
        return self

    def transform(self, raw_documents: Any) -> Any:
        if getattr(self, "_empty", False):
            return sparse.csr_matrix((len(raw_documents), 0))
        return super().transform(raw_documents)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if getattr(self, "_empty", False):
            return np.array([], dtype=object)
        return super().get_feature_names_out(input_features)


def make_preprocessor(
    columns: GroupColumns, classifier: str, cfg: BlindConfig
) -> ColumnTransformer:
    """Feature matrix of a group's columns, every step fit on the data it is fit on (one training fold).

    Numbers: mean imputation of failed items and standardization (logistic
    regression; trees take missing values natively and need no scaling);
    categories: one-hot (missing ones were filled with '<missing>' when the
    feature set was built); each text column: TF-IDF of word
    1..``ngram_max``-grams. Trees get a dense matrix with at most
    ``tree_max_features`` n-grams. Transformer names are ``num``, ``cat<i>``,
    ``txt<i>`` (i: position in ``columns.categorical`` / ``columns.text``).
    """
    linear = classifier == "logistic"
    t = cfg.tfidf
    parts: list[tuple[str, Any, Any]] = []
    if columns.numeric:
        num: Any = (
            Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                    ("scale", StandardScaler()),
                ]
            )
            if linear
            else "passthrough"
        )
        parts.append(("num", num, list(columns.numeric)))
    for i, c in enumerate(columns.categorical):
        parts.append((f"cat{i}", OneHotEncoder(handle_unknown="ignore", sparse_output=linear), [c]))
    for i, c in enumerate(columns.text):
        vec = TranscriptTfidf(
            ngram_range=(1, t.ngram_max),
            min_df=t.min_df,
            max_features=t.max_features if linear else t.tree_max_features,
            sublinear_tf=t.sublinear_tf,
            dtype=np.float64,
        )
        parts.append((f"txt{i}", vec, c))  # a scalar column name: the vectorizer gets 1-D strings
    if not parts:
        raise ValueError("a blind pipeline needs at least one feature column")
    return ColumnTransformer(parts, sparse_threshold=0.3 if linear else 0.0)


def make_classifier(classifier: str, cfg: BlindConfig, seed: int = 0) -> Any:
    if classifier == "logistic":
        return LogisticRegression(C=cfg.logistic.C, max_iter=cfg.logistic.max_iter)
    if classifier == "gbt":
        g = cfg.gbt
        return HistGradientBoostingClassifier(
            max_iter=g.max_iter,
            learning_rate=g.learning_rate,
            max_depth=g.max_depth,
            max_bins=g.max_bins,
            min_samples_leaf=g.min_samples_leaf,
            l2_regularization=g.l2_regularization,
            early_stopping={"auto": "auto", "on": True, "off": False}[g.early_stopping],
            random_state=seed,
        )
    raise ValueError(f"unknown blind classifier {classifier!r} (known: {CLASSIFIERS})")


def group_columns(fs: FeatureSet, group: str) -> GroupColumns:
    """Columns of a group, or of every group for ``'combined'``."""
    return fs.columns(None if group == COMBINED else group)


def make_pipeline(
    fs: FeatureSet, group: str, classifier: str, cfg: BlindConfig, seed: int = 0
) -> Pipeline:
    """The blind pipeline of a group (or ``'combined'``): preprocessing + classifier, unfitted.

    Fit it on ``fs.frame`` rows of a training fold and ``fs.labels``;
    ``pipeline[:-1]`` alone is the blind feature matrix (e.g. to regress blind
    features out of another score inside the same folds).
    """
    return Pipeline(
        [
            ("features", make_preprocessor(group_columns(fs, group), classifier, cfg)),
            ("classifier", make_classifier(classifier, cfg, seed)),
        ]
    )


def stratified_folds(
    labels: np.ndarray, n_folds: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Fold index per item (stratified, shuffled, seeded); fewer folds when a class is smaller.

    ``groups``: items sharing a group id always share a fold (scikit-learn's
    ``StratifiedGroupKFold``; stratification is then approximate).
    """
    y = np.asarray(labels, dtype=int)
    smallest = int(min((y == 1).sum(), (y == 0).sum()))
    if smallest < 2:
        raise ValueError(
            f"blind CV needs at least 2 items per class ({(y == 1).sum()} members, {(y == 0).sum()} non-members)"
        )
    k = min(n_folds, smallest)
    if groups is not None:
        k = min(k, int(pd.Series(groups).nunique()))
        if k < 2:
            raise ValueError("blind CV needs at least 2 fold groups (e.g. speakers)")
    if k < n_folds:
        log.warning(
            "only %d items in the smaller class: %d-fold instead of %d-fold CV",
            smallest,
            k,
            n_folds,
        )
    fold = np.empty(y.size, dtype=int)
    if groups is not None and pd.Series(groups).duplicated().any():
        splitter: Any = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(y.size), y, groups)
    else:
        splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(y.size), y)
    for f, (_, test) in enumerate(splits):
        fold[test] = f
    return fold


def text_groups(fs: FeatureSet) -> np.ndarray | None:
    """Group id per item such that items whose transcript occurs in both classes share a group.

    Two items with the same transcript in different folds make the text
    model predict one from the other; when they carry opposite labels (the
    same sentence read by a member and a non-member speaker) that pushes the
    AUC far below 0.5, so such items share a fold. A transcript found in one
    class only is left ungrouped (each item its own group): grouping it would
    hide a vocabulary that differs by class, since a sentence repeated only
    among the members could then never be learned from its other readings.
    None when the feature set has no text column or no transcript is shared.
    """
    text_cols = [c for g in fs.groups.values() for c in g.text]
    if not text_cols:
        return None
    norm = fs.frame[text_cols[0]].astype(str).map(lambda t: " ".join(t.lower().split()))
    codes = pd.factorize(norm)[0]
    y = fs.labels
    both = pd.Series(y).groupby(codes).nunique().to_numpy() > 1
    if not both.any():
        return None
    shared = both[codes]
    # shared transcripts: their code; the rest: a group of their own (offset past every code)
    return np.where(shared, codes, codes.max() + 1 + np.arange(len(codes)))


def speaker_ids(fs: FeatureSet) -> np.ndarray | None:
    """The items' speaker ids, or None when the manifest gave none (missing ones become unique ids)."""
    if "speaker_id" not in fs.items:
        return None
    spk = fs.items["speaker_id"].astype(object)
    known = spk.notna() & ~spk.astype(str).isin(["", "unknown", "None", "nan"])
    if not known.any():
        return None
    own = pd.Series([f"\0item:{i}" for i in fs.item_ids], index=spk.index)
    return spk.where(known, own).astype(str).to_numpy(dtype=object)


def _components(*keys: np.ndarray) -> np.ndarray:
    """Connected components of items that share any key (union of the partitions)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(keys[0])
    rows, cols, offset = [], [], n
    for k in keys:
        codes = pd.factorize(pd.Series(k, dtype=object))[0]
        rows.append(np.arange(n))
        cols.append(offset + codes)
        offset += int(codes.max()) + 1
    r, c = np.concatenate(rows), np.concatenate(cols)
    g = coo_matrix((np.ones(r.size), (r, c)), shape=(offset, offset))
    return connected_components(g, directed=False)[1][:n]


@dataclass(frozen=True)
class FoldGrouping:
    """Which items must share a CV fold, and why (said in every summary)."""

    groups: np.ndarray | None
    by_speaker: bool
    description: str


def fold_grouping(fs: FeatureSet, cfg: BlindConfig) -> FoldGrouping:
    """CV groups: speakers (when known and ``group_by_speaker`` allows) and transcripts both classes share.

    Both at once when their union still leaves enough groups for the folds;
    otherwise the speakers when they are label-associated (at least half of the
    items come from a speaker whose items are >= 90% one class: there a
    classifier could score by recognizing voices it saw), else the shared
    transcripts.
    """
    spk = speaker_ids(fs) if cfg.group_by_speaker != "off" else None
    if cfg.group_by_speaker == "on" and spk is None:
        raise DatasetError(
            str(fs.items["dataset"].iloc[0]) if len(fs) else "?",
            "blind.group_by_speaker is 'on' but the manifest has no speaker ids",
            "map a speaker column (columns: {speaker_id: ...}) or set group_by_speaker: auto",
        )
    txt = text_groups(fs) if cfg.group_same_text else None
    if spk is not None and cfg.group_by_speaker == "auto" and len(set(spk)) < 4:
        # too few speakers to spread over the folds (a one-speaker corpus, say): speaker-level
        # folds are impossible, and with so few the classifier sees every voice in training anyway
        log.warning("only %d speakers: folds are not grouped by speaker", len(set(spk)))
        spk = None
    if spk is None and txt is None:
        return FoldGrouping(None, False, "stratified by class")
    if spk is None:
        return FoldGrouping(txt, False, "transcripts read in both classes kept in one fold")
    if txt is None:
        return FoldGrouping(spk, True, "grouped by speaker")
    both = _components(spk, txt)
    if np.bincount(both).max() <= len(fs) / max(2, cfg.folds):
        return FoldGrouping(
            both, True, "grouped by speaker and by transcripts read in both classes"
        )
    y = fs.labels
    purity = pd.Series(y).groupby(spk).transform("mean").to_numpy()
    if np.mean((purity >= 0.9) | (purity <= 0.1)) >= 0.5:
        return FoldGrouping(
            spk,
            True,
            "grouped by speaker (speakers and shared transcripts together leave too few groups)",
        )
    return FoldGrouping(
        txt, False, "transcripts read in both classes kept in one fold (speakers are mixed across the "
        "classes; grouping both leaves too few groups)",
    )  # fmt: skip


def permute_labels(
    y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Labels under the null: shuffled across groups when every group holds one class, else across items.

    With speaker-pure classes the exchangeable units are speakers: shuffling
    items would break the speaker-label link that a speaker-grouped CV keeps,
    and the null would not be the real procedure's null.
    """
    y = np.asarray(y, dtype=int)
    if groups is not None:
        codes = pd.factorize(pd.Series(groups, dtype=object))[0]
        per = pd.Series(y).groupby(codes).agg(["min", "max"])
        if (per["min"] == per["max"]).all() and len(per) >= 4:
            glab = per["min"].to_numpy()
            for _ in range(100):  # both classes need at least 2 items
                new = rng.permutation(glab)[codes]
                if min((new == 1).sum(), (new == 0).sum()) >= 2:
                    return new
    return rng.permutation(y)


# --------------------------------------------------------------------------- out-of-fold scores


@dataclass
class OOF:
    """Out-of-fold decision scores (log-odds of membership), fold per item, and the fold models on request."""

    logit: np.ndarray
    fold: np.ndarray
    models: list[Pipeline] | None = None


def derive_seed(*parts: Any) -> int:
    """A 32-bit seed from a base seed and labels (a group, a classifier, a run): stable across runs and workers."""
    key = [p if isinstance(p, int) and p >= 0 else zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _coef_importance(pipe: Pipeline, Xtrain: pd.DataFrame) -> pd.Series:
    """Standardized coefficients: coefficient x std of the model input column on the training fold.

    Numbers are already standardized (std 1); for TF-IDF terms and one-hot
    categories the std rescales the coefficient to the same per-SD effect
    size, so terms of every kind rank on one scale.
    """
    pre, clf = pipe[:-1], pipe[-1]
    Z = pre.transform(Xtrain)
    if sparse.issparse(Z):
        _, var = mean_variance_axis(sparse.csr_matrix(Z), axis=0)
        std = np.sqrt(var)
    else:
        std = np.asarray(Z).std(axis=0)
    return pd.Series(clf.coef_[0] * std, index=_term_names(pipe[0]))


def _term_names(ct: ColumnTransformer) -> list[str]:
    """Readable model-term names: '<group>__<feature>', '<col>=<category>', '<col>:<n-gram>'."""
    names: list[str] = []
    for name, trans, cols in ct.transformers_:
        if name == "remainder":
            continue
        if name == "num":
            names += list(cols)
        elif name.startswith("cat"):
            names += [f"{cols[0]}={v}" for v in trans.categories_[0]]
        elif name.startswith("txt"):
            names += [f"{cols}:{t}" for t in trans.get_feature_names_out()]
    return names


def _blocks(ct: ColumnTransformer) -> dict[str, np.ndarray]:
    """Model-input column indices of each raw input column (a text or categorical column is one block)."""
    out: dict[str, np.ndarray] = {}
    for name, _trans, cols in ct.transformers_:
        sl = ct.output_indices_.get(name)
        if name == "remainder" or sl is None or sl.stop == sl.start:
            continue
        idx = np.arange(sl.start, sl.stop)
        if name == "num":
            out.update({c: idx[i : i + 1] for i, c in enumerate(cols)})
        else:
            out[cols if isinstance(cols, str) else cols[0]] = idx
    return out


def _perm_scores(
    pipe: Pipeline, Xtest: pd.DataFrame, repeats: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Decision scores of held-out rows with each raw input column shuffled (``repeats`` x rows per column).

    scikit-learn's ``permutation_importance`` shuffles one raw column at a time
    through the whole pipeline, re-running TF-IDF and every transformer for
    each column; here the held-out rows are transformed once and each raw
    column's block of model inputs (its TF-IDF terms, its one-hot columns) is
    shuffled in the transformed matrix, which is equivalent for these
    column-wise transformers and an order of magnitude faster.
    """
    pre, clf = pipe[:-1], pipe[-1]
    Z = np.asarray(pre.transform(Xtest), dtype=np.float64)
    n = Z.shape[0]
    blocks = list(_blocks(pipe[0]).items())
    # every shuffled copy of the held-out rows goes through the model in a few large
    # batches (one predict call per ~32 MB of rows) rather than one call per copy
    per_batch = max(1, (32 << 20) // max(1, Z.nbytes * repeats))
    out = {}
    for start in range(0, len(blocks), per_batch):
        chunk = blocks[start : start + per_batch]
        stack = np.empty((len(chunk) * repeats * n, Z.shape[1]))
        for b, (_, idx) in enumerate(chunk):
            for r in range(repeats):
                rows = slice((b * repeats + r) * n, (b * repeats + r + 1) * n)
                stack[rows] = Z
                stack[rows, idx] = Z[rng.permutation(n)][:, idx]
        scores = clf.decision_function(stack).reshape(len(chunk), repeats, n)
        out.update({col: scores[b] for b, (col, _) in enumerate(chunk)})
    return out


def oof_scores(
    fs: FeatureSet,
    group: str,
    classifier: str,
    cfg: BlindConfig,
    *,
    folds: np.ndarray,
    labels: np.ndarray | None = None,
    seed: int = 0,
    keep_models: bool = False,
) -> OOF:
    """Out-of-fold log-odds of membership of every item for one group (or ``'combined'``) and classifier.

    ``folds``: fold index per item (:func:`stratified_folds`); ``labels``:
    default ``fs.labels`` (the permutation control passes shuffled ones);
    ``keep_models``: keep each fold's fitted pipeline (for :func:`importance`).
    """
    y = fs.labels if labels is None else np.asarray(labels, dtype=int)
    X = fs.frame
    logit = np.full(len(fs), np.nan)
    models = []
    for f in np.unique(folds):
        test = folds == f
        pipe = make_pipeline(fs, group, classifier, cfg, seed).fit(X[~test], y[~test])
        logit[test] = pipe.decision_function(X[test])
        if keep_models:
            models.append(pipe)
    return OOF(logit, np.asarray(folds), models if keep_models else None)


def importance(
    fs: FeatureSet,
    oof: OOF,
    classifier: str,
    cfg: BlindConfig,
    *,
    labels: np.ndarray | None = None,
    seed: int = 0,
    items: np.ndarray | None = None,
) -> pd.Series:
    """What drives an out-of-fold classifier (``oof`` from ``oof_scores(..., keep_models=True)``).

    Logistic regression: standardized coefficients averaged over the fold
    models (a term a fold never saw counts 0). Trees: held-out permutation
    importance, the drop of the pooled out-of-fold AUC when one input column
    is shuffled among held-out items (mean over ``cfg.importance_repeats``),
    on the held-out items in ``items`` (a boolean mask; default all).
    """
    if not oof.models:
        raise ValueError("importance needs the fold models: call oof_scores(..., keep_models=True)")
    y = fs.labels if labels is None else np.asarray(labels, dtype=int)
    X = fs.frame
    folds = np.unique(oof.fold)
    if classifier == "logistic":
        coefs = [
            _coef_importance(m, X[oof.fold != f]) for f, m in zip(folds, oof.models, strict=True)
        ]
        return pd.concat(coefs, axis=1).fillna(0.0).mean(axis=1)
    rng = np.random.default_rng(derive_seed(seed, "importance"))
    mask = np.ones(len(fs), bool) if items is None else np.asarray(items, bool)
    perm: dict[str, np.ndarray] = {}
    for f, m in zip(folds, oof.models, strict=True):
        sub = (oof.fold == f) & mask
        if sub.any():
            for col, sc in _perm_scores(m, X[sub], cfg.importance_repeats, rng).items():
                perm.setdefault(col, np.full((cfg.importance_repeats, len(fs)), np.nan))[:, sub] = (
                    sc
                )
    base = ev.auc(y[mask], oof.logit[mask])
    cols = list(perm)
    stacked = np.stack([perm[c][:, mask] for c in cols])  # (columns, repeats, items)
    ym = y[mask]
    # the AUC of every shuffled copy at once (evaluation's vectorized Mann-Whitney AUC)
    aucs = ev._auc_mwu(stacked[..., ym == 1], stacked[..., ym == 0], axis=-1)
    return pd.Series(base - aucs.mean(axis=1), index=cols)


# --------------------------------------------------------------------------- explanations in words


def _describe(term: str) -> tuple[str, str, str, str, str]:
    """(feature group, readable phrase, unit, 'higher' words, 'lower' words) of a raw column."""
    group, _, feat = term.partition(SEP)
    if group in GROUPS:
        return (group, *GROUPS[group].describe(feat))
    return group, term, "", "", ""


def _fmt(v: float, other: float | None = None) -> str:
    """3 significant digits (thousands separated), more when needed to tell ``v`` from ``other``."""
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    for digits in range(3, 7):
        text = f"{v:.{digits}g}"
        if other is None or text != f"{other:.{digits}g}":
            return text
    return text


def explain_term(fs: FeatureSet, term: str, *, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Direction, class means and a sentence for one model term or raw column."""
    y = fs.labels if labels is None else labels
    member, nonmember = y == 1, y == 0
    if ":" in term and term.split(":", 1)[0] in fs.frame.columns:  # a TF-IDF n-gram
        col, gram = term.split(":", 1)
        n = len(gram.split())
        cv = CountVectorizer(vocabulary=[gram], ngram_range=(n, n), binary=True)
        has = cv.fit_transform(fs.frame[col].astype(str)).toarray()[:, 0].astype(bool)
        mv, nv = float(has[member].mean()), float(has[nonmember].mean())
        group = col.partition(SEP)[0]
        who = "members'" if mv >= nv else "non-members'"
        sentence = f"{who} transcripts contain '{gram}' more often ({max(mv, nv):.0%} vs {min(mv, nv):.0%} of transcripts)"
        return _row(group, term, mv, nv, sentence)
    if "=" in term and term.split("=", 1)[0] in fs.frame.columns:  # a one-hot category
        col, value = term.split("=", 1)
        is_v = fs.frame[col].astype(str).to_numpy() == value
        mv, nv = float(is_v[member].mean()), float(is_v[nonmember].mean())
        group, phrase, *_ = _describe(col)
        sentence = f"{phrase} {value}: {mv:.0%} of members vs {nv:.0%} of non-members"
        return _row(group, term, mv, nv, sentence)
    group, phrase, unit, hi, lo = _describe(term)
    col = fs.frame[term]
    if col.dtype == object:  # a whole text or categorical column (tree permutation importance)
        return _row(
            group,
            term,
            None,
            None,
            f"the {phrase} separates them (shuffling it lowers the held-out AUC)",
        )
    mv, nv = float(np.nanmean(col[member])), float(np.nanmean(col[nonmember]))
    unit_s = f" {unit}" if unit else ""
    if np.isclose(mv, nv):
        return _row(
            group,
            term,
            mv,
            nv,
            f"{phrase}: equal class means ({_fmt(mv)}{unit_s}); it acts through its spread",
        )
    lower = nv < mv
    how = lo if lower else hi
    lead = f"non-members {how}: " if how else "non-members have "
    sentence = f"{lead}{'lower' if lower else 'higher'} {phrase} (mean {_fmt(nv, mv)} vs {_fmt(mv, nv)}{unit_s} for members)"
    return _row(group, term, mv, nv, sentence)


def _row(
    group: str, term: str, mv: float | None, nv: float | None, sentence: str
) -> dict[str, Any]:
    direction = (
        ""
        if mv is None or nv is None
        else "members higher"
        if mv > nv
        else "non-members higher"
        if nv > mv
        else "equal"
    )
    return {
        "feature": term,
        "feature_group": group,
        "direction": direction,
        "member_value": mv,
        "nonmember_value": nv,
        "sentence": sentence,
    }


def explain(fs: FeatureSet, importance: pd.Series, classifier: str, top: int) -> pd.DataFrame:
    """The ``top`` terms by importance, each with class means and a sentence."""
    # constant columns and terms the model gave (numerically) no weight explain nothing
    varying = [
        t
        for t in importance.index
        if t not in fs.frame or fs.frame[t].dtype == object or fs.frame[t].nunique() > 1
    ]
    importance = importance.loc[varying]
    if classifier == "logistic":
        order = (
            importance[importance.abs() > 1e-9].abs().sort_values(ascending=False, kind="stable")
        )
        kind = "std_coef"
    else:
        order = importance[importance > 1e-9].sort_values(ascending=False, kind="stable")
        kind = "permutation_auc_drop"
    rows = []
    for rank, term in enumerate(order.index[:top], start=1):
        rows.append(
            {
                "rank": rank,
                "importance": float(importance[term]),
                "importance_kind": kind,
                **explain_term(fs, term),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the whole blind CV


@dataclass
class BlindResult:
    """Out-of-fold predictions, metrics and explanations of one blind CV."""

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    explanations: pd.DataFrame
    null: pd.DataFrame  # run, group, classifier, auc: the label-shuffled refits of every check

    def verdict(self, cfg: Any, *, what: str = "members and non-members") -> Any:
        """The blind verdict (:func:`lalm_audit.verdicts.shift_verdict`) under the ``verdicts`` config."""
        return verdicts.shift_verdict(self.metrics, self.null, cfg, what=what)

    def scores(self, group: str = COMBINED, classifier: str = "stronger") -> pd.DataFrame:
        """``item_id``, ``label``, ``prob``, ``logit`` of one group (``'stronger'``: the reported classifier)."""
        if classifier == "stronger":
            m = self.metrics
            won = m[(m["group"] == group) & (m["control"] == BLIND) & m["stronger"]]
            classifier = str(won["classifier"].iloc[0])
        p = self.predictions
        return p[(p["group"] == group) & (p["classifier"] == classifier)].reset_index(drop=True)


def _run_task(
    fs: FeatureSet,
    group: str,
    classifier: str,
    cfg: BlindConfig,
    run: int,
    folds: np.ndarray,
    seed: int,
    keep: bool,
    grouping: np.ndarray | None = None,
) -> tuple[str, str, int, np.ndarray, OOF]:
    """One CV: ``run`` -1 is the real one, 0.. are permutation shuffles.

    Tasks are the unit of parallelism, so each runs its BLAS/OpenMP on one
    thread: nested threads on small folds only oversubscribe the cores.
    """
    with threadpool_limits(1):
        if run < 0:
            y, f = fs.labels, folds
        else:  # the null: shuffled labels (by group where classes are group-pure), folds re-stratified on them
            y, f = null_labels_and_folds(fs, cfg, grouping, seed, run)
        oof = oof_scores(
            fs, group, classifier, cfg, labels=y, folds=f, seed=seed, keep_models=keep and run < 0
        )
        return group, classifier, run, y, oof


def null_labels_and_folds(
    fs: FeatureSet, cfg: BlindConfig, grouping: np.ndarray | None, seed: int, run: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``run`` of the permutation null: the same labels and folds for every check.

    The fold grouping is recomputed from the shuffled labels, as the real CV computed it from
    the real ones: which transcripts both classes share depends on the labels, and reusing the
    observed grouping gave the real run an edge no shuffle had (on a null world of repeated
    transcripts 72% of the p-values fell below 0.5; benchmarks/bench_calibration.py).
    """
    y = permute_labels(
        fs.labels, grouping, np.random.default_rng(derive_seed(seed, "shuffle", run))
    )
    groups = fold_grouping(fs.with_labels(y), cfg).groups
    return y, stratified_folds(y, cfg.folds, derive_seed(seed, "folds", run), groups)


def _explain_task(
    fs: FeatureSet,
    group: str,
    classifier: str,
    oof: OOF,
    cfg: BlindConfig,
    seed: int,
    items: np.ndarray | None,
    top: int,
) -> pd.DataFrame:
    with threadpool_limits(1):
        imp = importance(fs, oof, classifier, cfg, seed=seed, items=items)
    return explain(fs, imp, classifier, top).assign(group=group, classifier=classifier)


def checks_of(
    groups: Sequence[str], classifiers: Sequence[str], cfg: BlindConfig
) -> list[tuple[str, str]]:
    """The (group, classifier) checks a blind CV runs: trees only on ``cfg.gbt_groups``."""
    trees = set(cfg.gbt_groups)
    return [
        (g, c) for g in groups for c in classifiers if c != "gbt" or "all" in trees or g in trees
    ]


def cross_validate(
    fs: FeatureSet,
    cfg: BlindConfig,
    evaluation: EvaluationConfig,
    *,
    seed: int,
    dataset: str = "",
    groups: Sequence[str] | None = None,
    classifiers: Sequence[str] | None = None,
    control: bool | None = None,
    explain_top: int | None = None,
    n_jobs: int = 1,
) -> BlindResult:
    """The blind CV of a feature set: every check, its permutation null, explanations.

    Same inputs + seed = same outputs, whatever ``n_jobs``. ``groups`` /
    ``classifiers`` default to all of ``fs`` / ``cfg.classifiers`` (trees only
    on ``cfg.gbt_groups``); ``control`` to ``cfg.permutation_control.enabled``;
    ``explain_top`` to ``cfg.top_features`` (0: no explanations). Folds follow
    :func:`fold_grouping` (speakers, shared transcripts). The permutation null
    refits *every* check on each of ``permutation_control.shuffles`` label
    shuffles (the same shuffle for all checks, so that the family-wise test of
    :func:`lalm_audit.verdicts.shift_verdict` can take the maximum over
    checks); ``BlindResult.null`` holds those AUCs. With speaker grouping, the
    item-level AUC (folds ignoring speakers) is reported beside
    (``auc_item_level``). To re-run on a subset of items with a new seed:
    ``cross_validate(fs.subset(ids), cfg, evaluation, seed=s)``.
    """
    groups = list(fs.groups) if groups is None else list(groups)
    if cfg.combined and len(groups) > 1 and COMBINED not in groups:
        groups.append(COMBINED)
    classifiers = list(cfg.classifiers if classifiers is None else classifiers)
    checks = checks_of(groups, classifiers, cfg)
    control = cfg.permutation_control.enabled if control is None else control
    top = cfg.top_features if explain_top is None else explain_top
    shuffles = cfg.permutation_control.shuffles if control else 0
    grouping = fold_grouping(fs, cfg)
    folds = stratified_folds(fs.labels, cfg.folds, derive_seed(seed, "folds"), grouping.groups)
    n_folds = int(folds.max()) + 1
    log.info("%s: blind CV of %d items (%s): %d checks, %d folds; permutation null: %d shuffles",
             dataset or "features", len(fs), grouping.description, len(checks), n_folds, shuffles)  # fmt: skip
    eval_kw = {
        "n_resamples": evaluation.bootstrap,
        "confidence": evaluation.confidence,
        "fprs": evaluation.fpr_targets,
    }

    # 1) the real CVs (fold models kept for the explanations), and item-level twins under speaker grouping
    item_level = None
    if grouping.by_speaker:
        txt = text_groups(fs) if cfg.group_same_text else None
        item_level = stratified_folds(fs.labels, cfg.folds, derive_seed(seed, "folds", "item"), txt)
    jobs = [delayed(_run_task)(fs, g, c, cfg, -1, folds, seed, top > 0) for g, c in checks]
    if item_level is not None:
        jobs += [delayed(_run_task)(fs, g, c, cfg, -1, item_level, seed, False) for g, c in checks]
    results = Parallel(n_jobs=n_jobs)(jobs)
    item_auc = {(g, c): ev.auc(y, oof.logit) for g, c, _, y, oof in results[len(checks) :]}
    preds, real, evals = [], {}, {}
    for g, c, _, y, oof in results[: len(checks)]:
        evals[(g, c)] = ev.evaluate(
            y, oof.logit, seed=derive_seed(seed, "bootstrap", g, c, -1), **eval_kw
        )
        real[(g, c)] = oof
        preds.append(pd.DataFrame({
            "item_id": fs.item_ids, "label": y.astype(np.int8), "group": g, "classifier": c,
            "fold": oof.fold.astype(np.int16), "prob": 1.0 / (1.0 + np.exp(-oof.logit)), "logit": oof.logit,
        }))  # fmt: skip
    stronger = {
        g: pick_stronger(
            fs.labels,
            {c: real[(g, c)].logit for gg, c in checks if gg == g},
            evaluation,
            seed=seed,
        )
        for g in groups
    }

    # 2) the permutation null (every check, same shuffles) and the explanations, in one parallel pass
    items = None
    if len(fs) > cfg.importance_max_items:  # tree importance on a seeded subset of held-out items
        items = np.zeros(len(fs), bool)
        items[
            np.random.default_rng(derive_seed(seed, "importance-items")).permutation(len(fs))[
                : cfg.importance_max_items
            ]
        ] = True
    todo = [(g, c) for g, c in real if top > 0 and (c == "logistic" or stronger[g] == c)]
    jobs = [
        delayed(_run_task)(fs, g, c, cfg, r, folds, seed, False, grouping.groups)
        for r in range(shuffles)
        for g, c in checks
    ]
    jobs += [delayed(_explain_task)(fs, g, c, real[(g, c)], cfg, seed, items, top) for g, c in todo]
    out = Parallel(n_jobs=n_jobs)(jobs)
    null_rows = []
    null_tpr: dict[tuple[str, str], list[dict[float, float]]] = {}
    for g, c, run, y, oof in out[: len(checks) * shuffles]:
        null_rows.append({"run": run, "group": g, "classifier": c, "auc": ev.auc(y, oof.logit)})
        null_tpr.setdefault((g, c), []).append(ev.tpr_at_fpr(y, oof.logit, evaluation.fpr_targets))
    null = pd.DataFrame(null_rows, columns=["run", "group", "classifier", "auc"])
    metrics = []
    for g, c in checks:
        e = evals[(g, c)]
        row = _metric_row(dataset, fs, g, c, BLIND, e, n_folds, shuffles)
        nul = null.loc[(null["group"] == g) & (null["classifier"] == c), "auc"].to_numpy()
        row["auc_item_level"] = item_auc.get((g, c), e.auc)
        row["p_perm"] = _perm_p(e.auc, nul)
        row["null_mean"] = float(nul.mean()) if nul.size else np.nan
        row["null_sd"] = float(nul.std(ddof=1)) if nul.size > 1 else np.nan
        metrics.append(row)
        if nul.size:  # the null as a row of its own: mean AUC, the central interval of the shuffles
            lo, hi = np.quantile(
                nul, [(1 - evaluation.confidence) / 2, (1 + evaluation.confidence) / 2]
            )
            tprs = null_tpr[(g, c)]
            ctl = ev.ScoreEval(
                float(nul.mean()), float(lo), float(hi),
                {f: float(np.mean([t[f] for t in tprs])) for f in evaluation.fpr_targets},
                e.n_members, e.n_nonmembers,
            )  # fmt: skip
            crow = _metric_row(dataset, fs, g, c, PERMUTATION, ctl, n_folds, shuffles)
            crow.update(auc_sd=row["null_sd"], auc_item_level=np.nan, p_perm=np.nan,
                        null_mean=row["null_mean"], null_sd=row["null_sd"])  # fmt: skip
            metrics.append(crow)
    mdf = pd.DataFrame(metrics)
    if "auc_sd" not in mdf:
        mdf["auc_sd"] = np.nan
    mdf.loc[mdf["control"] == BLIND, "auc_sd"] = np.nan
    mdf["stronger"] = [
        stronger[g] == c for g, c in zip(mdf["group"], mdf["classifier"], strict=True)
    ]
    mdf["fold_grouping"] = grouping.description
    order = {g: i for i, g in enumerate(groups)}
    mdf = mdf.assign(_g=mdf["group"].map(order), _c=mdf["control"].map({BLIND: 0, PERMUTATION: 1}))
    mdf = (
        mdf.sort_values(["_g", "_c"], kind="stable")
        .drop(columns=["_g", "_c"])
        .reset_index(drop=True)
    )
    mdf = mdf[list(BLIND_METRICS.columns) + [c for c in mdf.columns if c.startswith("tpr_at_")]]

    expl = [e for e in out[len(checks) * shuffles :] if len(e)]
    edf = (
        pd.concat(expl, ignore_index=True).assign(dataset=dataset)[list(BLIND_EXPLANATIONS.columns)]
        if expl
        else pd.DataFrame({c: pd.Series(dtype=object) for c in BLIND_EXPLANATIONS.columns})
    )
    edf["rank"] = edf["rank"].astype(np.int16)
    pdf = pd.concat(preds, ignore_index=True)[list(BLIND_PREDICTIONS.columns)]
    return BlindResult(pdf, mdf, edf, null)


def _perm_p(observed: float, null: np.ndarray) -> float:
    return verdicts.permutation_p(observed, null) if null.size else float("nan")


def pick_stronger(
    labels: np.ndarray,
    logits: dict[str, np.ndarray],
    evaluation: EvaluationConfig,
    *,
    seed: int = 0,
) -> str:
    """The classifier reported for a group: logistic regression (the paper's choice) unless another
    classifier's AUC is significantly higher on the same items.

    Significance: paired stratified bootstrap of the AUC difference
    (``evaluation.paired_auc_difference``), two-sided p below
    ``1 - evaluation.confidence``. Without the test, the max of two noisy AUCs
    would pick the trees by chance on a dataset with no shift, and report the
    noisier classifier there.
    """
    names = list(logits)
    base = "logistic" if "logistic" in logits else names[0]
    best, best_auc = base, ev.auc(labels, logits[base])
    for name in names:
        if name == base:
            continue
        cmp = ev.paired_auc_difference(
            labels, logits[name], logits[base], n_resamples=evaluation.bootstrap,
            confidence=evaluation.confidence, seed=derive_seed(seed, "stronger", name),
        )  # fmt: skip
        if cmp.diff > 0 and cmp.p_value < 1 - evaluation.confidence and cmp.auc_a > best_auc:
            best, best_auc = name, cmp.auc_a
    return best


def _metric_row(
    dataset: str,
    fs: FeatureSet,
    group: str,
    clf: str,
    control: str,
    e: ev.ScoreEval,
    folds: int,
    shuffles: int,
) -> dict[str, Any]:
    failed = (
        np.any([fs.failed[g] for g in fs.groups], axis=0)
        if group == COMBINED and fs.failed
        else fs.failed.get(group, np.zeros(len(fs), bool))
    )
    cols = group_columns(fs, group)
    return {
        "dataset": dataset, "group": group, "classifier": clf, "control": control,
        **e.as_row(), "n_failed": int(np.sum(failed)), "n_features": len(cols.all),
        "folds": folds, "shuffles": shuffles,
    }  # fmt: skip


# --------------------------------------------------------------------------- the workflow stage


def summary_markdown(
    dataset: str, res: BlindResult, evaluation: EvaluationConfig, verdict_cfg: Any, *, seed: int
) -> str:
    """A short Markdown report: AUC table, permutation null, the verdict, and what separates the classes."""
    from lalm_audit.render.tables import tpr_cell

    m = res.metrics
    blind = m[m["control"] == BLIND]
    verdict = res.verdict(verdict_cfg)
    pct = f"{evaluation.confidence:.0%}"
    first = blind.iloc[0]
    tpr_col = (
        ev.tpr_column(0.01)
        if ev.tpr_column(0.01) in m.columns
        else ev.tpr_column(evaluation.fpr_targets[0])
    )
    by_speaker = bool((blind["auc_item_level"] != blind["auc"]).any()) or "speaker" in str(
        first["fold_grouping"]
    )
    tpr_fpr = 0.01 if tpr_col == ev.tpr_column(0.01) else evaluation.fpr_targets[0]
    lines = [
        f"# Blind baseline: {dataset}",
        "",
        f"{first['n_members']} members, {first['n_nonmembers']} non-members; {first['folds']}-fold CV, "
        f"{first['fold_grouping']} (seed {seed}). No model was run: every number below comes from "
        f"features of the samples alone. AUC with the {pct} stratified bootstrap CI of the out-of-fold "
        f"scores; the verdict comes from {int(first['shuffles'])} label-shuffled refits of every check "
        "(the permutation null, which includes the refit variance the bootstrap misses).",
        "",
        f"| group | classifier | AUC [{pct} CI] |"
        + (" item-level AUC |" if by_speaker else "")
        + f" permutation null AUC (mean +- sd) | p (this check) | {tpr_col.replace('_', ' ')} | failed items |",
        "|---|---|---|" + ("---|" if by_speaker else "") + "---|---|---|---|",
    ]
    for _, r in blind.iterrows():
        null = f"{r['null_mean']:.3f} +- {r['null_sd']:.3f}" if pd.notna(r["null_sd"]) else "-"
        p = f"{r['p_perm']:.2g}" if pd.notna(r["p_perm"]) else "-"
        item = f" {r['auc_item_level']:.3f} |" if by_speaker else ""
        lines.append(
            f"| {r['group']} | {r['classifier']} | {r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] |{item} "
            f"{null} | {p} | {tpr_cell(r, tpr_fpr)} | {r['n_failed']} |"
        )
    lines += ["", f"**Verdict: {verdict.sentence}.**", ""]
    if verdict.state == verdicts.SHIFTED:
        lines.append(
            "A membership attack on this split can score by detecting this shift; audit it on a clean split."
        )
    if by_speaker:
        item_max = float(blind["auc_item_level"].max())
        if verdict.state != verdicts.SHIFTED and item_max > verdict.auc + 0.05:
            lines.append(
                f"Speaker-level: members' speakers are not recognizably different; the item-level CV "
                f"(folds that ignore speakers) reads up to AUC {item_max:.3f} because a classifier can "
                "recognize the voices it trained on, which is not a shift between the classes."
            )
        else:
            lines.append(
                "Speaker-level CV: no fold holds a speaker the classifier trained on (item-level AUCs beside)."
            )
    lines.append(
        f"Rule: lalm_audit.verdicts (alpha {verdict.alpha:g}, margin {verdict.margin:g}, "
        f"{verdict.checks} checks, family-wise permutation test over {verdict.shuffles} shuffles)."
    )
    ex = res.explanations
    strong = blind[blind["stronger"]]
    if len(ex):
        heading = (
            "What separates them"
            if verdict.state == verdicts.SHIFTED
            else "What the classifiers leaned on (no detected shift: read as noise)"
        )
        lines += ["", f"## {heading}", ""]
        for g in [
            *[x for x in strong["group"] if x == COMBINED],
            *[x for x in strong["group"] if x != COMBINED],
        ]:
            row = strong[strong["group"] == g].iloc[0]
            sub = ex[(ex["group"] == g) & (ex["classifier"] == row["classifier"])].sort_values(
                "rank"
            )
            if not len(sub):
                continue
            lines.append(f"- **{g}** ({row['classifier']}, AUC {row['auc']:.3f}):")
            lines += [f"  - {s}" for s in sub["sentence"].head(3)]
    return "\n".join(lines) + "\n"


def run_blind(
    cfg: Config,
    dataset: str,
    *,
    results: str | Path = RESULTS,
    manifest: str | Path | None = None,
    workers: int = 1,
) -> BlindResult:
    """The blind stage for one dataset: read its features, cross-validate, write the four outputs.

    Outputs (``Layout(results).blind(dataset, ...)``, i.e. ``results/blind/<dataset>/``):
    ``predictions.parquet``, ``metrics.parquet``, ``explanations.parquet``, ``null.parquet`` (the
    permutation null), ``verdict.json`` (:func:`lalm_audit.verdicts.shift_verdict`), ``summary.md``.
    """
    if cfg.datasets[dataset].role != "audit":
        raise DatasetError(
            dataset,
            "is a train_pool dataset (no members and non-members to tell apart)",
            "run the blind stage on an audit dataset",
        )
    fs = load_features(dataset, cfg.features.groups, results=results, manifest=manifest)
    res = cross_validate(
        fs, cfg.blind, cfg.evaluation, seed=cfg.seed, dataset=dataset, n_jobs=workers
    )
    lay = Layout(str(results))
    prov = io.provenance("blind", cfg, dataset=dataset)
    io.write_table(
        res.predictions, lay.blind(dataset, "predictions.parquet"), schema=BLIND_PREDICTIONS,
        prov=prov,
    )  # fmt: skip
    io.write_table(
        res.metrics, lay.blind(dataset, "metrics.parquet"), schema=BLIND_METRICS, prov=prov
    )
    io.write_table(
        res.explanations, lay.blind(dataset, "explanations.parquet"), schema=BLIND_EXPLANATIONS,
        prov=prov,
    )  # fmt: skip
    io.write_table(res.null, lay.blind(dataset, "null.parquet"), schema=BLIND_NULL, prov=prov)
    verdict = res.verdict(cfg.verdicts)
    io.write_json({**verdict.as_dict(), "provenance": prov}, lay.blind(dataset, "verdict.json"))
    io.write_text(
        summary_markdown(dataset, res, cfg.evaluation, cfg.verdicts, seed=cfg.seed),
        lay.blind(dataset, "summary.md"),
    )
    log.info("%s: %s", dataset, verdict.sentence)
    for _, r in res.metrics[res.metrics["stronger"]].iterrows():
        log.info(
            "%s %s %s (%s): AUC %.3f [%.3f, %.3f]",
            dataset, r["control"], r["group"], r["classifier"], r["auc"], r["auc_lo"], r["auc_hi"],
        )  # fmt: skip
    return res


def load_blind(dataset: str, results: str | Path = RESULTS) -> BlindResult:
    """A dataset's blind outputs as written by :func:`run_blind` (e.g. ``load_blind(ds).scores()``)."""
    lay = Layout(str(results))
    return BlindResult(
        io.read_table(lay.blind(dataset, "predictions.parquet")),
        io.read_table(lay.blind(dataset, "metrics.parquet")),
        io.read_table(lay.blind(dataset, "explanations.parquet")),
        io.read_table(lay.blind(dataset, "null.parquet")),
    )
