"""The LibriSpeech folder layout: ``<root>/<split>/<speaker>/<chapter>/<spk>-<chap>-<utt>.flac``
with one ``<spk>-<chap>.trans.txt`` per chapter (``<utt-id> <TRANSCRIPT>`` per line)."""

from __future__ import annotations

from pathlib import Path

from lalm_audit.config import LibriSpeechDataset
from lalm_audit.errors import DatasetError
from lalm_audit.manifest.base import Candidate, LoadResult, Rejection, decode_text, display_path


def load_librispeech(name: str, cfg: LibriSpeechDataset) -> LoadResult:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DatasetError(
            name,
            f"root folder {cfg.root!r} does not exist",
            f"point datasets.{name}.root at the LibriSpeech folder",
        )
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    splits = [*cfg.member_splits, *cfg.nonmember_splits]
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise DatasetError(
                name,
                f"split folder {split!r} is not under {cfg.root!r} (found: {present})",
                f"fix datasets.{name}.member_splits/nonmember_splits or root",
            )
        for chapter_dir in sorted(p for p in split_dir.glob("*/*") if p.is_dir()):
            speaker, chapter = chapter_dir.parent.name, chapter_dir.name
            # Every line is kept (a second line for one utterance becomes a duplicate_id
            # rejection), so items in = source lines + audio files without a line.
            texts: dict[str, list[tuple[str | None, str | None, str]]] = {}
            for trans in sorted(chapter_dir.glob("*.trans.txt")):
                try:
                    lines = trans.read_bytes().splitlines()
                except OSError as exc:
                    raise DatasetError(
                        name, f"cannot read {display_path(trans)} ({exc})", "check its permissions"
                    ) from None
                for lineno, raw in enumerate(lines, start=1):
                    if not raw.strip():
                        continue
                    utt, _, rest = raw.strip().partition(b" ")
                    text, err = decode_text(rest.strip())
                    # Bad bytes survive as surrogates: validation rejects the id by name.
                    utt_id = utt.decode("utf-8", errors="surrogateescape")
                    texts.setdefault(utt_id, []).append(
                        (text, err, f"{display_path(trans)}:{lineno}")
                    )
            audio = {
                p.name[: -len(cfg.audio_ext) - 1]: p
                for p in sorted(chapter_dir.glob(f"*.{cfg.audio_ext}"))
            }
            for utt in sorted(set(texts) | set(audio)):
                if utt not in texts:
                    rejected.append(
                        Rejection(
                            display_path(audio[utt]),
                            utt,
                            "missing_text",
                            f"{audio[utt].name} has no line in the chapter's .trans.txt",
                        )
                    )
                    continue
                path = audio.get(utt)
                for text, err, src in texts[utt]:
                    candidates.append(
                        Candidate(
                            source=src,
                            item_id=utt,
                            audio_path=display_path(
                                path if path else chapter_dir / f"{utt}.{cfg.audio_ext}"
                            ),
                            text=text,
                            text_error=err,
                            speaker_id=speaker,
                            source_split=split,
                            meta={"chapter_id": chapter},
                        )
                    )
    return LoadResult(candidates, rejected)
