"""Blind CV of one dataset: AUCs, permutation control, explanations (rule blind)."""

from pathlib import Path

from lalm_audit.blind import run_blind
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
out = Path(snakemake.output.metrics).parent
run_blind(
    cfg,
    snakemake.wildcards.dataset,
    results=out.parent.parent,
    manifest=snakemake.input.manifest,
    out_dir=out,
    workers=snakemake.threads,
)
