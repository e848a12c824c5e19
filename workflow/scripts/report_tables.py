"""Every table of the report as Markdown, LaTeX and one HTML page (rule report_tables)."""

from pathlib import Path

from lalm_audit.report.build import run_report_tables
from lalm_audit.workflow import start_job

start_job(snakemake)
inp = snakemake.input
run_report_tables(
    Path(snakemake.output.html).parent,
    blind_metrics=list(inp.blind),
    split_status=list(inp.splits),
    mia_summary=inp.mia[0] if len(inp.mia) else None,
    adjusted=list(inp.adjusted),
    disentangle=list(inp.disentangle),
)
