"""The stored-statistics path equals computing every indicator from full logits."""

import numpy as np
import pandas as pd
import torch

from lalm_audit.indicators import build_indicators, compute_scores
from lalm_audit.schemas import TOKEN_STATS
from lalm_audit.scoring.stats import token_stats
from tests.unit.test_indicators import naive_stats


def test_indicators_from_stored_stats_equal_indicators_from_full_logits():
    rng = np.random.default_rng(0)
    logits = torch.tensor(
        rng.normal(size=(3, 9, 50)) * 3, dtype=torch.float32
    )  # 3 items, 9 positions, V = 50
    targets = torch.tensor(rng.integers(0, 50, size=(3, 9)))
    inds = build_indicators(k_grid=(0, 10, 50, 100))
    stored, reference = [], []
    for i in range(3):
        st = token_stats(logits[i], targets[i])  # what stage 2 stores ...
        row = {"item_id": f"i{i}", "slice": "response", "n_tokens": 9, "token_ids": st["token_ids"].tolist(), "text": "abc",
               **{k: st[k].numpy().astype(np.float32).tolist() for k in st if k != "token_ids"}}  # fmt: skip
        stored.append(row)
        p = torch.softmax(
            logits[i].double(), -1
        ).numpy()  # ... versus metrics.md on the full distribution
        ref = naive_stats(p, targets[i].numpy())
        reference.append({"item_id": f"i{i}", "slice": "response", "n_tokens": 9, "token_ids": targets[i].tolist(), "text": "abc",
                          **{k: v.tolist() for k, v in ref.items()}})  # fmt: skip
    TOKEN_STATS.check(pd.DataFrame(stored))
    a = compute_scores(pd.DataFrame(stored), inds, slices=["response"]).set_index(
        ["item_id", "indicator"]
    )["score"]
    b = compute_scores(pd.DataFrame(reference), inds, slices=["response"]).set_index(
        ["item_id", "indicator"]
    )["score"]
    assert len(a) == len(b) == 3 * len(inds)
    np.testing.assert_allclose(a.loc[b.index].to_numpy(), b.to_numpy(), rtol=1e-4, atol=1e-5)
