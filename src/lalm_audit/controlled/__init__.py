"""Controlled-membership audits: randomized splits, LoRA fine-tunes, canaries and privacy bounds.

A post-hoc audit of a released model can say "distinguishable", never
"trained on". Here membership is assigned at random (:mod:`.split`), the
model is fine-tuned on the members (:mod:`.finetune`), and the audit's power
is measured with exact labels; only then are epsilon lower bounds computed
(:mod:`.privacy`). :mod:`.canaries` makes unique utterances a data owner can
mix into a fine-tuning set and check for later.
"""

from lalm_audit.controlled.split import (
    ControlledSplit,
    PostHocAuditError,
    draw_controlled,
    require_controlled,
)

__all__ = ["ControlledSplit", "PostHocAuditError", "draw_controlled", "require_controlled"]
