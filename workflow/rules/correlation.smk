# How much of each MIA signal the blind artifacts explain: correlation with the blind
# out-of-fold logit, confound-adjusted AUC, gain over the blind classifier (per split).


rule correlation:
    input:
        scores=L.indicators(condition="original"),
        aggregate=L.mia(file="aggregate.parquet"),
        mia=L.mia(),
        blind=[
            L.blind(file=f)
            for f in (
                "predictions.parquet",
                "metrics.parquet",
                "explanations.parquet",
                "null.parquet",
            )
        ],
        features=blind_features,
        manifest=L.manifest(),
        splits=split_files,
        status=split_status,
    output:
        correlation=L.correlation(file="correlation.parquet"),
        adjusted=L.correlation(file="adjusted.parquet"),
        table=L.correlation(file="adjusted.md"),
        latex=L.correlation(file="adjusted.tex"),
        png=report(
            L.correlation(file="scatter.png"),
            caption="../report/correlation.rst",
            category="4. Correlation with blind artifacts",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "dataset": "{dataset}",
                "response": "{response}",
            },
        ),
        pdf=L.correlation(file="scatter.pdf"),
    log:
        L.log("correlation"),
    benchmark:
        L.benchmark("correlation")
    conda:
        ENV
    params:
        stage=stage_params("correlation"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/correlation.py"
