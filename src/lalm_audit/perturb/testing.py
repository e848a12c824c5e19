"""Test builders: a tiny random-weight VITS text-to-speech model saved to a local folder (no hub)."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_vits(folder: str | Path, seed: int = 0, sampling_rate: int = 16000) -> Path:
    """Save a ~100k-parameter VITS model + character tokenizer that ``pipeline('text-to-speech')`` loads."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list("_ abcdefghijklmnopqrstuvwxyz.,'")
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    tok = VitsTokenizer(
        str(folder / "vocab.json"),
        pad_token="_",
        unk_token="_",
        add_blank=True,
        normalize=True,
        phonemize=False,
    )
    cfg = VitsConfig(
        vocab_size=len(chars), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64, flow_size=32,
        spectrogram_bins=65, upsample_initial_channel=32, upsample_rates=[8, 8], upsample_kernel_sizes=[16, 16],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2, posterior_encoder_num_wavenet_layers=2, duration_predictor_num_flows=2,
        depth_separable_num_layers=2, sampling_rate=sampling_rate,
    )  # fmt: skip
    torch.manual_seed(seed)
    VitsModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
