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


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),


def dataset_sources(wildcards):
    """Files a dataset's manifest is built from (so upstream rules, e.g. demo_data, run first)."""
    ds = CFG.datasets[wildcards.dataset]
    return [ds.path] if ds.loader == "table" else []


def all_targets():
    """Everything `snakemake` builds by default, stage by stage."""
    targets = expand("results/manifests/{dataset}.parquet", dataset=DATASETS)
    targets.append("results/manifests/summary.tsv")
    targets += blind_targets()
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
    return [
        f"results/features/{wildcards.dataset}/shards/{wildcards.group}/{i}-of-{n}.parquet"
        for i in range(n)
    ]


def feature_params(wildcards):
    """The settings one group's values depend on (so changing another group's reruns nothing here)."""
    return {
        "audio": config.get("audio", {}),
        "group": config.get("features", {}).get(wildcards.group, {}),
    }


def blind_features(wildcards):
    return expand(
        "results/features/{dataset}/{group}.parquet",
        dataset=wildcards.dataset,
        group=CFG.features.groups,
    )


def blind_targets():
    targets = expand(
        "results/blind/{dataset}/{name}",
        dataset=AUDIT_DATASETS,
        name=["metrics.parquet", "summary.md"],
    )
    if CFG.blind.heatmap.enabled and AUDIT_DATASETS:
        targets += ["results/blind/heatmap.parquet", "results/blind/heatmap.png"]
    return targets
