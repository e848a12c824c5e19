"""Stage-2 scoring benchmark: pipeline throughput, and what the per-token statistics cost.

Prints, in one run, on the same items and the same random-weight model:

1. stage-2 throughput (items/s) of the pipeline (batched, length-grouped,
   hidden states -> output head in chunks -> statistics) against a bare
   transformers loop (batch 1, ``model(**inputs)`` forward only, full logits,
   no statistics);
2. the cost of the per-token statistics as a fraction of the forward pass
   (model forward + output head on the scored positions), for a model with a
   realistic vocabulary (151,936 tokens, Qwen2's) and hidden size (1,024),
   tiny depth (2 layers): the configuration where the statistics weigh the
   most, because the vocabulary dominates the work.

Runs unchanged on a GPU: ``python benchmarks/bench_scoring.py --device cuda``
(bf16 weights, statistics in fp32, torch.compile of the statistics as in
``scoring.compile_stats: auto``). No download: the model is built from a
config, the tokenizer trained on the spot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch


def build(vocab: int, hidden: int, layers: int, device: str, dtype: torch.dtype):
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    from lalm_audit.models.families import Qwen2AudioAdapter
    from lalm_audit.models.testing import TINY_CHUNK_S, tiny_model

    _, proc = tiny_model("qwen2_audio")  # processor + tokenizer (320 real tokens)
    tok = proc.tokenizer
    heads = max(2, hidden // 64)
    cfg = Qwen2AudioConfig(
        audio_config={
            "d_model": 256,
            "encoder_layers": 2,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 1024,
            "num_mel_bins": 80,
            "max_source_positions": TINY_CHUNK_S * 50,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": vocab,
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": max(1, heads // 4),
            "intermediate_size": int(hidden * 2.75),
            "tie_word_embeddings": False,
            "pad_token_id": tok.pad_token_id,
        },
        audio_token_id=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(cfg).to(device=device, dtype=dtype).eval()
    return Qwen2AudioAdapter(model, proc, device=device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--items", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=256, help="positions per head+statistics chunk")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from lalm_audit.models.testing import TINY_TEXTS
    from lalm_audit.scoring.pipeline import Clip, score, stats_function

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    dtype = (
        (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        if dev.type == "cuda"
        else torch.float32
    )
    ad = build(args.vocab, args.hidden, args.layers, args.device, dtype)
    rng = np.random.default_rng(0)
    clips = [
        Clip(
            f"i{i:03d}",
            (0.1 * rng.standard_normal(int(16000 * rng.uniform(1.5, 3.9)))).astype(np.float32),
            False,
        )
        for i in range(args.items)
    ]
    texts = {c.item_id: TINY_TEXTS[3 + i % 5] for i, c in enumerate(clips)}
    prompt = "Transcribe the audio."
    stats_fn = stats_function(dev, "auto")
    n_params = sum(p.numel() for p in ad.model.parameters())
    print(
        f"model: Qwen2-Audio architecture, vocab {args.vocab}, hidden {args.hidden}, "
        f"{args.layers} text layers, {n_params / 1e6:.0f}M parameters, {dtype}, {args.device}, "
        f"{torch.get_num_threads()} thread(s)"
    )

    # --- 1. throughput: pipeline vs bare loop ---------------------------------------------
    def pipeline() -> None:
        score(ad, clips, texts, prompt=prompt, batch_size=args.batch_size, chunk=args.chunk,
              stats_fn=stats_fn)  # fmt: skip
        sync(args.device)

    head, _ = ad.render_prompt(prompt)

    @torch.inference_mode()
    def bare() -> None:
        for c in clips:
            inputs = ad.processor(text=head + texts[c.item_id], audio=c.samples,
                                  sampling_rate=16000, return_tensors="pt")  # fmt: skip
            ad.model(**ad.to_device(dict(inputs)))
        sync(args.device)

    pipeline()  # warm-up (and compilation on GPU)
    bare()
    t_pipe, t_bare = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        pipeline()
        t_pipe.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare()
        t_bare.append(time.perf_counter() - t0)
    ips_pipe = args.items / statistics.median(t_pipe)
    ips_bare = args.items / statistics.median(t_bare)
    print(f"\n1. stage-2 throughput on {args.items} items (median of {args.repeats} runs)")
    print(
        f"   {f'pipeline (batch {args.batch_size}, forward + all statistics)':52s} {ips_pipe:8.2f} items/s"
    )
    print(f"   {'bare transformers loop (batch 1, forward only)':52s} {ips_bare:8.2f} items/s")
    print(f"   ratio pipeline / bare: {ips_pipe / ips_bare:.2f}x")

    # --- 2. statistics vs forward, per batch ---------------------------------------------
    fwd, st = [], []
    n_pos = 0
    for s in range(0, len(clips), args.batch_size):
        batch = clips[s : s + args.batch_size]
        enc = ad.encode_teacher_forced(
            [c.samples for c in batch], prompt, [texts[c.item_id] for c in batch]
        )
        b_idx, p_idx, tgt = [], [], []
        for b, sl in enumerate(enc.slices):
            for name, tok in sl.items():
                p = tok if name == "audio" else tok - 1
                b_idx += [b] * len(p)
                p_idx += p.tolist()
                tgt += [-1] * len(p) if name == "audio" else enc.input_ids[b, tok].tolist()
        targets = torch.tensor(tgt, device=ad.device)
        for rep in range(args.repeats + 1):
            sync(args.device)
            t0 = time.perf_counter()
            hidden = ad.hidden_states(enc)
            h = hidden[torch.tensor(b_idx), torch.tensor(p_idx)]
            logits = [
                ad.logits_from_hidden(h[i : i + args.chunk])
                for i in range(0, h.shape[0], args.chunk)
            ]
            sync(args.device)
            t1 = time.perf_counter()
            for i, lg in enumerate(logits):
                stats_fn(lg, targets[i * args.chunk : (i + 1) * args.chunk])
            sync(args.device)
            t2 = time.perf_counter()
            if rep:  # the first round warms up
                fwd.append(t1 - t0)
                st.append(t2 - t1)
        n_pos += len(p_idx)
    f, s_ = sum(fwd) / args.repeats, sum(st) / args.repeats
    print(f"\n2. per-token statistics vs the forward pass ({n_pos} scored positions)")
    print(
        f"   {'forward (model + output head on scored positions)':52s} {f * 1e3 / n_pos:8.3f} ms/position"
    )
    print(
        f"   {'statistics (11 per position + target id, fp32)':52s} {s_ * 1e3 / n_pos:8.3f} ms/position"
    )
    print(f"   statistics / forward = {s_ / f:.1%} (target <= 10%)")


if __name__ == "__main__":
    main()
