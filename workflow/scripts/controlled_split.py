"""Draw the controlled member/held-out split from the pool's manifest (rule controlled_split)."""

from lalm_audit.controlled.run import run_controlled_split
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_controlled_split(cfg, snakemake.input[0], snakemake.output.manifest)
