# Helpers shared by all rules (no rules here). Logic lives in the package.
import re
from pathlib import Path

from snakemake.utils import validate

from lalm_audit.config import parse_config
from lalm_audit.demo import DATASETS as DEMO_DATASETS

# The typed models give the clearest messages (they name the offending key);
# the generated JSON schema is what Snakemake records and validates against.
CFG = parse_config(config)
validate(
    config, "../schemas/config.schema.json", set_default=False
)  # defaults: the typed models

DATASETS = list(CFG.datasets)
AUDIT_DATASETS = CFG.audit_datasets()
ENV = "../../envs/lalm-audit.yaml"


PERTURBED_DATASETS = CFG.perturbed_datasets()
CONDITIONS = list(CFG.perturb.conditions)


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    condition="|".join(["original", *(re.escape(c) for c in CONDITIONS)]),


def dataset_sources(wildcards):
    """Files a dataset's manifest is built from (so upstream rules, e.g. demo_data, run first)."""
    ds = CFG.datasets[wildcards.dataset]
    return [ds.path] if ds.loader == "table" else []


def all_targets():
    """Everything `snakemake` builds by default, stage by stage."""
    targets = expand("results/manifests/{dataset}.parquet", dataset=DATASETS)
    targets.append("results/manifests/summary.tsv")
    targets += scoring_targets()
    return targets


# --------------------------------------------------------------------------- scoring
# Helpers of workflow/rules/scoring.smk (models, demo models, stage 1 and 2).
from lalm_audit.scoring import paths as score_paths

SCORED_MODELS = CFG.scored_models()
DEMO_MODELS = list(CFG.demo_models.models) if CFG.demo_models else []
RESPONSES = list(CFG.scoring.responses)
SHARDS = list(range(CFG.scoring.shards))
# Conditions whose audio stage 1/2 can read; perturbation stages add theirs.
SCORE_CONDITIONS = ["original"]


wildcard_constraints:
    model="|".join(re.escape(m) for m in CFG.models) or "^$",
    demo_model="|".join(re.escape(m) for m in DEMO_MODELS) or "^$",
    response="|".join(score_paths.RESPONSES),
    shard=r"\d+",


def model_files(wildcards):
    """A demo model's folder (so demo_model runs first); nothing for hub ids and user folders."""
    return (
        [f"results/models/{wildcards.model}"] if wildcards.model in DEMO_MODELS else []
    )


def condition_manifest(wildcards):
    return str(score_paths.manifest_path(wildcards.dataset, wildcards.condition))


def response_generations(wildcards):
    p = score_paths.generations_path(
        wildcards.model, wildcards.dataset, wildcards.condition, wildcards.response
    )
    return [str(p)] if p else []


def demo_model_manifests(wildcards):
    """Manifests a demo model trains on: the train pool, plus audit datasets when it sees members."""
    spec = CFG.demo_models.models[wildcards.demo_model]
    return [
        f"results/manifests/{name}.parquet"
        for name, ds in CFG.datasets.items()
        if ds.role == "train_pool" or spec.train_members
    ]


def scoring_targets():
    """Merged stage-2 tables of every scored model x audit dataset x response (original audio)."""
    return expand(
        "results/scores/{model}/{dataset}/original/{response}/token_stats.parquet",
        model=SCORED_MODELS,
        dataset=AUDIT_DATASETS,
        response=RESPONSES,
    )
