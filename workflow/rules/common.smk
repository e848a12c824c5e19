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
    return targets
