# Clean splits: items selected with the blind stage's out-of-fold predictions, re-verified by a
# fresh blind cross-validation on the retained items, with a verdict per dataset and method.


rule splits:
    input:
        features=blind_features,
        manifest=L.manifest(),
        predictions=L.blind(file="predictions.parquet"),
        metrics=L.blind(file="metrics.parquet"),
        null=L.blind(file="null.parquet"),
        explanations=L.blind(file="explanations.parquet"),
    output:
        status=L.split_status(),
        kept=expand(
            L.split(file=".parquet"),
            method=SPLIT_METHODS,
            allow_missing=True,
        ),
        verdicts=expand(
            L.split(file=".json"),
            method=SPLIT_METHODS,
            allow_missing=True,
        ),
        verification=expand(
            L.split(file=".verification.parquet"),
            method=SPLIT_METHODS,
            allow_missing=True,
        ),
        rounds=expand(
            L.split(file=".rounds.parquet"),
            method=SPLIT_METHODS,
            allow_missing=True,
        ),
        png=report(
            expand(
                L.split(file=".before_after.png"),
                method=SPLIT_METHODS,
                allow_missing=True,
            ),
            caption="../report/before_after.rst",
            category="2. Clean splits",
            labels=lambda wc: {"dataset": wc.dataset},
        ),
        pdf=expand(
            L.split(file=".before_after.pdf"),
            method=SPLIT_METHODS,
            allow_missing=True,
        ),
    log:
        L.log("splits"),
    benchmark:
        L.benchmark("splits")
    wildcard_constraints:
        dataset=AUDIT_DATASET_RE,
    conda:
        ENV
    params:
        stage=stage_params("splits"),
    script:
        "../scripts/splits.py"
