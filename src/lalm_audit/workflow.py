"""Glue between Snakemake jobs and the package: what every ``workflow/scripts/*.py`` adapter calls first."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from lalm_audit import stages
from lalm_audit.config import Config, parse_config
from lalm_audit.errors import LalmAuditError
from lalm_audit.logs import setup_logging


def start_job(smk: Any) -> Config:
    """Set up the job's log file and thread limits; return the typed config.

    With ``LALM_AUDIT_CONFIG_GUARD=1`` the config comes back guarded by the job's stage contract
    (:func:`lalm_audit.stages.guard`): a read the stage did not declare fails the job.
    """
    setup_logging(smk.log[0] if smk.log else None)
    limit_threads(int(getattr(smk, "threads", 1) or 1))
    sys.excepthook = _log_failure
    cfg = parse_config(dict(smk.config))
    if stages.guard_enabled():
        return stages.guard(cfg, smk.rule, **dict(smk.wildcards.items()))
    return cfg


def _log_failure(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """A job's error goes to its log file: one line for input errors, the traceback for bugs."""
    if isinstance(exc, LalmAuditError):
        logging.getLogger("lalm_audit").error("%s", exc)
    else:
        logging.getLogger("lalm_audit").error("job failed", exc_info=(kind, exc, tb))


def limit_threads(n: int) -> None:
    """Keep BLAS/OpenMP/torch inside the job's thread budget (Snakemake's ``threads:``)."""
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        os.environ[var] = str(n)
    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(n)
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        pass


def split_paths(names: list[str], files: list[str]) -> dict[str, str | None]:
    """Split name -> retained-items file (``full`` has none and is always first)."""
    out: dict[str, str | None] = {}
    files = list(files)
    for name in names:
        out[name] = None if name == "full" else files.pop(0)
    return out
