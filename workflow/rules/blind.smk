# Blind classifiers (no model): members vs non-members from features alone, per dataset,
# and the cross-dataset heatmap (the paper's Figure 2).


rule blind:
    input:
        features=blind_features,
        manifest="results/manifests/{dataset}.parquet",
    output:
        predictions="results/blind/{dataset}/predictions.parquet",
        metrics="results/blind/{dataset}/metrics.parquet",
        explanations="results/blind/{dataset}/explanations.parquet",
        summary="results/blind/{dataset}/summary.md",
        null="results/blind/{dataset}/null.parquet",
        verdict="results/blind/{dataset}/verdict.json",
    log:
        "results/logs/blind/{dataset}.log",
    benchmark:
        "results/benchmarks/blind/{dataset}.tsv"
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    threads: 1
    params:
        stage=stage_params("blind"),
    script:
        "../scripts/blind.py"


rule blind_heatmap:
    input:
        features=expand(
            "results/features/{dataset}/{group}.parquet",
            dataset=AUDIT_DATASETS,
            group=CFG.blind.heatmap.groups or CFG.features.groups,
        ),
        manifests=expand("results/manifests/{dataset}.parquet", dataset=AUDIT_DATASETS),
    output:
        table="results/blind/heatmap.parquet",
        png=report(
            "results/blind/heatmap.png",
            caption="../report/heatmap.rst",
            category="1. Blind baseline",
        ),
        pdf="results/blind/heatmap.pdf",
    log:
        "results/logs/blind/heatmap.log",
    benchmark:
        "results/benchmarks/blind/heatmap.tsv"
    conda:
        ENV
    threads: 2
    params:
        stage=stage_params("heatmap"),
        datasets=AUDIT_DATASETS,
    script:
        "../scripts/blind_heatmap.py"


# The first day's question, "is my split even auditable?", as one target that ends at the
# blind summaries and heatmap (no model needed):  snakemake blind_only --configfile my.yaml
rule blind_only:
    input:
        "results/manifests/summary.tsv",
        blind_targets(),
