"""The LibriSpeech folder layout, written here file by file."""

from pathlib import Path

import pytest

from lalm_audit.config import parse_config
from lalm_audit.errors import DatasetError
from lalm_audit.manifest import build_manifest
from tests.conftest import sine, write


def make_librispeech(root: Path, split: str, speakers: list[str], per_chapter: int = 4) -> None:
    for spk in speakers:
        chap_dir = root / split / spk / "100"
        lines = []
        for u in range(per_chapter):
            utt = f"{spk}-100-{u:04d}"
            write(chap_dir / f"{utt}.flac", sine(150 + 20 * u, dur=0.5))
            lines.append(f"{utt} WORDS OF UTTERANCE {u} BY {spk}")
        (chap_dir / f"{spk}-100.trans.txt").write_text("\n".join(lines) + "\n")


def _cfg(root: Path) -> dict:
    return {
        "datasets": {
            "ls": {
                "loader": "librispeech",
                "root": str(root),
                "member_splits": ["train-clean-100"],
                "nonmember_splits": ["test-clean"],
                "min_items_per_class": 4,
            }
        }
    }


def test_layout_labels_speakers_and_bad_items(in_tmp):
    root = in_tmp / "LibriSpeech"
    make_librispeech(root, "train-clean-100", ["19", "26"])
    make_librispeech(root, "test-clean", ["61", "121"])
    make_librispeech(root, "dev-clean", ["84"])  # not configured: never read
    chap = root / "test-clean" / "61" / "100"
    # a transcript line without audio, audio without a transcript line, a non-UTF-8 line
    with open(chap / "61-100.trans.txt", "ab") as fh:
        fh.write(b"61-100-0009 NO AUDIO FOR THIS LINE\n61-100-0010 CAF\xc9 LINE\n")
    write(chap / "61-100-0010.flac", sine(dur=0.5))
    write(chap / "61-100-0011.flac", sine(dur=0.5))
    res = build_manifest(parse_config(_cfg(root)), "ls")
    k = res.kept.set_index("item_id")
    assert res.summary["kept_members"] == 8 and res.summary["kept_nonmembers"] == 8
    assert k.loc["19-100-0002", "label"] == 1 and k.loc["121-100-0000", "label"] == 0
    assert (
        k.loc["19-100-0002", "speaker_id"] == "19"
        and k.loc["19-100-0002", "source_split"] == "train-clean-100"
    )
    assert k.loc["19-100-0002", "text"] == "WORDS OF UTTERANCE 2 BY 19"
    assert k.loc["19-100-0002", "meta_chapter_id"] == "100"
    assert (
        k.loc["19-100-0002", "audio_path"] == "LibriSpeech/train-clean-100/19/100/19-100-0002.flac"
    )
    reasons = dict(zip(res.rejected["item_id"], res.rejected["reason_code"], strict=True))
    assert reasons == {
        "61-100-0009": "missing_audio",
        "61-100-0010": "bad_text_encoding",
        "61-100-0011": "missing_text",
    }
    assert not any(i.startswith("84-") for i in res.kept["item_id"])
    assert res.summary["items_in"] == 16 + 3


def test_missing_split_folder_names_what_exists(in_tmp):
    root = in_tmp / "LibriSpeech"
    make_librispeech(root, "train-clean-100", ["19"])
    with pytest.raises(
        DatasetError, match=r"split folder 'test-clean'.*found: \['train-clean-100'\]"
    ):
        build_manifest(parse_config(_cfg(root)), "ls")
