# Modality disentanglement: derived items with silenced, replaced, re-spoken or perturbed audio.


rule perturb:
    input:
        manifest="results/manifests/{dataset}.parquet",
    output:
        manifest="results/perturb/{dataset}/{condition}.parquet",
        rejected="results/perturb/{dataset}/{condition}.rejected.parquet",
        audio=directory("results/perturb/{dataset}/{condition}/audio"),
    log:
        "results/logs/perturb/{dataset}/{condition}.log",
    benchmark:
        "results/benchmarks/perturb/{dataset}/{condition}.tsv"
    conda:
        ENV
    params:
        stage=stage_params("perturb"),
    script:
        "../scripts/perturb.py"
