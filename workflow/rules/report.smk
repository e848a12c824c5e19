# The report: every table (Markdown, LaTeX, one HTML page) and the ROC curves, from the stages'
# Parquet outputs. `snakemake --report results/report.html` collects every figure and table
# marked with report() into one self-contained HTML file.


localrules:
    report_tables,


rule roc:
    input:
        scores=L.indicators(condition="original"),
        aggregate=L.mia(file="aggregate.parquet"),
        splits=split_files,
    output:
        png=report(
            L.roc(ext="png"),
            caption="../report/roc.rst",
            category="3. Membership inference",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "dataset": "{dataset}",
                "response": "{response}",
            },
        ),
        pdf=L.roc(ext="pdf"),
    log:
        L.log("roc"),
    conda:
        ENV
    params:
        stage=stage_params("roc"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/roc.py"


rule report_tables:
    input:
        blind=expand(L.blind(file="metrics.parquet"), dataset=AUDIT_DATASETS),
        splits=expand(L.split_status(), dataset=AUDIT_DATASETS),
        mia=[L.mia_summary("parquet")] if SCORED_MODELS else [],
        adjusted=correlation_targets(),
        disentangle=disentangle_targets(),
    output:
        html=report(
            L.report_html(),
            caption="../report/tables.rst",
            category="0. Tables",
        ),
        md=expand(L.report_table(ext="md"), name=REPORT_TABLES),
        tex=expand(L.report_table(ext="tex"), name=REPORT_TABLES),
    log:
        L.log("report_tables"),
    conda:
        ENV
    params:
        stage=stage_params("report_tables"),
    script:
        "../scripts/report_tables.py"
