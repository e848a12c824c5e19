"""One table of headline MIA results across models, datasets, responses and splits (rule mia_summary)."""

from lalm_audit.mia import run_mia_summary
from lalm_audit.workflow import start_job

start_job(snakemake)
run_mia_summary(snakemake.input, snakemake.output.table, snakemake.output.markdown)
