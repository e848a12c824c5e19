# Controlled-membership audit (only with a `controlled` section): a random member/held-out draw
# from a pool the models have not seen, a LoRA fine-tune of each base model on the members, and
# an audit of the fine-tune with its base as reference, with epsilon lower bounds.
# `snakemake ... controlled` builds only this; CONTROLLED_TARGETS are also in the default target.

CONTROLLED_TARGETS = []

if CFG.controlled is not None:
    CONTROLLED = CFG.controlled
    CONTROLLED_MODELS = list(CONTROLLED.models)
    CONTROLLED_MANIFEST = f"results/manifests/{CONTROLLED.dataset}.parquet"

    wildcard_constraints:
        cmodel="|".join(re.escape(m) for m in CONTROLLED_MODELS) or "^$",

    CONTROLLED_TARGETS = [
        "results/controlled/blind.md",
        *expand(
            "results/controlled/{cmodel}/audit/summary.md", cmodel=CONTROLLED_MODELS
        ),
    ]

    rule controlled:
        input:
            CONTROLLED_TARGETS,

    rule controlled_blind:
        input:
            manifest=CONTROLLED_MANIFEST,
            features=expand(
                "results/features/{pool}/{group}.parquet",
                pool=CONTROLLED.pool,
                group=CFG.features.groups,
            ),
        output:
            metrics="results/controlled/blind.parquet",
            verdict="results/controlled/blind.verdict.json",
            summary="results/controlled/blind.md",
        log:
            "results/logs/controlled/blind.log",
        benchmark:
            "results/benchmarks/controlled/blind.tsv"
        conda:
            ENV
        params:
            stage=stage_params("controlled_blind"),
        script:
            "../scripts/controlled_blind.py"

    rule controlled_split:
        input:
            f"results/manifests/{CONTROLLED.pool}.parquet",
        output:
            manifest=CONTROLLED_MANIFEST,
            summary=f"results/manifests/{CONTROLLED.dataset}.summary.json",
        log:
            f"results/logs/controlled/split/{CONTROLLED.dataset}.log",
        conda:
            ENV
        params:
            stage=stage_params("controlled_split"),
        script:
            "../scripts/controlled_split.py"

    rule controlled_finetune:
        input:
            manifest=CONTROLLED_MANIFEST,
            model=lambda wc: (
                [f"results/models/{wc.cmodel}"] if wc.cmodel in DEMO_MODELS else []
            ),
        output:
            directory("results/controlled/{cmodel}/adapter"),
        log:
            "results/logs/controlled/finetune/{cmodel}.log",
        benchmark:
            "results/benchmarks/controlled/finetune/{cmodel}.tsv"
        conda:
            ENV
        threads: 1
        params:
            stage=stage_params("controlled_finetune"),
        script:
            "../scripts/controlled_finetune.py"

    rule controlled_audit:
        input:
            manifest=CONTROLLED_MANIFEST,
            adapter="results/controlled/{cmodel}/adapter",
            model=lambda wc: (
                [f"results/models/{wc.cmodel}"] if wc.cmodel in DEMO_MODELS else []
            ),
        output:
            scores="results/controlled/{cmodel}/audit/scores.parquet",
            metrics="results/controlled/{cmodel}/audit/metrics.parquet",
            bounds="results/controlled/{cmodel}/audit/bounds.json",
            summary="results/controlled/{cmodel}/audit/summary.md",
            png=report(
                "results/controlled/{cmodel}/audit/repetitions.png",
                caption="../report/controlled.rst",
                category="6. Controlled audit",
                labels=lambda wc: {"model": wc.cmodel},
            ),
            pdf="results/controlled/{cmodel}/audit/repetitions.pdf",
        log:
            "results/logs/controlled/audit/{cmodel}.log",
        benchmark:
            "results/benchmarks/controlled/audit/{cmodel}.tsv"
        conda:
            ENV
        threads: 1
        params:
            stage=stage_params("controlled_audit"),
        script:
            "../scripts/controlled_audit.py"
