# Blind classifiers (no model): members vs non-members from features alone, per dataset,
# and the cross-dataset heatmap (the paper's Figure 2).


rule blind:
    input:
        features=blind_features,
        manifest=L.manifest(),
    output:
        predictions=L.blind(file="predictions.parquet"),
        metrics=L.blind(file="metrics.parquet"),
        explanations=L.blind(file="explanations.parquet"),
        summary=L.blind(file="summary.md"),
        null=L.blind(file="null.parquet"),
        verdict=L.blind(file="verdict.json"),
    log:
        L.log("blind"),
    benchmark:
        L.benchmark("blind")
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
            L.features(),
            dataset=AUDIT_DATASETS,
            group=CFG.blind.heatmap.groups or CFG.features.groups,
        ),
        manifests=expand(L.manifest(), dataset=AUDIT_DATASETS),
    output:
        table=L.heatmap("parquet"),
        png=report(
            L.heatmap("png"),
            caption="../report/heatmap.rst",
            category="1. Blind baseline",
        ),
        pdf=L.heatmap("pdf"),
    log:
        L.log("blind_heatmap"),
    benchmark:
        L.benchmark("blind_heatmap")
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
        L.manifests_summary(),
        blind_targets(),
