"""The column contract of every Parquet artifact lalm-audit writes.

``io.write_table`` checks a frame against its contract before writing, so a
stage can never hand the next one a table with a missing or mistyped column.
Extra columns are allowed only where a contract says so (``meta_*`` in manifests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class TableSchema:
    """Required columns (name -> Arrow type) and which extra columns may appear."""

    name: str
    columns: dict[str, pa.DataType]
    nullable: frozenset[str] = frozenset()
    extra_prefixes: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # columns whose combination must be unique
    doc: dict[str, str] = field(default_factory=dict)

    def arrow_schema(self, df: pd.DataFrame) -> pa.Schema:
        fields = [pa.field(c, t, nullable=c in self.nullable) for c, t in self.columns.items()]
        for c in df.columns:
            if c not in self.columns:
                fields.append(
                    pa.field(
                        c, pa.Table.from_pandas(df[[c]], preserve_index=False).schema.field(c).type
                    )
                )
        return pa.schema(fields)

    def check(self, df: pd.DataFrame) -> None:
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ValueError(f"{self.name} table lacks required columns {missing}")
        extra = [
            c
            for c in df.columns
            if c not in self.columns and not c.startswith(self.extra_prefixes or ("\0",))
        ]
        if extra:
            raise ValueError(
                f"{self.name} table has unexpected columns {extra}; allowed extras start with {self.extra_prefixes}"
            )
        for c in self.columns:
            if c not in self.nullable and df[c].isna().any():
                raise ValueError(f"{self.name} table column {c!r} has missing values")
        if self.key and len(df) and df.duplicated(list(self.key)).any():
            dup = (
                df.loc[df.duplicated(list(self.key), keep=False), list(self.key)]
                .head(3)
                .to_dict("records")
            )
            raise ValueError(f"{self.name} table key {self.key} is not unique, e.g. {dup}")


MANIFEST = TableSchema(
    name="manifest",
    columns={
        "item_id": pa.string(),
        "dataset": pa.string(),
        "audio_path": pa.string(),
        "audio_bytes": pa.binary(),
        "audio_format": pa.string(),
        "offset_s": pa.float64(),
        "duration_s": pa.float64(),
        "source_duration_s": pa.float64(),
        "sample_rate": pa.int32(),
        "channels": pa.int16(),
        "text": pa.string(),
        "speaker_id": pa.string(),
        "label": pa.int8(),
        "source_split": pa.string(),
        "truncated": pa.bool_(),
    },
    nullable=frozenset({"audio_path", "audio_bytes"}),
    extra_prefixes=("meta_",),
    key=("item_id",),
    doc={
        "item_id": "unique id within the dataset; derived items are '<item_id>__<condition>'",
        "audio_path": "audio file (relative to the working directory when inside it); null when audio_bytes is set",
        "audio_bytes": "the encoded audio file itself (e.g. from Hugging Face Parquet shards); null when audio_path is set",
        "audio_format": "container as decoded (WAV, FLAC, OGG, MP3, ...)",
        "offset_s": "segment start within the file, seconds",
        "duration_s": "seconds of audio every stage uses (after truncation to audio.max_duration_s)",
        "source_duration_s": "seconds of the segment in the source, before any truncation",
        "sample_rate": "the source's sample rate (audio is resampled to audio.sample_rate when decoded)",
        "channels": "the source's channel count (audio is mixed to mono when decoded)",
        "label": "1 member, 0 non-member",
        "source_split": "the split of the source corpus the item came from (e.g. train-clean-100)",
        "truncated": "true when the source was longer than audio.max_duration_s and was cut (long_clip_policy=truncate)",
        "meta_*": "free metadata columns carried from the source",
    },
)

REJECTED = TableSchema(
    name="rejected",
    columns={
        "dataset": pa.string(),
        "item_id": pa.string(),
        "source": pa.string(),
        "reason_code": pa.string(),
        "reason": pa.string(),
    },
    nullable=frozenset({"item_id"}),
    doc={
        "item_id": "the item's id when one could be read",
        "source": "where the item came from (file and row, or audio path)",
        "reason_code": "machine-readable reason (see lalm_audit.manifest.REASONS)",
        "reason": "a sentence naming the problem and the fix",
    },
)

#: Per-position statistic columns of TOKEN_STATS, computed once in the stage-2 pass
#: (definitions: docs of ``lalm_audit.scoring``); every indicator is a function of these.
TOKEN_STAT_COLUMNS: dict[str, str] = {
    "logp": "l_t = log p_t(y_t), the target token's log-probability",
    "mink_mu": "mu_t = sum_v p log p (Min-K%++ mean)",
    "mink_sigma": "sigma_t = sqrt(sum_v p (log p)^2 - mu_t^2) (Min-K%++ scale)",
    "renyi_05": "Renyi entropy H_0.5 of p_t",
    "renyi_1": "Shannon entropy H_1 of p_t",
    "renyi_2": "Renyi entropy H_2 of p_t",
    "renyi_inf": "min-entropy H_inf = -log max_v p_t(v)",
    "mod_entropy": "modified entropy M_t",
    "mod_renyi_05": "modified Renyi entropy M_0.5,t",
    "mod_renyi_2": "modified Renyi entropy M_2,t",
    "prob_gap": "log p_t(top1) - log p_t(top2)",
}

GENERATIONS = TableSchema(
    name="generations",
    columns={
        "item_id": pa.string(),
        "response": pa.string(),
        "response_token_ids": pa.list_(pa.int32()),
        "prompt": pa.string(),
        "audio_window_truncated": pa.bool_(),
    },
    key=("item_id",),
    doc={
        "response": "stage 1: the model's greedy response to audio + prompt (special tokens stripped)",
        "response_token_ids": "the generated token ids (without the end-of-turn token)",
        "prompt": "the text prompt the model was given",
        "audio_window_truncated": "true when the clip was longer than the model's audio window and was cut "
        "(scoring.long_clip_policy=truncate; a warning is logged per item)",
    },
)

TOKEN_STATS = TableSchema(
    name="token_stats",
    columns={
        "item_id": pa.string(),
        "slice": pa.string(),
        "n_tokens": pa.int32(),
        "token_ids": pa.list_(pa.int32()),
        "text": pa.string(),
        **{c: pa.list_(pa.float32()) for c in TOKEN_STAT_COLUMNS},
    },
    key=("item_id", "slice"),
    doc={
        "slice": "'audio', 'prompt' or 'response': positions from token offsets of the full sequence",
        "n_tokens": "number of positions in the slice",
        "token_ids": "y_t: the next token at each position (audio positions: the model's own argmax)",
        "text": "decoded text of the slice's target tokens (empty for 'audio'); used by zlib-style indicators",
        **TOKEN_STAT_COLUMNS,
    },
)

INDICATOR_SCORES = TableSchema(
    name="indicator_scores",
    columns={
        "item_id": pa.string(),
        "label": pa.int8(),
        "slice": pa.string(),
        "indicator": pa.string(),
        "score": pa.float64(),
    },
    key=("item_id", "slice", "indicator"),
    doc={
        "slice": "audio, prompt, response or prompt+response",
        "indicator": "indicator name (lalm_audit.indicators), e.g. loss, min_k_20, renyi_2_max_k_10",
        "score": "higher = more likely a member",
    },
)

MIA_METRICS = TableSchema(
    name="mia_metrics",
    columns={
        "split": pa.string(),
        "slice": pa.string(),
        "indicator": pa.string(),
        "auc": pa.float64(),
        "auc_lo": pa.float64(),
        "auc_hi": pa.float64(),
        "n_members": pa.int64(),
        "n_nonmembers": pa.int64(),
        "p_perm": pa.float64(),
        "agg_verdict": pa.string(),
        "agg_signal": pa.bool_(),
        "mean_member": pa.float64(),
        "mean_nonmember": pa.float64(),
        "n_indicators": pa.int64(),
        "confounded": pa.bool_(),
        "blind_verdict": pa.string(),
    },
    nullable=frozenset({"p_perm", "agg_verdict"}),
    extra_prefixes=("tpr_at_", "auc_delong_"),
    key=("split", "slice", "indicator"),
    doc={
        "split": "full, or a clean split's name",
        "auc_lo": "lower bound of the stratified bootstrap CI (evaluation.confidence)",
        "auc_delong_lo": "DeLong's analytic CI of the AUC (_lo/_hi): the resampling-free cross-check of auc_lo/auc_hi",
        "tpr_at_*": "largest TPR at FPR <= the bound (e.g. tpr_at_1pct_fpr); NaN when unresolved (see _resolved)",
        "tpr_at_*_lo": "Clopper-Pearson CI of that TPR (_lo/_hi; conditional on the threshold), NaN when unresolved",
        "tpr_at_*_tp": "true positives at the operating point (of n_members); _fp: its false positives (of "
        "n_nonmembers); when unresolved, the counts of the zero-false-positive point",
        "tpr_at_*_resolved": "n_nonmembers >= 1/FPR: below that the bound admits no false positive, so no TPR at "
        "that FPR exists (tables print 'n/a (needs >= N non-members)')",
        "p_perm": "aggregate rows: permutation p-value of the aggregated attack's AUC against its CV refit on "
        "label shuffles (verdicts.aggregate_shuffles)",
        "agg_verdict": "aggregate rows: lalm_audit.verdicts.learned_signal_verdict's sentence",
        "agg_signal": "the split's aggregated attack is above chance (p_perm <= verdicts.alpha); same on every row",
        "mean_member": "mean aggregated score of the members in the split (same on every row of a split)",
        "n_indicators": "how many indicator columns fed the aggregated attack",
        "confounded": "true when the split's blind baseline is not at chance (results/splits/<dataset>/status.parquet)",
        "blind_verdict": "the clean-split stage's sentence for the split",
    },
)

AGGREGATE_SCORES = TableSchema(
    name="aggregate_scores",
    columns={
        "split": pa.string(),
        "item_id": pa.string(),
        "label": pa.int8(),
        "score": pa.float64(),
    },
    key=("split", "item_id"),
    doc={
        "score": "out-of-fold membership probability of the aggregated attack, CV within the split"
    },
)

DISENTANGLEMENT = TableSchema(
    name="disentanglement",
    columns={
        "split": pa.string(),
        "condition": pa.string(),
        "slice": pa.string(),
        "indicator": pa.string(),
        "auc": pa.float64(),
        "auc_lo": pa.float64(),
        "auc_hi": pa.float64(),
        "n_members": pa.int64(),
        "n_nonmembers": pa.int64(),
        "diff": pa.float64(),
        "diff_lo": pa.float64(),
        "diff_hi": pa.float64(),
        "p_value": pa.float64(),
        "p_holm": pa.float64(),
        "significant": pa.bool_(),
        "confounded": pa.bool_(),
        "blind_verdict": pa.string(),
    },
    nullable=frozenset({"p_value", "p_holm"}),
    extra_prefixes=("tpr_at_", "auc_delong_"),
    key=("split", "condition", "slice", "indicator"),
    doc={
        "condition": "'original' or a perturbation condition",
        "diff": "AUC(condition) - AUC(original) on the same items (paired stratified bootstrap CI)",
        "p_holm": "two-sided p of the difference, Holm-corrected across the conditions of one target",
        "significant": "p_holm < analysis.alpha",
    },
)

CORRELATION = TableSchema(
    name="correlation",
    columns={
        "split": pa.string(),
        "slice": pa.string(),
        "indicator": pa.string(),
        "blind_group": pa.string(),
        "pearson_r": pa.float64(),
        "pearson_lo": pa.float64(),
        "pearson_hi": pa.float64(),
        "spearman_r": pa.float64(),
        "spearman_lo": pa.float64(),
        "spearman_hi": pa.float64(),
        "n": pa.int64(),
    },
    # a constant score (or logit) has no correlation: r and its CI are null, never 0
    nullable=frozenset(
        {"pearson_r", "pearson_lo", "pearson_hi", "spearman_r", "spearman_lo", "spearman_hi"}
    ),
    key=("split", "slice", "indicator", "blind_group"),
    doc={
        "blind_group": "whose out-of-fold blind logit: 'combined' or a feature group (the reported classifier)",
        "pearson_r": "Pearson r of the indicator score with the blind logit (bootstrap CI in _lo/_hi)",
        "spearman_r": "Spearman rank correlation (bootstrap CI in _lo/_hi)",
    },
)

ADJUSTED_NULLABLE = ("pearson_r", "adjusted_auc", "adjusted_lo", "adjusted_hi", "blind_auc", "blind_plus_auc", "gain",
                     "gain_lo", "gain_hi", "gain_p", "p_perm")  # fmt: skip

CONFOUND_ADJUSTED = TableSchema(
    name="confound_adjusted",
    columns={
        "split": pa.string(),
        "slice": pa.string(),
        "indicator": pa.string(),
        "auc": pa.float64(),
        "auc_lo": pa.float64(),
        "auc_hi": pa.float64(),
        "pearson_r": pa.float64(),
        "adjusted_auc": pa.float64(),
        "adjusted_lo": pa.float64(),
        "adjusted_hi": pa.float64(),
        "blind_auc": pa.float64(),
        "blind_plus_auc": pa.float64(),
        "gain": pa.float64(),
        "gain_lo": pa.float64(),
        "gain_hi": pa.float64(),
        "gain_p": pa.float64(),
        "p_perm": pa.float64(),
        "n_members": pa.int64(),
        "n_nonmembers": pa.int64(),
        "verdict": pa.string(),
        "confounded": pa.bool_(),
        "blind_verdict": pa.string(),
    },
    key=("split", "slice", "indicator"),
    nullable=frozenset(ADJUSTED_NULLABLE),
    doc={
        "pearson_r": "Pearson r with the combined blind logit",
        "adjusted_auc": "AUC of the indicator after regressing the blind features out inside CV folds",
        "blind_auc": "nested-CV AUC of a logistic regression on the blind features alone",
        "blind_plus_auc": "the same with the indicator as one more feature",
        "gain": "blind_plus_auc - blind_auc (paired bootstrap CI, p-value): membership signal the shift does not explain",
        "verdict": "lalm_audit.verdicts.correlation_verdict: no signal, below chance, SPURIOUS, NOT IDENTIFIABLE, or membership signal beyond the blind artifacts",
        "confounded": "the split's blind baseline is not at chance (see the clean-split verdict)",
    },
)

FEATURES = TableSchema(
    name="features",
    columns={"item_id": pa.string(), "feature_error": pa.string()},
    nullable=frozenset({"feature_error"}),
    extra_prefixes=(
        "",
    ),  # every other column is a feature of the group (names: lalm_audit.features)
    key=("item_id",),
    doc={
        "item_id": "the manifest's item id (every manifest item has exactly one row)",
        "feature_error": "null when extraction succeeded; otherwise the reason, and the item's features are missing",
        "*": "the group's features: numbers, plus 'transcript' (text) and 'audio_format'/'subtype' (metadata) as strings",
    },
)

BLIND_PREDICTIONS = TableSchema(
    name="blind_predictions",
    columns={
        "item_id": pa.string(),
        "label": pa.int8(),
        "group": pa.string(),
        "classifier": pa.string(),
        "fold": pa.int16(),
        "prob": pa.float64(),
        "logit": pa.float64(),
    },
    key=("item_id", "group", "classifier"),
    doc={
        "group": "feature group (text, spectral, prosodic, metadata) or 'combined' (all groups in one pipeline)",
        "classifier": "'logistic' or 'gbt'",
        "fold": "the CV fold in which the item was held out",
        "prob": "out-of-fold membership probability (higher = more likely a member)",
        "logit": "out-of-fold log-odds of membership (the classifier's decision function)",
    },
)

BLIND_METRICS = TableSchema(
    name="blind_metrics",
    columns={
        "dataset": pa.string(),
        "group": pa.string(),
        "classifier": pa.string(),
        "control": pa.string(),
        "stronger": pa.bool_(),
        "auc": pa.float64(),
        "auc_lo": pa.float64(),
        "auc_hi": pa.float64(),
        "auc_sd": pa.float64(),
        "n_members": pa.int64(),
        "n_nonmembers": pa.int64(),
        "n_failed": pa.int64(),
        "n_features": pa.int64(),
        "folds": pa.int64(),
        "shuffles": pa.int64(),
        "auc_item_level": pa.float64(),
        "p_perm": pa.float64(),
        "null_mean": pa.float64(),
        "null_sd": pa.float64(),
        "fold_grouping": pa.string(),
    },
    nullable=frozenset({"auc_sd", "auc_item_level", "p_perm", "null_mean", "null_sd"}),
    extra_prefixes=("tpr_at_",),
    key=("dataset", "group", "classifier", "control"),
    doc={
        "control": "'blind' (true labels) or 'permutation' (same CV on shuffled labels; mean over shuffles)",
        "stronger": "true on the classifier reported for this group: logistic regression unless the trees' AUC "
        "is significantly higher (paired bootstrap)",
        "auc": "out-of-fold AUC (permutation: the mean over shuffles)",
        "auc_lo": "lower bound of the stratified bootstrap CI of the fixed out-of-fold scores (permutation: "
        "the lower central quantile of the shuffled refits' AUCs)",
        "auc_sd": "permutation: standard deviation of the AUC over shuffles; null for blind rows",
        "auc_item_level": "blind rows under speaker grouping: the AUC with folds that ignore speakers",
        "p_perm": "blind rows: one-sided permutation p-value of this check alone (the verdict uses the "
        "family-wise max over checks, lalm_audit.verdicts)",
        "null_mean": "mean AUC of this check over the label-shuffled refits",
        "null_sd": "standard deviation of this check's AUC over the label-shuffled refits (includes refit variance)",
        "fold_grouping": "which items the CV kept in one fold (speakers, shared transcripts)",
        "n_failed": "items whose features of this group failed to extract (their features are imputed)",
        "n_features": "input columns of the group (the transcript counts as one)",
        "tpr_at_*": "TPR at the FPR bound (evaluation.fpr_targets), NaN below 1/FPR non-members; _lo/_hi, _tp/_fp "
        "and _resolved as in mia_metrics (permutation rows: mean TPR over shuffles, no counts)",
    },
)

BLIND_NULL = TableSchema(
    name="blind_null",
    columns={
        "run": pa.int64(),
        "group": pa.string(),
        "classifier": pa.string(),
        "auc": pa.float64(),
    },
    key=("run", "group", "classifier"),
    doc={
        "run": "label shuffle (0..shuffles-1); every check is refit on the same shuffled labels",
        "auc": "out-of-fold AUC of the check refit on the shuffled labels (the permutation null)",
    },
)

BLIND_EXPLANATIONS = TableSchema(
    name="blind_explanations",
    columns={
        "dataset": pa.string(),
        "group": pa.string(),
        "classifier": pa.string(),
        "rank": pa.int16(),
        "feature": pa.string(),
        "feature_group": pa.string(),
        "importance": pa.float64(),
        "importance_kind": pa.string(),
        "direction": pa.string(),
        "member_value": pa.float64(),
        "nonmember_value": pa.float64(),
        "sentence": pa.string(),
    },
    nullable=frozenset({"member_value", "nonmember_value"}),
    key=("dataset", "group", "classifier", "rank"),
    doc={
        "feature": "input column (e.g. snr_db) or model term (e.g. transcript 'the cat', audio_format=WAV)",
        "importance": "standardized coefficient (logistic; sign: + favours members) or mean drop of held-out "
        "AUC when the column is shuffled (gbt)",
        "importance_kind": "'std_coef' or 'permutation_auc_drop'",
        "direction": "'members higher' or 'non-members higher' (class means of the raw feature)",
        "member_value": "members' mean (share of transcripts for an n-gram, share of items for a category)",
        "sentence": "the explanation in words, e.g. 'non-members are noisier: lower estimated SNR (9.9 vs 40.0 dB)'",
    },
)

HEATMAP = TableSchema(
    name="blind_heatmap",
    columns={
        "side_a": pa.string(),
        "side_b": pa.string(),
        "dataset_a": pa.string(),
        "dataset_b": pa.string(),
        "label_a": pa.string(),
        "label_b": pa.string(),
        "pair_kind": pa.string(),
        "classifier": pa.string(),
        "auc": pa.float64(),
        "auc_lo": pa.float64(),
        "auc_hi": pa.float64(),
        "n_a": pa.int64(),
        "n_b": pa.int64(),
    },
    key=("side_a", "side_b"),
    doc={
        "side_a": "'<dataset>:members', '<dataset>:non-members' (pairing 'label') or '<dataset>' (pairing 'dataset')",
        "label_a": "'members', 'non-members' or 'all'",
        "pair_kind": "'within-dataset' (a dataset's own membership split), 'membership-neutral' (two member "
        "sets: any separation is a shift, never membership), or 'cross-dataset'",
        "auc": "blind AUC of telling side_a (positive) from side_b; every ordered pair is a row, so "
        "pivot(side_a, side_b, auc) is the matrix (symmetric: one CV per unordered pair)",
    },
)

CLEAN_SPLIT = TableSchema(
    name="clean_split",
    columns={"item_id": pa.string(), "label": pa.int8()},
    key=("item_id",),
    doc={
        "item_id": "an item the clean split keeps (its verdict is in the file's provenance and <method>.json)"
    },
)

SPLIT_STATUS = TableSchema(
    name="split_status",
    columns={
        "split": pa.string(),
        "at_chance": pa.bool_(),
        "state": pa.string(),
        "n_members": pa.int64(),
        "n_nonmembers": pa.int64(),
        "blind_auc": pa.float64(),
        "blind_lo": pa.float64(),
        "blind_hi": pa.float64(),
        "p_value": pa.float64(),
        "auc_ucb": pa.float64(),
        "detectable_auc": pa.float64(),
        "verdict": pa.string(),
    },
    key=("split",),
    doc={
        "split": "'full' or a clean split (its method's name)",
        "at_chance": "false: the split is shifted, and every MIA result on it is confounded by distribution shift",
        "state": "the blind verdict of lalm_audit.verdicts.shift_verdict: shifted, clean or inconclusive",
        "blind_auc": "the largest AUC over the blind checks (full: the blind stage's CV; a clean split: its "
        "fresh re-verification)",
        "p_value": "family-wise permutation p-value of 'no shift' (max AUC over checks vs shuffled refits)",
        "auc_ucb": "largest upper confidence bound over checks (the 'clean' equivalence statistic)",
        "detectable_auc": "smallest blind AUC this size detects with verdicts.power",
        "verdict": "the sentence the report prints",
    },
)

ALL_SCHEMAS: dict[str, TableSchema] = {
    s.name: s
    for s in (
        MANIFEST,
        REJECTED,
        GENERATIONS,
        TOKEN_STATS,
        INDICATOR_SCORES,
        MIA_METRICS,
        AGGREGATE_SCORES,
        DISENTANGLEMENT,
        CORRELATION,
        CONFOUND_ADJUSTED,
        CLEAN_SPLIT,
        SPLIT_STATUS,
        FEATURES,
        BLIND_PREDICTIONS,
        BLIND_METRICS,
        BLIND_EXPLANATIONS,
        HEATMAP,
    )
}


def empty_frame(schema: TableSchema) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return pa.schema([pa.field(c, t) for c, t in schema.columns.items()]).empty_table().to_pandas()
