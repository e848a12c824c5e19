"""benchmarks/bench_gpu.py's pieces on CPU: full-size configs, the refusal without CUDA, one tiny run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"
_spec = importlib.util.spec_from_file_location("bench_gpu", _PATH)
bench = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bench_gpu"] = bench  # dataclasses resolve their module by name
_spec.loader.exec_module(bench)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("family", "low", "high"),
    # the released checkpoints: Qwen2-Audio-7B has 8.4B parameters, Audio Flamingo 3 8.3B
    [("qwen2_audio", 8.2e9, 8.6e9), ("audio_flamingo3", 8.1e9, 8.5e9)],
)
def test_full_size_architectures_have_the_released_parameter_count(family, low, high):
    n = bench.count_parameters(family, "full")
    assert low < n < high, f"{family}: {n / 1e9:.2f}B"


def test_full_size_processors_take_a_30_s_window_with_128_mel_bins():
    for family in bench.ARCHITECTURES:
        cfg, proc = bench.build_config(family, "full")
        fe = proc.feature_extractor
        assert fe.feature_size == 128 and fe.n_samples == 30 * 16000
        assert cfg.audio_config.num_mel_bins == 128


def test_refuses_to_run_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    built = []
    monkeypatch.setattr(bench, "build_adapter", lambda *a, **k: built.append(a))
    with pytest.raises(SystemExit, match=r"needs a CUDA GPU.*bench_scoring\.py"):
        bench.main(["--models", "qwen2_audio"])
    assert not built  # refused before building anything


@pytest.mark.parametrize("family", list(bench.ARCHITECTURES))
def test_a_tiny_bf16_run_measures_both_stages(family):
    adapter = bench.build_adapter(family, scale="tiny", device="cpu", dtype=torch.bfloat16)
    assert adapter.model.dtype == torch.bfloat16
    clips = bench.make_clips(3, 1.5)
    m = bench.measure(adapter, clips, batch_size=2, max_new_tokens=4)
    assert m.items == 3 and m.batch_size == 2
    assert m.stage1_items_s > 0 and m.stage2_items_s > 0
    assert m.new_tokens_per_item == 4  # forced to full length: equal work at every batch size
    # every scored position: audio frames + prompt + the 4 generated tokens
    n_audio = adapter.encode_generated([clips[0].samples], bench.PROMPT, [[]]).slices[0]
    per_item = n_audio["audio"].size + n_audio["prompt"].size + 4
    assert m.scored_positions_per_item == per_item
    assert m.peak_gib is None
    text = bench.report(family, 123_000_000, [m, m])
    assert "batched / batch 1: stage 1 1.00x, stage 2 1.00x" in text
