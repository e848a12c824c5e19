# Clean splits: items selected with the blind stage's out-of-fold predictions, re-verified by a
# fresh blind cross-validation on the retained items, with a verdict per dataset and method.


rule splits:
    input:
        features=blind_features,
        manifest="results/manifests/{dataset}.parquet",
        predictions="results/blind/{dataset}/predictions.parquet",
        metrics="results/blind/{dataset}/metrics.parquet",
        null="results/blind/{dataset}/null.parquet",
        explanations="results/blind/{dataset}/explanations.parquet",
    output:
        status="results/splits/{dataset}/status.parquet",
        kept=expand("results/splits/{{dataset}}/{method}.parquet", method=SPLIT_METHODS),
        verdicts=expand(
            "results/splits/{{dataset}}/{method}.json", method=SPLIT_METHODS
        ),
        verification=expand(
            "results/splits/{{dataset}}/{method}.verification.parquet",
            method=SPLIT_METHODS,
        ),
        rounds=expand(
            "results/splits/{{dataset}}/{method}.rounds.parquet", method=SPLIT_METHODS
        ),
        png=report(
            expand(
                "results/splits/{{dataset}}/{method}.before_after.png",
                method=SPLIT_METHODS,
            ),
            caption="../report/before_after.rst",
            category="2. Clean splits",
            labels=lambda wc: {"dataset": wc.dataset},
        ),
        pdf=expand(
            "results/splits/{{dataset}}/{method}.before_after.pdf",
            method=SPLIT_METHODS,
        ),
    log:
        "results/logs/splits/{dataset}.log",
    benchmark:
        "results/benchmarks/splits/{dataset}.tsv"
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    params:
        stage=stage_params("splits"),
    script:
        "../scripts/splits.py"
