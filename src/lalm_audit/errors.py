"""Errors a user can act on: each names the thing at fault, the problem and the fix."""

from __future__ import annotations


class LalmAuditError(Exception):
    """Base class for errors raised on bad configuration or bad input."""


class ConfigError(LalmAuditError):
    """The configuration is invalid (unknown key, wrong type, impossible value)."""


class DatasetError(LalmAuditError):
    """A dataset cannot be used as configured.

    The message always names the dataset, the problem and a fix, e.g.
    ``dataset 'libri': only members remain after validation (0 non-members); fix: ...``.
    """

    def __init__(self, dataset: str, problem: str, fix: str):
        self.dataset = dataset
        self.problem = problem
        self.fix = fix
        super().__init__(f"dataset {dataset!r}: {problem}. Fix: {fix}")


class AudioError(LalmAuditError):
    """One audio item cannot be decoded; ``code`` is the rejection reason code."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)
