# MIA evaluation per split (every indicator and the aggregated attack), and the summary across
# models and datasets.


localrules:
    mia_summary,


rule mia:
    input:
        scores="results/indicators/{model}/{dataset}/original/{response}.parquet",
        manifest="results/manifests/{dataset}.parquet",
        splits=split_files,
        status=split_status,
    output:
        metrics="results/mia/{model}/{dataset}/{response}/metrics.parquet",
        aggregate="results/mia/{model}/{dataset}/{response}/aggregate.parquet",
        table="results/mia/{model}/{dataset}/{response}/metrics.md",
    log:
        "results/logs/mia/{model}/{dataset}/{response}.log",
    benchmark:
        "results/benchmarks/mia/{model}/{dataset}/{response}.tsv"
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
        table="results/mia/summary.parquet",
        markdown="results/mia/summary.md",
    log:
        "results/logs/mia/summary.log",
    conda:
        ENV
    params:
        stage=stage_params("mia_summary"),
    script:
        "../scripts/mia_summary.py"
