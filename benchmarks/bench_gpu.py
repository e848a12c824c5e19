"""GPU readiness: full-size Qwen2-Audio-7B and Audio Flamingo 3 (random weights, bf16), both stages.

One prepared script for a one-GPU machine. For each architecture it builds the
released model's dimensions with random weights in bf16 directly on the GPU
(no download: same FLOPs and memory as the checkpoint, none of its
knowledge), then runs the project's own stage 1 (``pipeline.generate``:
greedy decoding) and stage 2 (``pipeline.score`` on the generated ids: one
teacher-forced pass, the output head in chunks, the statistics in fp32,
``torch.compile``'d as ``scoring.compile_stats: auto`` does) on 30 s clips,
batched and at batch 1, and prints items/s and the peak GPU memory of each.

- Qwen2-Audio-7B: Whisper-large-v3-sized encoder (32 layers, 1,280 wide,
  128 mel bins, 30 s window = 750 audio tokens) + a Qwen-7B-sized LM (32
  layers, 4,096 wide, MLP 11,008, 32 KV heads) with a 156,032-token vocabulary.
- Audio Flamingo 3: the same encoder size + a Qwen2.5-7B-sized LM (28 layers,
  3,584 wide, MLP 18,944, 4 KV heads, 152,064-token embedding) + the two-layer
  projector.

The tokenizer is the tiny test one (a few hundred real tokens): random
weights generate ids anywhere in the vocabulary, which is all the timing
needs. Every generated response is forced to ``--max-new-tokens`` (end of
turn suppressed until then), so batched and batch-1 runs do the same work.

    python benchmarks/bench_gpu.py                      # both models, defaults below
    python benchmarks/bench_gpu.py --models qwen2_audio --items 8 --max-new-tokens 64

Refuses to run without CUDA. Its pieces (configs, the build, the
measurement) run on CPU with ``scale="tiny"`` and are unit-tested there
(``tests/unit/test_bench_gpu.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch

#: (family, transformers model / config / processor classes) of each benchmarked architecture
ARCHITECTURES = {
    "qwen2_audio": (
        "Qwen2AudioForConditionalGeneration",
        "Qwen2AudioConfig",
        "Qwen2AudioProcessor",
    ),
    "audio_flamingo3": (
        "AudioFlamingo3ForConditionalGeneration",
        "AudioFlamingo3Config",
        "AudioFlamingo3Processor",
    ),
}

#: Whisper-large-v3-sized encoder (both released models use one) and the tiny CPU stand-in
_ENCODER = {
    "full": {"d_model": 1280, "layers": 32, "heads": 20, "ffn": 5120, "mels": 128, "window_s": 30},
    "tiny": {"d_model": 32, "layers": 1, "heads": 2, "ffn": 64, "mels": 80, "window_s": 4},
}
#: the released LMs' dimensions; "tiny" for the CPU tests
_TEXT = {
    ("qwen2_audio", "full"): {
        "vocab_size": 156032,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
    },
    ("audio_flamingo3", "full"): {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
    },
}
_TINY_TEXT = {
    "vocab_size": 1024,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
}

PROMPT = "Transcribe the audio."


def text_dims(family: str, scale: str) -> dict[str, Any]:
    if family not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {family!r} (have {sorted(ARCHITECTURES)})")
    if scale not in _ENCODER:
        raise ValueError(f"scale must be 'full' or 'tiny', got {scale!r}")
    return dict(_TINY_TEXT) if scale == "tiny" else dict(_TEXT[(family, scale)])


def build_config(family: str, scale: str = "full") -> tuple[Any, Any]:
    """(model config, processor) of ``family`` at ``scale``; the processor holds the tiny tokenizer."""
    import transformers as tf

    from lalm_audit.models.testing import tiny_model

    _, cfg_cls, proc_cls = ARCHITECTURES[family]
    enc = _ENCODER[scale]
    tok = tiny_model(family)[1].tokenizer  # tiny BPE with the family's special tokens
    fe = tf.WhisperFeatureExtractor(
        feature_size=enc["mels"], sampling_rate=16000, chunk_length=enc["window_s"]
    )
    # 100 mel frames per second, halved by the encoder's strided convolution
    positions = enc["window_s"] * 50
    text = {
        "model_type": "qwen2",
        "tie_word_embeddings": False,
        "pad_token_id": tok.pad_token_id,
        **text_dims(family, scale),
    }
    if family == "qwen2_audio":
        proc = getattr(tf, proc_cls)(feature_extractor=fe, tokenizer=tok)
        audio = {"d_model": enc["d_model"], "encoder_layers": enc["layers"],
                 "encoder_attention_heads": enc["heads"], "encoder_ffn_dim": enc["ffn"],
                 "num_mel_bins": enc["mels"], "max_source_positions": positions}  # fmt: skip
        cfg = getattr(tf, cfg_cls)(
            audio_config=audio,
            text_config={**text, "rope_theta": 10000.0},
            audio_token_id=tok.convert_tokens_to_ids("<|AUDIO|>"),
        )
    else:
        # one 30 s encoder window is all a 30 s clip needs (the released model takes 20)
        proc = getattr(tf, proc_cls)(
            feature_extractor=fe, tokenizer=tok, max_audio_len=enc["window_s"]
        )
        audio = {"model_type": "audioflamingo3_encoder", "hidden_size": enc["d_model"],
                 "num_hidden_layers": enc["layers"], "num_attention_heads": enc["heads"],
                 "intermediate_size": enc["ffn"], "num_mel_bins": enc["mels"],
                 "max_source_positions": positions}  # fmt: skip
        cfg = getattr(tf, cfg_cls)(
            audio_config=audio,
            text_config={**text, "rope_theta": 1e6},
            audio_token_id=tok.convert_tokens_to_ids("<sound>"),
        )
    return cfg, proc


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def count_parameters(family: str, scale: str = "full") -> int:
    """Parameters of the architecture, counted on the meta device (no memory, no init)."""
    import transformers as tf

    cfg, _ = build_config(family, scale)
    with torch.device("meta"):
        model = getattr(tf, ARCHITECTURES[family][0])(cfg)
    return sum(p.numel() for p in model.parameters())


def build_adapter(
    family: str, *, scale: str = "full", device: str = "cuda", dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
) -> Any:  # fmt: skip
    """The family's adapter around a random-weight model built in ``dtype`` on ``device``."""
    import transformers as tf

    from lalm_audit.models import ADAPTERS

    cfg, proc = build_config(family, scale)
    torch.manual_seed(seed)
    # built in place: an 8B model initialized on the CPU in fp32 first would need 32 GB of RAM
    with torch.device(device), _default_dtype(dtype):
        model = getattr(tf, ARCHITECTURES[family][0])(cfg).eval()
    tok = proc.tokenizer
    gc_ = model.generation_config
    gc_.pad_token_id = tok.pad_token_id
    gc_.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    adapter = ADAPTERS[family](model, proc, device=device)
    # random weights may emit the audio placeholder, which stage 2 cannot feed back as text
    gc_.suppress_tokens = sorted(adapter.audio_placeholder_ids())
    return adapter


def make_clips(n: int, seconds: float, *, sr: int = 16000, seed: int = 0) -> list[Any]:
    """``n`` clips of noise-like audio, ``seconds`` long (the benchmark's 30 s: a full window)."""
    from lalm_audit.scoring.pipeline import Clip

    rng = np.random.default_rng(seed)
    return [
        Clip(f"i{i:03d}", (0.1 * rng.standard_normal(int(sr * seconds))).astype(np.float32), False)
        for i in range(n)
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


@dataclass(frozen=True)
class Measurement:
    batch_size: int
    items: int
    stage1_items_s: float
    stage2_items_s: float
    new_tokens_per_item: float
    scored_positions_per_item: float
    peak_gib: float | None  # None off CUDA


def measure(
    adapter: Any,
    clips: Sequence[Any],
    *,
    batch_size: int,
    max_new_tokens: int,
    chunk: int = 256,
    prompt: str = PROMPT,
) -> Measurement:
    """Stage 1 then stage 2 on ``clips`` at ``batch_size``, timed, with the peak GPU memory."""
    from lalm_audit.scoring.pipeline import generate, score, stats_function

    dev = adapter.device
    # equal work at every batch size: no response ends before max_new_tokens
    adapter.model.generation_config.min_new_tokens = max_new_tokens
    stats_fn = stats_function(dev, "auto")
    _reset_peak(dev)
    _sync(dev)
    t0 = time.perf_counter()
    gens = generate(adapter, clips, prompt=prompt, max_new_tokens=max_new_tokens,
                    batch_size=batch_size)  # fmt: skip
    _sync(dev)
    t1 = time.perf_counter()
    ids = dict(zip(gens["item_id"], gens["response_token_ids"], strict=True))
    stats = score(adapter, clips, ids, prompt=prompt, batch_size=batch_size, chunk=chunk,
                  stats_fn=stats_fn)  # fmt: skip
    _sync(dev)
    t2 = time.perf_counter()
    n = len(clips)
    return Measurement(
        batch_size=batch_size,
        items=n,
        stage1_items_s=n / (t1 - t0),
        stage2_items_s=n / (t2 - t1),
        new_tokens_per_item=float(np.mean([len(r) for r in gens["response_token_ids"]])),
        scored_positions_per_item=float(stats["n_tokens"].sum()) / n,
        peak_gib=_peak_gib(dev),
    )


def require_cuda() -> None:
    if not torch.cuda.is_available():
        raise SystemExit(
            "bench_gpu.py needs a CUDA GPU (it builds two 8-billion-parameter models in bf16, "
            "about 17 GB each); none is visible here (torch.cuda.is_available() is False). "
            "On CPU, run benchmarks/bench_scoring.py instead."
        )


def report(family: str, n_params: int, rows: Sequence[Measurement]) -> str:
    lines = [f"\n{family}: {n_params / 1e9:.2f}B parameters, random weights, bf16"]
    lines.append(f"  {'batch':>5} {'items':>5} {'stage 1 items/s':>16} {'stage 2 items/s':>16} "
                 f"{'new tok/item':>12} {'scored pos/item':>15} {'peak GiB':>9}")  # fmt: skip
    for r in rows:
        peak = "-" if r.peak_gib is None else f"{r.peak_gib:.1f}"
        lines.append(f"  {r.batch_size:>5} {r.items:>5} {r.stage1_items_s:>16.3f} "
                     f"{r.stage2_items_s:>16.3f} {r.new_tokens_per_item:>12.0f} "
                     f"{r.scored_positions_per_item:>15.0f} {peak:>9}")  # fmt: skip
    if len(rows) == 2:
        a, b = rows
        lines.append(f"  batched / batch 1: stage 1 {a.stage1_items_s / b.stage1_items_s:.2f}x, "
                     f"stage 2 {a.stage2_items_s / b.stage2_items_s:.2f}x")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    ap.add_argument("--items", type=int, default=16, help="clips per run")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batch1-items", type=int, default=4, help="clips of the batch-1 run")
    ap.add_argument("--seconds", type=float, default=30.0, help="clip length")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--chunk", type=int, default=256, help="positions per head + statistics chunk")
    args = ap.parse_args(argv)
    require_cuda()
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"{args.seconds:g} s clips, {args.max_new_tokens} new tokens per item")  # fmt: skip
    for family in args.models:
        n_params = count_parameters(family)
        t0 = time.perf_counter()
        adapter = build_adapter(family)
        print(f"\n{family}: built in {time.perf_counter() - t0:.0f} s")
        clips = make_clips(args.items, args.seconds)
        # warm-up: CUDA kernels, torch.compile of the statistics (dynamic shapes)
        measure(adapter, clips[:2], batch_size=2, max_new_tokens=4, chunk=args.chunk)
        rows = [
            measure(adapter, clips, batch_size=args.batch_size,
                    max_new_tokens=args.max_new_tokens, chunk=args.chunk),
            measure(adapter, clips[: args.batch1_items], batch_size=1,
                    max_new_tokens=args.max_new_tokens, chunk=args.chunk),
        ]  # fmt: skip
        print(report(family, n_params, rows), flush=True)
        del adapter
        gc.collect()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
