"""Build one dataset's manifest (rule manifest)."""

from lalm_audit.manifest import run_manifest
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
out = snakemake.output
run_manifest(
    cfg,
    snakemake.wildcards.dataset,
    out.manifest,
    out.rejected,
    out.summary,
    workers=snakemake.threads,
)
