"""Indicator scores from stored token statistics (rule indicators)."""

from lalm_audit.mia import run_indicators
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
inp = snakemake.input
reference = inp.reference[0] if inp.reference else None
run_indicators(
    cfg, snakemake.wildcards.model, inp.stats, inp.manifest, snakemake.output[0], reference
)
