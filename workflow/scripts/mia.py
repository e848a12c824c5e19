"""MIA evaluation of one model x dataset x response, per split (rule mia)."""

from lalm_audit.mia import run_mia
from lalm_audit.workflow import split_paths, start_job

cfg = start_job(snakemake)
out = snakemake.output
run_mia(
    cfg,
    snakemake.input.scores,
    split_paths(snakemake.params.splits, snakemake.input.splits),
    out.metrics,
    out.aggregate,
    out.table,
    status_path=snakemake.input.status,
    manifest_path=snakemake.input.manifest,
)
