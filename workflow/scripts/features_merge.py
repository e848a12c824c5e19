"""Merge a feature group's shards into one table per dataset (rule features_merge)."""

from lalm_audit.features import merge_shards
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
w = snakemake.wildcards
merge_shards(
    cfg, w.dataset, w.group, snakemake.input.shards, snakemake.input.manifest, snakemake.output[0]
)
