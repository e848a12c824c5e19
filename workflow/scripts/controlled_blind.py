"""The blind baseline on the controlled labels, which must read "at chance" (rule controlled_blind)."""

from pathlib import Path

from lalm_audit.controlled.run import run_controlled_blind
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_controlled_blind(cfg, snakemake.input.manifest, Path(snakemake.output.summary).parent)
