# The report: every table (Markdown, LaTeX, one HTML page) and the ROC curves, from the stages'
# Parquet outputs. `snakemake --report results/report.html` collects every figure and table
# marked with report() into one self-contained HTML file.


localrules:
    report_tables,


rule roc:
    input:
        scores="results/indicators/{model}/{dataset}/original/{response}.parquet",
        aggregate="results/mia/{model}/{dataset}/{response}/aggregate.parquet",
        splits=split_files,
    output:
        png=report(
            "results/report/roc/{model}/{dataset}/{response}.png",
            caption="../report/roc.rst",
            category="3. Membership inference",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "dataset": "{dataset}",
                "response": "{response}",
            },
        ),
        pdf="results/report/roc/{model}/{dataset}/{response}.pdf",
    log:
        "results/logs/report/roc/{model}/{dataset}/{response}.log",
    conda:
        ENV
    params:
        stage=stage_params("roc"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/roc.py"


rule report_tables:
    input:
        blind=expand("results/blind/{dataset}/metrics.parquet", dataset=AUDIT_DATASETS),
        splits=expand("results/splits/{dataset}/status.parquet", dataset=AUDIT_DATASETS),
        mia=["results/mia/summary.parquet"] if SCORED_MODELS else [],
        adjusted=correlation_targets(),
        disentangle=disentangle_targets(),
    output:
        html=report(
            "results/report/tables/tables.html",
            caption="../report/tables.rst",
            category="0. Tables",
        ),
        md=expand("results/report/tables/{name}.md", name=REPORT_TABLES),
        tex=expand("results/report/tables/{name}.tex", name=REPORT_TABLES),
    log:
        "results/logs/report/tables.log",
    conda:
        ENV
    params:
        stage=stage_params("report_tables"),
    script:
        "../scripts/report_tables.py"
