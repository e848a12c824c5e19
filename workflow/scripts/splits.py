"""Clean splits of one dataset, every configured method (rule splits)."""

from pathlib import Path

from lalm_audit.splits import run_splits
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_splits(cfg, snakemake.wildcards.dataset, out_dir=Path(snakemake.output.status).parent)
