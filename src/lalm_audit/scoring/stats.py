"""Per-position statistics of a next-token distribution: the columns of ``TOKEN_STATS``.

:func:`token_stats` is the one place these are computed, in the stage-2 model
pass (on the device, fp32). Every membership indicator is a function of its
output, so indicators never need the model again. Definitions follow
``metrics.md``; with p = softmax(logits_t), y = y_t:

=================  ==============================================================
``logp``           l_t = log p_y                            (unclamped log-softmax)
``mink_mu``        mu_t = sum_v p_v log p_v                 (= -H_1)
``mink_sigma``     sigma_t = sqrt(sum_v p_v (log p_v - mu_t)^2)
``renyi_05``       H_0.5 = 2 log sum_v p_v^0.5
``renyi_1``        H_1 = -sum_v p_v log p_v
``renyi_2``        H_2 = -log sum_v p_v^2
``renyi_inf``      H_inf = -log max_v p_v
``mod_entropy``    M_t = -(1 - p_y) log p_y - sum_{v != y} p_v log max(1 - p_v, 1e-10)
``mod_renyi_05``   M_0.5 = -2 [(1-p_y) p_y^0.5 - (1-p_y) + sum_{v!=y} p_v (1-p_v)^0.5 - sum_{v!=y} p_v]
``mod_renyi_2``    M_2 = -[(1-p_y) p_y - (1-p_y) + sum_{v!=y} p_v (1-p_v) - sum_{v!=y} p_v]
``prob_gap``       log p_top1 - log p_top2                  (= logit_top1 - logit_top2)
=================  ==============================================================

Numerics (docs/numerics.md has each choice, the peers' and the measured errors):

- no clamp of log p: an improbable target keeps its -40 instead of tying at
  log 1e-10 = -23.03 with every other improbable one. The one clamp is
  log(1 - p_v) at 1e-10 (VL-MIA's), the log of a true zero when p_v rounds to 1;
- everything near 1 is written through S' = sum_{v != top} exp(x_v - x_top),
  which fp32 holds to full relative precision however confident the model is:
  p_top = 1 / (1 + S'), 1 - p_top = S' / (1 + S'), H_inf = log1p(S'),
  H_2 = 2 log1p(S') - log1p(sum_{v != top} exp(2 (x_v - x_top))) and
  H_0.5 = 2 log1p(sum_{v != top} exp((x_v - x_top) / 2)) - log1p(S');
- sigma in two passes (the mean first, then the spread about it): the one-pass
  sum p (log p)^2 - mu^2 subtracts two numbers of ~142 on a near-uniform
  150k-token row and keeps none of the digits of a sigma of 0.01;
- the gap from the logits themselves, exact to one rounding.
"""

from __future__ import annotations

import torch

from lalm_audit.schemas import TOKEN_STAT_COLUMNS

#: VL-MIA's floor for 1 - p_v inside log(1 - p_v) (the modified entropies)
EPS = 1e-10
#: stands in for x_v - x_top of a -inf logit; exp() of it is 0 in fp32 as of -inf, and
#: being finite, 0 * it is 0 in the sums (any finite logit's d_v is far above it)
_D_FLOOR = -1e30

STAT_NAMES: tuple[str, ...] = tuple(TOKEN_STAT_COLUMNS)


def token_stats(
    logits: torch.Tensor, targets: torch.Tensor | None = None, *, block: int | None = None
) -> dict[str, torch.Tensor]:
    """Per-position statistics of ``logits`` [T, V] against ``targets`` [T].

    A negative target (or ``targets=None``) means "no ground-truth token":
    the position's own argmax is used (audio positions). Returns a dict with
    ``token_ids`` (the y_t used, int64) and every name in ``STAT_NAMES``
    (float32 tensors of shape [T]), on the logits' device, computed in fp32.

    ``block`` rows are processed at a time (default: all on a GPU; on a CPU,
    :func:`cpu_block`: about 150k logits per block, whose working set stays
    in cache and runs several times faster than the whole matrix).
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be [T, V], got {tuple(logits.shape)}")
    if logits.shape[-1] < 2:
        raise ValueError("token_stats needs a vocabulary of at least 2 tokens")
    if targets is None:
        targets = torch.full(logits.shape[:1], -1, dtype=torch.long)
    targets = targets.to(logits.device).long()
    if block is None:
        block = logits.shape[0] if logits.is_cuda else cpu_block(logits.shape[-1])
    if logits.shape[0] <= block:
        return _token_stats(logits, targets)
    parts = [
        _token_stats(logits[i : i + block], targets[i : i + block])
        for i in range(0, logits.shape[0], block)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


#: logits per block on a CPU: a [2, 151936] block for Qwen2's vocabulary, [195, 768] for the
#: demo's. Measured on one thread: at V = 768, 2 rows per block cost 599 us a position and
#: 195 rows 108 us (the per-call overhead of ~20 small ops dominated); at V = 151,936,
#: 2 rows beat 16 and the whole matrix (the working set must stay in cache).
CPU_BLOCK_LOGITS = 150_000
CPU_MIN_BLOCK = 2


def cpu_block(vocab: int) -> int:
    """Rows of logits per :func:`_token_stats` call on a CPU for a vocabulary of ``vocab``."""
    return max(CPU_MIN_BLOCK, CPU_BLOCK_LOGITS // vocab)


def _token_stats(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The computation: few passes over [T, V], nothing near-equal subtracted, no clamp of log p."""
    x = logits.float()
    top2 = x.topk(2, dim=-1).values
    top = x.argmax(dim=-1, keepdim=True)  # first maximal index on ties, like numpy
    y = torch.where(targets >= 0, targets, top[:, 0])[:, None]
    # d_v = x_v - x_top = log p_v + log Z: exact where it matters (Sterbenz near the top).
    # A -inf logit (a probability that is exactly 0) becomes a finite floor so that its
    # p log p terms are 0 * finite = 0, never 0 * inf = nan; its own log p is that floor.
    d = (x - top2[:, :1]).clamp_min_(_D_FLOOR)
    e = d.exp().scatter_(-1, top, 0.0)  # exp(d_v) for v != top
    s_rest = e.sum(-1, keepdim=True)  # S' = Z / exp(x_top) - 1, to full relative precision
    s_sq_rest = torch.linalg.vecdot(e, e)  # sum_{v != top} exp(2 d_v)
    s_sqrt_rest = e.sqrt().sum(-1)  # sum_{v != top} exp(d_v / 2)
    log_z = torch.log1p(s_rest)  # log Z - x_top = H_inf
    p_top = 1.0 / (1.0 + s_rest)
    rest_top = s_rest * p_top  # 1 - p_top, exact where fp32 rounds p_top to 1
    p = e.mul_(p_top).scatter_(-1, top, p_top)
    lqy = d.gather(-1, y)[:, 0] - log_z[:, 0]  # log p_y

    # mu = sum p log p = sum p d - log Z; sigma about the mean of d (a shift of log p by
    # log Z changes no deviation), so log Z's rounding never enters the spread.
    mu_d = torch.linalg.vecdot(p, d)
    dev = d.sub_(mu_d[:, None])
    s_dev2 = torch.linalg.vecdot(p * dev, dev)  # p * dev first: 0 * floor stays 0
    del dev, d
    mu = mu_d - log_z[:, 0]

    py = p.gather(-1, y)[:, 0]
    # Sums over v != y: zero the target's entry (in place) instead of subtracting its
    # term, which would cancel catastrophically when p_y is near 1.
    p_ny = p.scatter_(-1, y, 0.0)
    rest = p_ny.sum(-1)  # 1 - p_y
    s_sq_ny = torch.linalg.vecdot(p_ny, p_ny)  # sum_{v != y} p_v^2
    # log(1 - p_v): log1p(-p_v) keeps a p_v of 1e-6 (fp32's 1 - p_v would not); at the top
    # token, log(1 - p_top) from S'. The top is the only v whose 1 - p_v can be a true
    # zero (every other p_v <= 1/2): VL-MIA's clamp at 1e-10 applies there.
    l1m = torch.log1p(-p_ny).scatter_(-1, top, rest_top.clamp_min(EPS).log())
    s_log1m_ny = torch.linalg.vecdot(p_ny, l1m)
    del l1m
    # 1 - (1 - p_v)^0.5 = p_v / (1 + (1 - p_v)^0.5): no cancellation for small p_v
    om = (1.0 - p_ny).scatter_(-1, top, rest_top)
    s_half_ny = torch.linalg.vecdot(p_ny, p_ny / om.sqrt_().add_(1.0))
    del om

    out = {
        "token_ids": y[:, 0],
        "logp": lqy,
        "mink_mu": mu,
        "mink_sigma": s_dev2.clamp_min(0.0).sqrt(),
        # sum p^0.5 = (1 + sum_{v!=top} e^{d_v/2}) / Z^0.5 ; sum p^2 = (1 + sum e^{2 d_v}) / Z^2
        "renyi_05": 2.0 * torch.log1p(s_sqrt_rest) - log_z[:, 0],
        "renyi_1": -mu,
        "renyi_2": 2.0 * log_z[:, 0] - torch.log1p(s_sq_rest),
        "renyi_inf": log_z[:, 0],
        "mod_entropy": -rest * lqy - s_log1m_ny,
        # -2 [(1-p_y) p_y^.5 - (1-p_y) + sum_{v!=y} p_v (1-p_v)^.5 - sum_{v!=y} p_v], regrouped:
        # (1-p_y)(1 - p_y^.5) = (1-p_y)^2 / (1 + p_y^.5) and likewise for each v, so nothing
        # near-equal is subtracted.
        "mod_renyi_05": 2.0 * (rest * rest / (1.0 + py.sqrt()) + s_half_ny),
        # -[(1-p_y) p_y - (1-p_y) - sum_{v!=y} p_v^2] = (1-p_y)^2 + sum_{v!=y} p_v^2
        "mod_renyi_2": rest * rest + s_sq_ny,
        "prob_gap": top2[:, 0] - top2[:, 1],
    }
    return {k: (v if k == "token_ids" else v.float()) for k, v in out.items()}
