"""LALM adapters (a registry keyed by family), model loading, and the demo models.

``ADAPTERS`` maps a family name (the ``family`` key of a model's config) to
its adapter class; ``load_model`` loads a configured model through
``from_pretrained`` and wraps it. Importing this package imports transformers.
"""

from lalm_audit.models.base import SLICES, ClipDecision, LALMAdapter, apply_clip_policy
from lalm_audit.models.families import ADAPTERS, register
from lalm_audit.models.loading import LoadedModel, load_model

__all__ = [
    "ADAPTERS",
    "SLICES",
    "ClipDecision",
    "LALMAdapter",
    "LoadedModel",
    "apply_clip_policy",
    "load_model",
    "register",
]
