# Helpers shared by all rules (no rules here). Logic lives in the package.
import re
from pathlib import Path

from snakemake.utils import validate

from lalm_audit import stages as contract
from lalm_audit.config import parse_config
from lalm_audit.demo import DATASETS as DEMO_DATASETS
from lalm_audit.layout import Layout

# The typed models give the clearest messages (they name the offending key);
# the generated JSON schema is what Snakemake records and validates against.
CFG = parse_config(config)
validate(
    config, "../schemas/config.schema.json", set_default=False
)  # defaults: the typed models

DATASETS = list(CFG.datasets)
AUDIT_DATASETS = CFG.audit_datasets()
ENV = "../../envs/lalm-audit.yaml"
# Every artifact path, defined once (src/lalm_audit/layout.py); a value left out stays a wildcard.
L = Layout()


PERTURBED_DATASETS = CFG.perturbed_datasets()
CONDITIONS = list(CFG.perturb.conditions)


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    condition="|".join(["original", *(re.escape(c) for c in CONDITIONS)]),


def stage_params(stage):
    """A rule's rerun triggers, from the stage contract (lalm_audit/stages.py): the config keys the
    stage declares, for this job's wildcards, and the hash of the code it runs. So a job reruns
    when what it reads changes, and only then (a heatmap setting never reruns the blind CVs).
    """
    return lambda wildcards: contract.stage_params(
        CFG, stage, **dict(wildcards.items())
    )


def dataset_sources(wildcards):
    """Files a dataset's manifest is built from (so upstream rules, e.g. demo_data, run first)."""
    ds = CFG.datasets[wildcards.dataset]
    return [ds.path] if ds.loader == "table" else []


def all_targets():
    """Everything `snakemake` builds by default, stage by stage."""
    targets = expand(L.manifest(), dataset=DATASETS)
    targets.append(L.manifests_summary())
    targets += scoring_targets()
    if SCORED_MODELS:  # a blind-baseline-only audit (no models) is a valid first day
        targets.append(L.mia_summary("md"))
    targets += disentangle_targets()
    targets += correlation_targets()
    targets += blind_targets()
    targets.append(L.report_html())
    targets += expand(
        L.roc(),
        model=SCORED_MODELS,
        dataset=AUDIT_DATASETS,
        response=RESPONSES,
    )
    targets += expand(L.split_status(), dataset=AUDIT_DATASETS)
    return targets


# --- blind baseline: features per (dataset, group, shard), blind CV per dataset, heatmap
AUDIT_DATASET_RE = "|".join(re.escape(d) for d in AUDIT_DATASETS)


wildcard_constraints:
    group="|".join(re.escape(g) for g in CFG.features.groups),
    shard=r"\d+",
    n_shards=r"\d+",


def feature_shards(wildcards):
    """The shard files of one (dataset, group), as many as features.shards / dataset_shards say."""
    n = CFG.features.n_shards(wildcards.dataset, wildcards.group)
    return [L.feature_shard(wildcards.dataset, wildcards.group, i, n) for i in range(n)]


def blind_features(wildcards):
    return expand(L.features(wildcards.dataset), group=CFG.features.groups)


def blind_targets():
    targets = [
        L.blind(dataset, name)
        for dataset in AUDIT_DATASETS
        for name in ("metrics.parquet", "summary.md")
    ]
    if CFG.blind.heatmap.enabled and AUDIT_DATASETS:
        targets += [L.heatmap("parquet"), L.heatmap("png")]
    return targets


# --------------------------------------------------------------------------- scoring
# Helpers of workflow/rules/scoring.smk (models, demo models, stage 1 and 2).
from lalm_audit.scoring import paths as score_paths

SCORED_MODELS = CFG.scored_models()
DEMO_MODELS = list(CFG.demo_models.models) if CFG.demo_models else []
RESPONSES = list(CFG.scoring.responses)
PERTURB_RESPONSES = list(CFG.perturb.responses)
SHARDS = list(range(CFG.scoring.shards))
# Conditions whose audio stage 1/2 can read; perturbation stages add theirs.
SCORE_CONDITIONS = ["original", *CONDITIONS]


wildcard_constraints:
    model="|".join(re.escape(m) for m in CFG.models) or "^$",
    demo_model="|".join(re.escape(m) for m in DEMO_MODELS) or "^$",
    response="|".join(score_paths.RESPONSES),
    shard=r"\d+",


def model_files(wildcards):
    """A demo model's folder (so demo_model runs first); nothing for hub ids and user folders."""
    return [L.model_dir(wildcards.model)] if wildcards.model in DEMO_MODELS else []


def model_gpus(wildcards):
    """GPUs a model job holds: none for a model on `device: cpu` (the `gpu` pool of --resources)."""
    return int(CFG.models[wildcards.model].device != "cpu")


def condition_manifest(wildcards):
    condition = getattr(wildcards, "condition", "original")
    return L.condition_manifest(wildcards.dataset, condition)


def response_generations(wildcards):
    """Stage-1 tables the responses of a stage-2 job read (none for the transcript)."""
    condition = getattr(wildcards, "condition", "original")
    responses = RESPONSES if condition == "original" else PERTURB_RESPONSES
    paths = (
        score_paths.generations_path(wildcards.model, wildcards.dataset, condition, r)
        for r in responses
    )
    return sorted({str(p) for p in paths if p})


def demo_model_manifests(wildcards):
    """Manifests a demo model trains on (named by dataset): the train pool, plus audit datasets
    when it sees members."""
    return {
        name: L.manifest(name)
        for name in contract.demo_training_datasets(CFG, wildcards.demo_model)
    }


def scoring_targets():
    """Indicator tables of every scored model x audit dataset x response (original audio)."""
    return expand(
        L.indicators(condition="original"),
        model=SCORED_MODELS,
        dataset=AUDIT_DATASETS,
        response=RESPONSES,
    )


# --------------------------------------------------------------------------- indicators and MIA
PERTURB_MODELS = [
    m for m in SCORED_MODELS if CFG.perturb.models is None or m in CFG.perturb.models
]
PERTURB_RESPONSES = list(CFG.perturb.responses)


def reference_stats(wildcards):
    """The reference model's token statistics for ref_loss_diff, when one is configured."""
    ref = CFG.indicators.reference.get(wildcards.model)
    if ref is None:
        return []
    return expand(
        L.token_stats_shard(
            ref, wildcards.dataset, wildcards.condition, wildcards.response
        ),
        shard=SHARDS,
    )


SPLIT_METHODS = list(CFG.splits.methods)


def split_map(dataset):
    """Split name -> retained-items file: 'full' (every item) and one clean split per method."""
    return {
        "full": None,
        **{m: L.split(dataset, m) for m in SPLIT_METHODS},
    }


def split_status(wildcards):
    return L.split_status(wildcards.dataset)


def split_files(wildcards):
    return [p for p in split_map(wildcards.dataset).values() if p is not None]


def original_response(response):
    """Under the original audio, a regenerated response is the generated one."""
    return "generated" if response == "regenerated" else response


def mia_metric_files(wildcards=None):
    return expand(
        L.mia(),
        model=SCORED_MODELS,
        dataset=AUDIT_DATASETS,
        response=RESPONSES,
    )


def disentangle_targets():
    return expand(
        L.disentangle(),
        model=PERTURB_MODELS,
        dataset=PERTURBED_DATASETS,
        response=PERTURB_RESPONSES,
    )


def correlation_targets():
    return expand(
        L.correlation(),
        model=SCORED_MODELS,
        dataset=AUDIT_DATASETS,
        response=RESPONSES,
    )


REPORT_TABLES = ["blind", "splits", "mia", "adjusted", "disentangle"]
