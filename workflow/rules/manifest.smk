# Dataset manifests: every item kept or rejected with a reason.


localrules:
    manifest_summary,


rule manifest:
    input:
        dataset_sources,
    output:
        manifest="results/manifests/{dataset}.parquet",
        rejected="results/manifests/{dataset}.rejected.parquet",
        summary="results/manifests/{dataset}.summary.json",
    log:
        "results/logs/manifest/{dataset}.log",
    benchmark:
        "results/benchmarks/manifest/{dataset}.tsv"
    conda:
        ENV
    threads: 4
    params:
        stage=stage_params("manifest"),
    script:
        "../scripts/manifest.py"


rule manifest_summary:
    input:
        expand("results/manifests/{dataset}.summary.json", dataset=DATASETS),
    output:
        "results/manifests/summary.tsv",
    log:
        "results/logs/manifest/summary.log",
    conda:
        ENV
    params:
        stage=stage_params("manifest_summary"),
    script:
        "../scripts/manifest_summary.py"
