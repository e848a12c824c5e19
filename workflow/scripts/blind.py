"""Blind CV of one dataset: AUCs, permutation control, explanations (rule blind)."""

from lalm_audit.blind import run_blind
from lalm_audit.layout import Layout
from lalm_audit.workflow import start_job

cfg = start_job(snakemake)
run_blind(
    cfg,
    snakemake.wildcards.dataset,
    results=Layout().root,  # the rules' layout (workflow/rules/common.smk: L = Layout())
    manifest=snakemake.input.manifest,
    workers=snakemake.threads,
)
