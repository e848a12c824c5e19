"""Logging and progress for long work.

Every workflow job logs to its own file (the rule's ``log:``) and to stderr.
Progress uses tqdm on an interactive terminal and periodic log lines
otherwise, so job logs show how far a long job got without control characters.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger("lalm_audit")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to ``logfile`` (overwritten)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(h)
    root.setLevel(level)
    logging.captureWarnings(True)
    for noisy in ("numba", "matplotlib", "urllib3", "h5py", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", every_s: float = 10.0
) -> Iterator[T]:
    """Iterate with a progress bar on a terminal, or a log line every ``every_s`` seconds otherwise."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=desc, dynamic_ncols=True)
        return
    start = last = time.monotonic()
    done = 0
    for x in items:
        yield x
        done += 1
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            rate = done / (now - start)
            of = f"/{total}" if total else ""
            eta = f", ~{(total - done) / rate:.0f}s left" if total and rate > 0 else ""
            log.info("%s: %d%s done (%.1f/s%s)", desc, done, of, rate, eta)
    log.info("%s: %d items in %.1fs", desc, done, time.monotonic() - start)
