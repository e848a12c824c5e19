# How much of each MIA signal the blind artifacts explain: correlation with the blind
# out-of-fold logit, confound-adjusted AUC, gain over the blind classifier (per split).


rule correlation:
    input:
        scores="results/indicators/{model}/{dataset}/original/{response}.parquet",
        aggregate="results/mia/{model}/{dataset}/{response}/aggregate.parquet",
        mia="results/mia/{model}/{dataset}/{response}/metrics.parquet",
        blind=multiext(
            "results/blind/{dataset}/",
            "predictions.parquet",
            "metrics.parquet",
            "explanations.parquet",
            "null.parquet",
        ),
        features=blind_features,
        manifest="results/manifests/{dataset}.parquet",
        splits=split_files,
        status=split_status,
    output:
        correlation="results/correlation/{model}/{dataset}/{response}/correlation.parquet",
        adjusted="results/correlation/{model}/{dataset}/{response}/adjusted.parquet",
        table="results/correlation/{model}/{dataset}/{response}/adjusted.md",
        latex="results/correlation/{model}/{dataset}/{response}/adjusted.tex",
        png=report(
            "results/correlation/{model}/{dataset}/{response}/scatter.png",
            caption="../report/correlation.rst",
            category="4. Correlation with blind artifacts",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "dataset": "{dataset}",
                "response": "{response}",
            },
        ),
        pdf="results/correlation/{model}/{dataset}/{response}/scatter.pdf",
    log:
        "results/logs/correlation/{model}/{dataset}/{response}.log",
    benchmark:
        "results/benchmarks/correlation/{model}/{dataset}/{response}.tsv"
    conda:
        ENV
    params:
        stage=stage_params("correlation"),
        splits=lambda wc: list(split_map(wc.dataset)),
    script:
        "../scripts/correlation.py"
