"""Reconcile items in = kept + rejected for every dataset (rule manifest_summary)."""

from lalm_audit.manifest import write_summary_table
from lalm_audit.workflow import start_job

start_job(snakemake)
write_summary_table(snakemake.input, snakemake.output[0])
