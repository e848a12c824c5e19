# MIA evaluation per split (every indicator and the aggregated attack), and the summary across
# models and datasets.


localrules:
    mia_summary,


rule mia:
    input:
        scores=L.indicators(condition="original"),
        manifest=L.manifest(),
        splits=split_files,
        status=split_status,
    output:
        metrics=L.mia(),
        aggregate=L.mia(file="aggregate.parquet"),
        table=L.mia(file="metrics.md"),
    log:
        L.log("mia"),
    benchmark:
        L.benchmark("mia")
    conda:
        ENV
    params:
        stage=stage_params("mia"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/mia.py"


rule mia_summary:
    input:
        mia_metric_files,
    output:
        table=L.mia_summary("parquet"),
        markdown=L.mia_summary("md"),
    log:
        L.log("mia_summary"),
    conda:
        ENV
    params:
        stage=stage_params("mia_summary"),
    script:
        "../scripts/mia_summary.py"
