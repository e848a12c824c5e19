"""Clean splits of one dataset, every configured method (rule splits)."""

from lalm_audit.layout import Layout
from lalm_audit.splits import run_splits
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_splits(cfg, snakemake.wildcards.dataset, results=Layout().root)  # the rules' layout
