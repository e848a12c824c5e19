"""Per-position statistics of a next-token distribution: the columns of ``TOKEN_STATS``.

:func:`token_stats` is the one place these are computed, in the stage-2 model
pass (on the device, fp32). Every membership indicator is a function of its
output, so indicators never need the model again. Definitions follow
``metrics.md``; with p = softmax(logits_t), y = y_t, q = clamp(p, 1e-10, 1 - 1e-10):

=================  ==============================================================
``logp``           l_t = log q_y
``mink_mu``        mu_t = sum_v p_v log q_v                 (= -H_1)
``mink_sigma``     sigma_t = sqrt(sum_v p_v (log q_v)^2 - mu_t^2)
``renyi_05``       H_0.5 = 2 log sum_v p_v^0.5
``renyi_1``        H_1 = -sum_v p_v log q_v
``renyi_2``        H_2 = -log sum_v p_v^2
``renyi_inf``      H_inf = -log max_v q_v
``mod_entropy``    M_t = -(1 - p_y) log q_y - sum_{v != y} p_v log(1 - q_v)
``mod_renyi_05``   M_0.5 = -2 [(1-p_y) p_y^0.5 - (1-p_y) + sum_{v!=y} p_v (1-p_v)^0.5 - sum_{v!=y} p_v]
``mod_renyi_2``    M_2 = -[(1-p_y) p_y - (1-p_y) + sum_{v!=y} p_v (1-p_v) - sum_{v!=y} p_v]
``prob_gap``       log q_top1 - log q_top2
=================  ==============================================================

The clamp guards every logarithm of a single probability (log p_v, log p_y,
log(1 - p_v)), as VL-MIA does. Power sums (Renyi, modified Renyi) use p
itself: clamping inside a 150k-term sum would add up to 150k * 1e-5 = 1.5 to
sum_v p_v^0.5 (VL-MIA's code clamps there; we keep the exact entropy).

Several statistics come free from shared sums (mu = -H_1; for alpha = 2 the
modified Renyi is (1 - p_y)^2 + sum_{v != y} p_v^2), so the whole set costs
one log-softmax plus a handful of fused passes over the vocabulary.
"""

from __future__ import annotations

import math

import torch

from lalm_audit.schemas import TOKEN_STAT_COLUMNS

EPS = 1e-10
_LOG_LO = math.log(EPS)
_LOG_HI = math.log1p(-EPS)

STAT_NAMES: tuple[str, ...] = tuple(TOKEN_STAT_COLUMNS)


def token_stats(
    logits: torch.Tensor, targets: torch.Tensor | None = None, *, block: int | None = None
) -> dict[str, torch.Tensor]:
    """Per-position statistics of ``logits`` [T, V] against ``targets`` [T].

    A negative target (or ``targets=None``) means "no ground-truth token":
    the position's own argmax is used (audio positions). Returns a dict with
    ``token_ids`` (the y_t used, int64) and every name in ``STAT_NAMES``
    (float32 tensors of shape [T]), on the logits' device, computed in fp32.

    ``block`` rows are processed at a time (default: all on a GPU, 2 on a
    CPU, where a [2, 150k] working set stays in cache and runs several times
    faster than the whole matrix).
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be [T, V], got {tuple(logits.shape)}")
    if logits.shape[-1] < 2:
        raise ValueError("token_stats needs a vocabulary of at least 2 tokens")
    if targets is None:
        targets = torch.full(logits.shape[:1], -1, dtype=torch.long)
    targets = targets.to(logits.device).long()
    if block is None:
        block = logits.shape[0] if logits.is_cuda else CPU_BLOCK
    if logits.shape[0] <= block:
        return _token_stats(logits, targets)
    parts = [
        _token_stats(logits[i : i + block], targets[i : i + block])
        for i in range(0, logits.shape[0], block)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


CPU_BLOCK = 2


def _token_stats(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The computation, written for few passes over [T, V] and no cancellation near p = 1."""
    x = logits.float()
    top2 = x.topk(2, dim=-1).values
    m = top2[:, :1]
    top = x.argmax(dim=-1, keepdim=True)  # first maximal index on ties, like numpy
    y = torch.where(targets >= 0, targets, top[:, 0])[:, None]
    # log-sum-exp by hand, keeping S' = sum_{u != top} exp(x_u - m): then 1 - p_top
    # = S' / (1 + S') is exact where the model is near-certain (members' tokens),
    # while fp32 would round p_top to 1 and log(1 - p_top) to log(0).
    e = x - m
    e.exp_()
    e.scatter_(-1, top, 0.0)
    s_rest = e.sum(-1, keepdim=True)
    log_z = torch.log1p(s_rest)  # log-sum-exp minus m
    p_top = torch.exp(-log_z)
    rest_top = s_rest * p_top  # 1 - p_top
    p = e.mul_(p_top).scatter_(-1, top, p_top)
    lq = (x - (m + log_z)).scatter_(-1, top, -log_z).clamp_(_LOG_LO, _LOG_HI)  # log q

    # Sums over the whole vocabulary.
    p_lq = p * lq
    mu = p_lq.sum(-1)  # sum p log q = -H_1
    s_plq2 = torch.linalg.vecdot(p_lq, lq)  # sum p (log q)^2
    del p_lq
    s_sqrt = p.sqrt().sum(-1)  # sum p^0.5
    py = p.gather(-1, y)[:, 0]
    lqy = lq.gather(-1, y)[:, 0]
    lq_top1 = lq.gather(-1, top)[:, 0]
    lq_top2 = (top2[:, 1] - m[:, 0] - log_z[:, 0]).clamp(_LOG_LO, _LOG_HI)
    del lq

    # Sums over v != y: zero the target's entry (in place) instead of subtracting
    # its term, which would cancel catastrophically when p_y is near 1.
    p_ny = p.scatter_(-1, y, 0.0)
    rest = p_ny.sum(-1)  # 1 - p_y
    s_sq_ny = torch.linalg.vecdot(p_ny, p_ny)  # sum_{v != y} p_v^2
    om = (1.0 - p_ny).scatter_(-1, top, rest_top)  # 1 - p_v (exact at the top token)
    s_sqrt1m_ny = torch.linalg.vecdot(p_ny, om.sqrt().sub_(1.0))  # sum_{v!=y} p_v((1-p_v)^.5 - 1)
    s_log1m_ny = torch.linalg.vecdot(
        p_ny, om.clamp_(EPS, 1.0 - EPS).log_()
    )  # sum_{v!=y} p_v log(1-q_v)

    out = {
        "token_ids": y[:, 0],
        "logp": lqy,
        "mink_mu": mu,
        "mink_sigma": (s_plq2 - mu * mu).clamp_min(0.0).sqrt(),
        "renyi_05": 2.0 * s_sqrt.log(),
        "renyi_1": -mu,
        "renyi_2": -(s_sq_ny + py * py).log(),
        "renyi_inf": -lq_top1,
        "mod_entropy": -rest * lqy - s_log1m_ny,
        # -2 [(1-p_y) p_y^.5 - (1-p_y) + sum_{v!=y} p_v (1-p_v)^.5 - sum_{v!=y} p_v], regrouped
        # with (1-p_y)(p_y^.5 - 1) = -(1-p_y)^2 / (1 + p_y^.5) so nothing near-equal is subtracted.
        "mod_renyi_05": 2.0 * (rest * rest / (1.0 + py.sqrt()) - s_sqrt1m_ny),
        # -[(1-p_y) p_y - (1-p_y) - sum_{v!=y} p_v^2] = (1-p_y)^2 + sum_{v!=y} p_v^2
        "mod_renyi_2": rest * rest + s_sq_ny,
        "prob_gap": lq_top1 - lq_top2,
    }
    return {k: (v if k == "token_ids" else v.float()) for k, v in out.items()}
