# lalm-audit: membership-inference auditing of Large Audio Language Models.
# Table of contents only; all logic lives in the lalm_audit package (src/).
#
#   snakemake --profile profiles/local                          # the demo audit
#   snakemake --profile profiles/local --configfile my.yaml     # your data
#   snakemake blind_only --profile profiles/local --configfile my.yaml  # blind baseline only


import os

from snakemake.utils import min_version

min_version("9.0")


# No config on the command line: run the embedded demo audit.
if not config:

    configfile: os.path.join(workflow.basedir, "config", "demo.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/blind.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/perturb.smk"
include: "workflow/rules/scoring.smk"
include: "workflow/rules/indicators.smk"
include: "workflow/rules/mia.smk"
include: "workflow/rules/disentangle.smk"
include: "workflow/rules/correlation.smk"
include: "workflow/rules/controlled.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        CONTROLLED_TARGETS,
