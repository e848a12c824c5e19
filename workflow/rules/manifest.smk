# Dataset manifests: every item kept or rejected with a reason.


localrules:
    manifest_summary,


rule manifest:
    input:
        dataset_sources,
    output:
        manifest=L.manifest(),
        rejected=L.manifest_rejected(),
        summary=L.manifest_report(),
    log:
        L.log("manifest"),
    benchmark:
        L.benchmark("manifest")
    conda:
        ENV
    threads: 4
    params:
        stage=stage_params("manifest"),
    script:
        "../scripts/manifest.py"


rule manifest_summary:
    input:
        expand(L.manifest_report(), dataset=DATASETS),
    output:
        L.manifests_summary(),
    log:
        L.log("manifest_summary"),
    conda:
        ENV
    params:
        stage=stage_params("manifest_summary"),
    script:
        "../scripts/manifest_summary.py"
