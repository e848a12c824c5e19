"""Audit one fine-tune against its base on the controlled split (rule controlled_audit)."""

from pathlib import Path

from lalm_audit.controlled.run import run_controlled_audit
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_controlled_audit(
    cfg,
    snakemake.wildcards.cmodel,
    snakemake.input.manifest,
    snakemake.input.adapter,
    Path(snakemake.output.summary).parent,
)
