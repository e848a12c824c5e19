"""Perturb one dataset under one condition (rule perturb)."""

from lalm_audit.perturb import run_perturb
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
wc, out = snakemake.wildcards, snakemake.output
run_perturb(
    cfg, wc.dataset, wc.condition, snakemake.input.manifest, out.manifest, out.rejected, out.audio
)
