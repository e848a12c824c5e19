"""Features cached by clip content, so datasets that share clips extract each clip once.

Three datasets pointing at the same audio (a corpus audited against two
different splits, say) would otherwise run every feature group three times on
identical samples. Snakemake caches whole files per dataset and cannot see
that; this cache is keyed by what a group's values depend on: the bytes of the
clip (a SHA-256 of the file or the embedded bytes, not its path or item id), the
segment and durations the manifest gives, the group's settings and the package
version. A record is one small JSON file, written atomically (temporary file +
rename), so concurrent jobs can share the folder; two jobs that miss the same
key at once both compute it and write the same record. Failed extractions are
never cached: the next run tries again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lalm_audit import __version__
from lalm_audit.config import stable_hash

# Row fields a group's values depend on besides the clip's bytes.
_AUDIO_FIELDS = ("offset_s", "duration_s", "source_duration_s")
_TEXT_FIELDS = ("text",)


class FeatureCache:
    """Get and put one group's feature records by content key."""

    def __init__(self, root: str | Path, group: str, params: dict[str, Any], *, needs_audio: bool):
        self.dir = Path(root) / group / stable_hash({"params": params, "version": __version__})
        self.needs_audio = needs_audio
        self._digests: dict[str, str] = {}  # path -> digest, for clips many items cut segments from
        self.hits = 0
        self.misses = 0

    def _content(self, row: dict[str, Any]) -> str | None:
        blob = row.get("audio_bytes")
        if isinstance(blob, bytes | bytearray) and len(blob):
            return hashlib.sha256(blob).hexdigest()
        path = row.get("audio_path")
        if not path:
            return None
        if path not in self._digests:
            try:
                with open(path, "rb") as fh:
                    self._digests[path] = hashlib.file_digest(fh, "sha256").hexdigest()
            except OSError:
                return None  # unreadable here: extraction reports it, nothing is cached
        return self._digests[path]

    def key(self, row: dict[str, Any]) -> str | None:
        """The content key of a manifest row, or None when it cannot be computed (not cached)."""
        if self.needs_audio:
            content = self._content(row)
            if content is None:
                return None
            fields = {"content": content, **{f: _plain(row.get(f)) for f in _AUDIO_FIELDS}}
        else:
            fields = {f: _plain(row.get(f)) for f in _TEXT_FIELDS}
        blob = json.dumps(fields, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str | None) -> dict[str, Any] | None:
        if key is None:
            return None
        try:
            rec = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, or a torn file from a killed writer: recompute
            self.misses += 1
            return None
        self.hits += 1
        return rec

    def put(self, key: str | None, feats: dict[str, Any]) -> None:
        if key is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({k: _plain(v) for k, v in feats.items()}, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _plain(v: Any) -> Any:
    """JSON-able scalars (numpy numbers become Python numbers; NaN stays NaN)."""
    if hasattr(v, "item") and callable(v.item):
        try:
            return v.item()
        except (TypeError, ValueError):
            return str(v)
    return v
