"""One table of headline MIA results across models, datasets, responses and splits (rule mia_summary)."""

from lalm_audit.mia import run_mia_summary
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_mia_summary(
    list(snakemake.input),
    snakemake.output.table,
    snakemake.output.markdown,
    alpha=cfg.verdicts.alpha,
    shuffles=cfg.verdicts.aggregate_shuffles,
)
