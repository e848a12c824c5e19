"""LoRA-fine-tune one base model on the controlled members (rule controlled_finetune)."""

from lalm_audit.controlled.run import run_finetune
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_finetune(cfg, snakemake.wildcards.cmodel, snakemake.input.manifest, snakemake.output[0])
