"""Every verdict's rule, on constructed data whose answer is known (lalm_audit.verdicts).

Several tests reproduce a defect of the earlier rules (named in each docstring) and assert
both that the old rule fires on the constructed data and that the new verdict does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lalm_audit import verdicts
from lalm_audit.blind import cross_validate, summary_markdown
from lalm_audit.config import BlindConfig, EvaluationConfig, VerdictsConfig
from lalm_audit.features import feature_set

EVAL = EvaluationConfig(bootstrap=200)
RULE = VerdictsConfig()
BLIND = BlindConfig(folds=5, gbt={"max_iter": 15, "max_bins": 16}, top_features=1)


def _tables(metrics_auc: dict[str, float], null: np.ndarray, n: int = 100):
    """Metrics rows for checks 'g/c' and a null table (runs x checks)."""
    m = pd.DataFrame([
        {"group": k.split("/")[0], "classifier": k.split("/")[1], "control": "blind", "auc": a,
         "n_members": n, "n_nonmembers": n}
        for k, a in metrics_auc.items()
    ])  # fmt: skip
    rows = [
        {"run": r, "group": k.split("/")[0], "classifier": k.split("/")[1], "auc": null[r, j]}
        for r in range(null.shape[0])
        for j, k in enumerate(metrics_auc)
    ]
    return m, pd.DataFrame(rows)


def test_permutation_p_counts_ties_and_is_never_zero():
    assert verdicts.permutation_p(0.9, np.array([0.5, 0.6, 0.7])) == pytest.approx(1 / 4)
    assert verdicts.permutation_p(0.6, np.array([0.5, 0.6, 0.7])) == pytest.approx(3 / 4)


def test_shift_verdict_states_on_hand_built_nulls():
    rng = np.random.default_rng(0)
    null = 0.5 + 0.01 * rng.standard_normal((19, 2))  # a large set: the null spread is 0.01
    # far above every shuffle's max: shifted, with the smallest p 19 shuffles can give
    m, n = _tables({"a/logistic": 0.70, "b/logistic": 0.51}, null, n=2000)
    v = verdicts.shift_verdict(m, n, RULE)
    assert v.state == "shifted" and v.p_value == pytest.approx(0.05) and v.worst == "a/logistic"
    # inside the null, and every upper bound far below 0.6: clean
    m, n = _tables({"a/logistic": 0.505, "b/logistic": 0.49}, null, n=2000)
    v = verdicts.shift_verdict(m, n, RULE)
    assert v.state == "clean" and v.auc_ucb < 0.55 and v.sentence.startswith("clean")
    # the same AUCs with a null spread of 0.06 (a small set): nothing certified, nothing found
    wide = 0.5 + 0.06 * rng.standard_normal((19, 2))
    m, n = _tables({"a/logistic": 0.505, "b/logistic": 0.49}, wide, n=60)
    v = verdicts.shift_verdict(m, n, RULE)
    assert v.state == "inconclusive" and v.auc_ucb > 0.6
    assert "items per class would certify" in v.sentence and v.items_to_certify > 60
    assert 0.6 < v.detectable_auc < 0.9


def test_a_shift_at_the_margin_is_never_certified_clean():
    """'Clean' meant 'not significantly shifted': a residual blind AUC of 0.60 passed the old
    verification 57% of the time at 100 items per class. The margin is now tested for equivalence."""
    rng = np.random.default_rng(1)
    null = 0.5 + 0.04 * rng.standard_normal((19, 3))  # about 100 items per class
    m, n = _tables({"a/logistic": 0.60, "b/logistic": 0.50, "c/gbt": 0.55}, null)
    v = verdicts.shift_verdict(m, n, RULE)
    assert v.state != "clean" and v.auc_ucb > 0.6 + 0.05


def _null_world(n: int, seed: int, speakers: int | None = None, speaker_effect: float = 0.0):
    """No shift: labels independent of the features (optionally speaker-clustered features)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([1, 0], n // 2))
    ids = [f"i{k:05d}" for k in range(n)]
    man = pd.DataFrame({"item_id": ids, "label": y})
    effect = np.zeros((n, 8))
    if speakers:
        # speaker-disjoint classes drawn from one population: speakers 0..s/2-1 members only
        spk = np.where(
            y == 1, rng.integers(0, speakers // 2, n), rng.integers(speakers // 2, speakers, n)
        )
        man["speaker_id"] = [f"spk{s:03d}" for s in spk]
        effect = speaker_effect * rng.standard_normal((speakers, 8))[spk]

    def group(k: int, eff: np.ndarray | None = None) -> pd.DataFrame:
        x = rng.standard_normal((n, k)) + (0 if eff is None else eff)
        return pd.DataFrame(
            {"item_id": ids, "feature_error": None, **{f"x{j}": x[:, j] for j in range(k)}}
        )

    return feature_set(man, {"spectral": group(8, effect), "prosodic": group(6)}, dataset="null")


@pytest.mark.slow
def test_random_labels_on_a_corpus_of_3000_items_are_never_called_separable():
    """Random labels, 3,000 items: the old summary rule (any group's bootstrap CI above 0.5)
    fired on 17.5% of relabellings; the permutation verdict keeps its nominal rate."""
    fs = _null_world(3000, seed=11)
    res = cross_validate(fs, BLIND, EVAL, seed=11)
    v = res.verdict(RULE)
    assert v.state != "shifted" and v.p_value > 0.1, v.sentence
    # at this size a shift of 0.6 would be seen: the verdict is not 'inconclusive for lack of items'
    assert v.detectable_auc < 0.56
    md = summary_markdown("null", res, EVAL, RULE, seed=11)
    assert "separable without any model" not in md


def test_speaker_disjoint_classes_from_one_population_are_not_a_shift():
    """Classes with disjoint speakers drawn from one population: item-level CV learns the voices
    (0.68 in the issue's example) while grouping by speaker reads about 0.5."""
    fs = _null_world(400, seed=3, speakers=40, speaker_effect=1.5)
    res = cross_validate(fs, BLIND, EVAL, seed=3)
    m = res.metrics.query("control == 'blind'").set_index(["group", "classifier"])
    spec = m.loc[("spectral", "logistic")]
    assert spec["auc_item_level"] > 0.62 and spec["auc"] < spec["auc_item_level"] - 0.08
    assert "speaker" in spec["fold_grouping"]
    v = res.verdict(RULE)
    assert v.state != "shifted", v.sentence
    md = summary_markdown("spk", res, EVAL, RULE, seed=3)
    assert "members' speakers are not recognizably different" in md
    # the null shuffles whole speakers (the classes are speaker-pure): every run keeps speakers pure
    assert (res.null.groupby("run").size() == len(m)).all()


def test_a_vocabulary_that_differs_by_class_is_seen_even_when_transcripts_repeat():
    """A closed vocabulary split by class (each transcript in one class only, repeated): grouping
    every repeated transcript put all its copies in one fold, so the text group read 0.16/0.00."""
    rng = np.random.default_rng(4)
    n = 160
    y = np.repeat([1, 0], n // 2)
    words_m, words_n = ["alpha", "bravo", "charlie", "delta"], ["echo", "foxtrot", "golf", "hotel"]
    text = [
        " ".join(rng.choice(words_m if lab else words_n, 2, replace=False)) for lab in y
    ]  # 12 transcripts per class, each repeated about 7 times, none shared
    ids = [f"v{k:04d}" for k in range(n)]
    tab = pd.DataFrame({"item_id": ids, "feature_error": None, "transcript": text,
                        "words": rng.normal(size=n)})  # fmt: skip
    fs = feature_set(pd.DataFrame({"item_id": ids, "label": y}), {"text": tab}, dataset="vocab")
    res = cross_validate(fs, BLIND, EVAL, seed=4)
    m = res.metrics.query("control == 'blind'").set_index(["group", "classifier"])
    assert m.loc[("text", "logistic"), "auc"] > 0.95
    assert res.verdict(RULE).state == "shifted"


def test_correlation_verdict_uses_the_gain_and_says_not_identifiable():
    """On a confounded split a genuine signal (adjusted CI [0.500, 0.606], gain p = 0.02) was
    called 'SPURIOUS: explained by the blind artifacts'; the gain test never entered a verdict."""
    row = {"auc": 0.8, "auc_lo": 0.72, "auc_hi": 0.87, "pearson_r": 0.6, "adjusted_auc": 0.553,
           "adjusted_lo": 0.500, "adjusted_hi": 0.606, "gain": 0.05, "gain_p": 0.02, "confounded": True}  # fmt: skip
    v = verdicts.correlation_verdict(row)
    assert v.startswith("NOT IDENTIFIABLE") and not verdicts.is_membership_signal(v)
    # nothing beyond the artifacts: spurious; on a clean split both tests agreeing: a signal
    assert verdicts.correlation_verdict({**row, "gain_p": 0.4}).startswith("SPURIOUS")
    clean = {**row, "confounded": False, "adjusted_lo": 0.55}
    assert verdicts.is_membership_signal(verdicts.correlation_verdict(clean))
    assert verdicts.correlation_verdict({**clean, "gain_p": 0.3}).startswith("NOT IDENTIFIABLE")
    # a learned score reads its permutation p-value, never its bootstrap CI
    assert verdicts.correlation_verdict({**clean, "p_perm": 0.3}).startswith("no signal")
    assert verdicts.correlation_verdict({**row, "auc_lo": 0.3, "auc_hi": 0.45}).startswith(
        "below chance"
    )


def test_learned_signal_verdict_is_one_sided():
    null = np.linspace(0.40, 0.60, 19)
    assert verdicts.learned_signal_verdict(0.75, null, RULE).state == "signal"
    # far below chance: anti-learning, not a signal
    assert verdicts.learned_signal_verdict(0.30, null, RULE).state == "no signal"


def test_the_audit_wide_line_counts_signals_and_applies_holm_over_the_audit():
    # 24 tests at 99 shuffles: one fires at p = 0.01 alone; Holm needs 0.05 / 24 = 0.002 -> none kept
    p = np.r_[0.01, np.full(23, 0.4)]
    line = verdicts.audit_wide_line(p, p <= 0.05, alpha=0.05, shuffles=99)
    assert "1 of 24 aggregate tests read 'signal'" in line
    assert "about 1.2 would by chance" in line and "keeps 0" in line
    assert "needs verdicts.aggregate_shuffles >= 479" in line
    # enough shuffles and strong p-values: Holm keeps the strong ones, and no shuffle advice
    p2 = np.r_[np.full(3, 1 / 1000), np.full(5, 0.5), np.nan]
    line2 = verdicts.audit_wide_line(p2, p2 <= 0.05, alpha=0.05, shuffles=999)
    assert "3 of 8 aggregate tests" in line2 and "keeps 3." in line2 and "shuffles" not in line2
    assert verdicts.audit_wide_line([np.nan], [False], 0.05, 19).startswith("No aggregate")
