"""Token log-probs, entropy and the clipped policy-gradient loss used by the GRPO learner.

Shapes: ``N`` sequences, ``T`` response positions, ``V`` vocabulary. ``mask [N, T]`` marks the
response tokens that count (nonzero = valid); everything else is ignored and never produces NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from empathy_ray.algo.kl import approx_kl
from empathy_ray.algo.masked import masked_mean, masked_sum
from empathy_ray.algo.registry import Registry

__all__ = [
    "AGG_MODES",
    "Aggregation",
    "agg_weight",
    "aggregate",
    "entropy_from_logits",
    "logprobs_from_logits",
    "masked_mean",
    "masked_sum",
    "policy_loss",
    "register_agg",
    "sampled_vocab",
    "tempered",
]

AggFn = Callable[..., Tensor]  # (x [N, T], mask [N, T][, max_len]) -> scalar

# What an aggregation divides by, counted from the mask [N, T]: the weight of a micro-batch in the step.
AVERAGES_OVER: dict[str, Callable[[Tensor], int]] = {
    "tokens": lambda mask: int(mask.bool().sum()),
    "sequences": lambda mask: int(mask.bool().any(dim=-1).sum()),  # rows with at least one valid token
    "rows": lambda mask: mask.shape[0],
}


@dataclass(frozen=True)
class Aggregation:
    """A registered loss aggregation and what it needs."""

    fn: AggFn
    uses_max_len: bool  # takes the generation budget (the learner passes rl.rollout.max_new_tokens)
    averages_over: str  # a key of AVERAGES_OVER: what `fn` divides its sum by


AGG_MODES: Registry[Aggregation] = Registry(
    "loss aggregation", "add one with @register_agg in empathy_ray/algo/losses.py"
)


def register_agg(
    name: str, uses_max_len: bool = False, averages_over: str = "tokens"
) -> Callable[[AggFn], AggFn]:
    """Decorator: make ``fn(x, mask[, max_len]) -> scalar`` selectable as ``rl.algo.agg``.

    ``averages_over`` names what ``fn`` divides a sum by ("tokens", "sequences" or "rows"): the learner
    weighs each micro-batch's loss by that count over the step's total (``agg_weight``), which makes the
    split batch's gradient the whole batch's for any aggregation of the form sum / additive count."""
    if averages_over not in AVERAGES_OVER:
        raise ValueError(f"register_agg({name!r}): averages_over must be one of {sorted(AVERAGES_OVER)}")

    def add(fn: AggFn) -> AggFn:
        AGG_MODES.add(name, Aggregation(fn, uses_max_len, averages_over))
        return fn

    return add


def agg_weight(agg: str, mask: Tensor) -> int:
    """How much a micro-batch with ``mask [N, T]`` weighs in the step's loss under ``agg``: the count its
    aggregation divides by. ``sum_k aggregate(x_k, m_k) * w_k / sum_k w_k`` equals ``aggregate`` of the
    whole batch for the registered modes (token_mean: tokens, seq_mean: non-empty sequences,
    seq_sum_norm: rows), whatever the split."""
    return AVERAGES_OVER[AGG_MODES[agg].averages_over](mask)


def tempered(logits: Tensor, temperature: float) -> Tensor:
    """``logits / temperature``: the distribution a sampler at that temperature draws from (before any
    top-p / top-k truncation). Temperature 0 means greedy decoding, which has no distribution of its
    own: the logits are returned unchanged (temperature 1)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    return logits if temperature in (0.0, 1.0) else logits / temperature


def sampled_vocab(logits: Tensor, tokenizer_size: int | None) -> Tensor:
    """The logits of the ids a sampler can draw: embedding rows past the tokenizer (Qwen pads 151,665
    ids to 151,936 rows) are dropped, as the rollout engines mask them, so log-probs and entropy span
    the distribution the samples came from. None, or no padded rows: the logits unchanged."""
    if tokenizer_size is None or tokenizer_size >= logits.shape[-1]:
        return logits
    return logits[..., :tokenizer_size]


# Rows of [rows, V] processed at once. With V ~ 152k a float32 chunk is ~300 MiB: big enough to keep
# the GPU busy, small enough that the full-size float32 log_softmax copy never exists.
DEFAULT_CHUNK_ROWS = 512


def _compute_dtype(logits: Tensor) -> torch.dtype:
    """bf16/fp16 logits are upcast per chunk so log-probs (and PPO ratios built from them) are float32."""
    return torch.promote_types(logits.dtype, torch.float32)


def _as_3d(logits: Tensor) -> Tensor:
    """View ``[..., T, V]`` as ``[A, T, V]`` (``[R, V]`` becomes ``[1, R, V]``) without copying the common
    ``[N, T, V]`` case, including non-contiguous slices such as ``logits[:, :-1]``."""
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape [..., V], got {tuple(logits.shape)}")
    return logits[None] if logits.dim() == 2 else logits.reshape(-1, *logits.shape[-2:])


def _blocks(a: int, t: int, chunk_rows: int) -> Iterator[tuple[slice, slice]]:
    """Index blocks of about ``chunk_rows`` positions over an ``[a, t]`` grid (whole rows when t is short)."""
    rows_per_block = max(1, chunk_rows // max(t, 1))
    cols_per_block = min(t, chunk_rows) if t else 1
    for i in range(0, a, rows_per_block):
        for j in range(0, t, cols_per_block):
            yield slice(i, i + rows_per_block), slice(j, j + cols_per_block)


class _SampledLogProb(torch.autograd.Function):
    """``log_softmax(logits)[label]`` that saves only the logits for backward and recomputes softmax.

    The naive ``log_softmax(logits.float()).gather(...)`` keeps a float32 ``[N, T, V]`` tensor alive for
    backward; here the extra memory is one ``[chunk_rows, V]`` block at a time.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, labels: Tensor, chunk_rows: int) -> Tensor:  # type: ignore[override]
        valid = labels >= 0
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        vocab = logits.shape[-1]
        out = torch.empty(labels.shape, dtype=_compute_dtype(logits), device=logits.device)
        for rows, cols in _blocks(*labels.shape, chunk_rows):
            block = logits[rows, cols].reshape(-1, vocab).to(out.dtype)
            picked = block.gather(-1, safe[rows, cols].reshape(-1, 1)).squeeze(-1)
            out[rows, cols] = (picked - torch.logsumexp(block, dim=-1)).view_as(out[rows, cols])
        ctx.save_for_backward(logits, safe, valid)
        ctx.chunk_rows = chunk_rows
        return torch.where(valid, out, torch.zeros_like(out))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        logits, safe, valid = ctx.saved_tensors
        vocab = logits.shape[-1]
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        g_all = torch.where(valid, grad_out, torch.zeros_like(grad_out))
        for rows, cols in _blocks(*safe.shape, ctx.chunk_rows):
            g = g_all[rows, cols].reshape(-1, 1)
            # d logp[label] / d logits = onehot(label) - softmax(logits)
            block = torch.softmax(logits[rows, cols].reshape(-1, vocab).to(g.dtype), dim=-1).mul_(-g)
            block.scatter_add_(-1, safe[rows, cols].reshape(-1, 1), g)
            grad[rows, cols] = block.view_as(grad[rows, cols]).to(grad.dtype)
        return grad, None, None


def logprobs_from_logits(logits: Tensor, labels: Tensor, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Tensor:
    """Log-prob of each label under ``softmax(logits)``: ``[N, T, V], [N, T] -> [N, T]`` (any leading dims).

    Output is float32 (float64 for float64 logits). Labels < 0 (e.g. -100 padding) give 0 and no gradient;
    labels >= V raise. Logits must already be divided by the sampling temperature if one was used, so
    that these log-probs match the ones the sampler reports.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} must equal logits shape without the vocab dim, "
            f"{tuple(logits.shape[:-1])}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor of token ids, got dtype {labels.dtype}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    vocab = logits.shape[-1]
    if labels.numel() and int(labels.max()) >= vocab:
        raise ValueError(f"label id {int(labels.max())} is out of range for a vocabulary of {vocab} logits")
    logits3 = _as_3d(logits)
    labels2 = labels.reshape(logits3.shape[:-1]).long()
    return _SampledLogProb.apply(logits3, labels2, chunk_rows).view(labels.shape)


def entropy_from_logits(logits: Tensor, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Tensor:
    """Entropy of ``softmax(logits)`` per position: ``[N, T, V] -> [N, T]``, computed in float32 by chunks.

    ``H = logsumexp(z) - sum(softmax(z) * z)``. Chunking bounds memory under ``torch.no_grad()`` (the usual
    monitoring use); with gradients enabled autograd still keeps each chunk for backward. Logits must be
    finite: a ``-inf`` (banned-token) logit makes ``0 * -inf`` = NaN here.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    logits3 = _as_3d(logits)
    a, t, _ = logits3.shape
    dtype = _compute_dtype(logits)
    out_rows = []
    for rows, cols in _blocks(a, t, chunk_rows):
        if cols.start == 0:
            out_rows.append([])
        block = logits3[rows, cols].to(dtype)
        ent = torch.logsumexp(block, dim=-1) - (torch.softmax(block, dim=-1) * block).sum(dim=-1)
        out_rows[-1].append(ent)
    if not out_rows:
        return logits.new_zeros(logits.shape[:-1], dtype=dtype)
    return torch.cat([torch.cat(parts, dim=1) for parts in out_rows]).view(logits.shape[:-1])


@register_agg("token_mean")
def token_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Sum over valid tokens / number of valid tokens in the batch (DAPO): every token weighs the same,
    so long replies are not down-weighted."""
    return masked_mean(x, mask)


@register_agg("seq_mean", averages_over="sequences")
def seq_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over sequences of each sequence's token mean (the GRPO paper). Sequences with no valid
    token are left out of the outer mean."""
    return masked_mean(masked_mean(x, mask, dim=-1), mask.bool().any(dim=-1))


@register_agg("seq_sum_norm", uses_max_len=True, averages_over="rows")
def seq_sum_norm(x: Tensor, mask: Tensor, max_len: int | None = None) -> Tensor:
    """Sum over valid tokens / (N * max_len) (Dr. GRPO). The normaliser is a constant (``max_len`` = the
    generation budget, default T; N counts every row, fully masked ones included), so the loss carries
    no length bias."""
    norm_len = x.shape[1] if max_len is None else max_len
    if norm_len < 1:
        raise ValueError(f"max_len must be a positive generation budget, got {max_len}")
    return masked_sum(x, mask) / max(x.shape[0] * norm_len, 1)


def aggregate(x: Tensor, mask: Tensor, agg: str = "token_mean", max_len: int | None = None) -> Tensor:
    """Reduce per-token values ``x [N, T]`` to a scalar the way the loss does, by the ``AGG_MODES`` entry
    ``agg`` (see ``token_mean``, ``seq_mean``, ``seq_sum_norm``). ``max_len`` goes only to the modes that
    use it."""
    mode = AGG_MODES[agg]
    if x.dim() != 2 or mask.shape != x.shape:
        raise ValueError(
            f"aggregate expects x and mask of the same [N, T] shape, got {tuple(x.shape)}, {tuple(mask.shape)}"
        )
    return mode.fn(x, mask, max_len) if mode.uses_max_len else mode.fn(x, mask)


def _checked_inputs(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, clip_low: float, clip_high: float
) -> Tensor:
    """Raise on inconsistent shapes or clip bounds; return the advantages broadcast to ``[N, T]``."""
    if not 0.0 <= clip_low < 1.0 or clip_high < 0.0:
        raise ValueError(
            f"need 0 <= clip_low < 1 and clip_high >= 0, got clip_low={clip_low}, clip_high={clip_high}"
        )
    if logp.dim() != 2 or old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            f"logp, old_logp and mask must share one [N, T] shape, got {tuple(logp.shape)}, "
            f"{tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    if advantages.dim() == 1 and advantages.shape[0] == logp.shape[0]:
        return advantages[:, None].expand(logp.shape)
    if advantages.shape != logp.shape:
        raise ValueError(
            f"advantages must be [N] or [N, T] for logp {tuple(logp.shape)}, got {tuple(advantages.shape)}"
        )
    return advantages


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    agg: str = "token_mean",
    kl: Tensor | None = None,
    kl_coef: float = 0.0,
    max_len: int | None = None,
    tis_weight: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO/GRPO clipped surrogate: per token ``max(-A * r, -A * clip(r, 1 - clip_low, 1 + clip_high))``.

    Args:
        logp: ``[N, T]`` log-probs of the sampled tokens under the policy being trained (with grad).
        old_logp: ``[N, T]`` log-probs under the policy that sampled them (treated as constant).
        advantages: ``[N]`` per sequence (broadcast over tokens) or ``[N, T]`` per token; constant.
        mask: ``[N, T]`` valid response tokens.
        clip_low, clip_high: asymmetric ratio clip; DAPO "clip-higher" uses e.g. 0.2 / 0.28.
        agg: how token losses become a scalar, see ``aggregate``; ``max_len`` is for ``seq_sum_norm``.
        kl: optional ``[N, T]`` per-token KL to the reference (e.g. ``approx_kl(logp, ref_logp, mask=mask)``),
            added as ``kl_coef * aggregate(kl)`` with gradient.
        tis_weight: optional ``[N, T]`` truncated importance weights (``algo.importance.tis_weights``),
            constant, multiplying each token's policy-gradient term; None leaves the loss untouched.

    Returns ``(loss, stats)``; stats are detached scalar tensors: ``pg_loss``, ``kl_loss``, ``clip_frac``
    (share of valid tokens whose clipped term is the active one, i.e. that get no gradient),
    ``approx_kl_old`` (k3 estimate of KL(old || new) over valid tokens) and ``ratio_mean``.
    """
    advantages = _checked_inputs(logp, old_logp, advantages, mask, clip_low, clip_high)
    valid = mask.bool()
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    # Select before exp / multiply so padding garbage (-inf, NaN) never reaches a value or a gradient.
    adv = torch.where(valid, advantages.detach().to(logp.dtype), zero)
    old = old_logp.detach()
    ratio = torch.exp(torch.where(valid, logp - old, zero))
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    clip_active = clipped > unclipped  # ties take the unclipped branch, which keeps the full gradient
    token_pg = torch.where(clip_active, clipped, unclipped)
    if tis_weight is not None:
        if tis_weight.shape != logp.shape:
            raise ValueError(f"tis_weight {tuple(tis_weight.shape)} must match logp {tuple(logp.shape)}")
        token_pg = token_pg * torch.where(valid, tis_weight.detach().to(logp.dtype), zero)
    pg_loss = aggregate(token_pg, valid, agg, max_len)

    kl_loss = aggregate(kl, valid, agg, max_len) if kl is not None else zero
    loss = pg_loss + kl_coef * kl_loss
    with torch.no_grad():
        stats = {
            "pg_loss": pg_loss.detach(),
            "kl_loss": kl_loss.detach(),
            "clip_frac": masked_mean(clip_active.to(logp.dtype), valid),
            "approx_kl_old": masked_mean(approx_kl(old, logp.detach(), "k3", mask=valid), valid),
            "ratio_mean": masked_mean(ratio.detach(), valid),
        }
    return loss, stats
