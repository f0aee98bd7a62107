"""masked reductions, aggregation modes and the clipped policy loss; numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from empathy_ray.algo import (
    agg_weight,
    aggregate,
    approx_kl,
    logprobs_from_logits,
    masked_mean,
    masked_sum,
    policy_loss,
    tempered,
)

NAN = float("nan")


def test_masked_sum_and_mean():
    # x [2, 3] = [[1, 2, 3], [4, 5, nan]], mask [[1, 1, 0], [0, 0, 0]]: only 1 and 2 count
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, NAN]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert_close(masked_sum(x, mask), torch.tensor(3.0))
    assert_close(masked_mean(x, mask), torch.tensor(1.5))
    # per row: sums [3, 0], means [1.5, 0] -- the empty row is 0, not nan
    assert_close(masked_sum(x, mask, dim=-1), torch.tensor([3.0, 0.0]))
    assert_close(masked_mean(x, mask, dim=-1), torch.tensor([1.5, 0.0]))
    assert masked_mean(x, mask, dim=-1, keepdim=True).shape == (2, 1)


def test_masked_mean_all_masked_is_zero_with_finite_gradient():
    x = torch.tensor([[NAN, 1.0]], requires_grad=True)
    out = masked_mean(x, torch.zeros(1, 2))
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_mean(x, torch.ones(3))


# 2x3 example with padding: x = [[1, 2, 3], [4, 5, 6]], mask = [[1, 1, 1], [1, 0, 0]]
X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M = torch.tensor([[1, 1, 1], [1, 0, 0]])


def test_aggregate_modes_on_padded_2x3():
    # token_mean   = (1 + 2 + 3 + 4) / 4 valid tokens            = 2.5
    # seq_mean     = mean(row means 2 and 4)                    = 3.0
    # seq_sum_norm = 10 / (N=2 * T=3)                            = 1.666667; with max_len 5: 10 / 10 = 1.0
    assert_close(aggregate(X, M, "token_mean"), torch.tensor(2.5))
    assert_close(aggregate(X, M, "seq_mean"), torch.tensor(3.0))
    assert_close(aggregate(X, M, "seq_sum_norm"), torch.tensor(10 / 6))
    assert_close(aggregate(X, M, "seq_sum_norm", max_len=5), torch.tensor(1.0))


def test_aggregate_with_a_fully_masked_row():
    # add row [7, 8, nan] with mask [0, 0, 0] -> [3, 3]
    x = torch.cat([X, torch.tensor([[7.0, 8.0, NAN]])])
    m = torch.cat([M, torch.zeros(1, 3, dtype=M.dtype)])
    assert_close(aggregate(x, m, "token_mean"), torch.tensor(2.5))  # unchanged
    assert_close(aggregate(x, m, "seq_mean"), torch.tensor(3.0))  # the empty row is not averaged in
    assert_close(aggregate(x, m, "seq_sum_norm"), torch.tensor(10 / 9))  # constant N*T = 3*3 normaliser
    for agg in ("token_mean", "seq_mean", "seq_sum_norm"):
        assert aggregate(x, torch.zeros_like(m), agg).item() == 0.0
    with pytest.raises(
        ValueError, match="unknown loss aggregation 'sum'; registered: token_mean, seq_mean, seq_sum_norm"
    ):
        aggregate(X, M, "sum")
    with pytest.raises(ValueError, match="positive generation budget"):
        aggregate(X, M, "seq_sum_norm", max_len=0)


@pytest.mark.parametrize(
    ("agg", "max_len", "expected"),
    # ratio 1 everywhere -> token loss = -A = [[-1, -2, -3], [-4, pad, pad]]
    # token_mean -10/4 = -2.5; seq_mean mean(-2, -4) = -3; seq_sum_norm -10/6 and -10/(2*5) = -1
    [
        ("token_mean", None, -2.5),
        ("seq_mean", None, -3.0),
        ("seq_sum_norm", None, -10 / 6),
        ("seq_sum_norm", 5, -1.0),
    ],
)
def test_policy_loss_aggregations_with_token_advantages(agg, max_len, expected):
    logp = torch.full((2, 3), -1.0)
    loss, stats = policy_loss(logp, logp.clone(), X, M, agg=agg, max_len=max_len)
    assert_close(loss, torch.tensor(expected))
    assert_close(stats["pg_loss"], torch.tensor(expected))
    assert stats["clip_frac"].item() == 0.0 and stats["ratio_mean"].item() == 1.0


def test_policy_loss_sequence_advantages_broadcast():
    # A [2] = [1, -2], mask [[1, 1, 1], [1, 1, 0]], ratio 1 -> token losses [[-1, -1, -1], [2, 2, pad]]
    # token_mean (-3 + 4) / 5 = 0.2; seq_mean mean(-1, 2) = 0.5; seq_sum_norm 1 / (2 * 3) = 0.166667
    logp = torch.zeros(2, 3)
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    for agg, expected in (("token_mean", 0.2), ("seq_mean", 0.5), ("seq_sum_norm", 1 / 6)):
        assert_close(policy_loss(logp, logp, adv, mask, agg=agg)[0], torch.tensor(expected))


def test_clipping_on_both_sides_values_stats_and_gradient():
    # [1, 4] tokens, ratios r = [1.5, 0.5, 1.1, 0.5], A = [+1, -1, +1, +1], clip 0.2 -> [0.8, 1.2]
    #   t0: -A*r = -1.5, -A*clip = -1.2 -> max -1.2, clipped (ratio above 1.2 with A > 0)
    #   t1: -A*r =  0.5, -A*clip =  0.8 -> max  0.8, clipped (ratio below 0.8 with A < 0)
    #   t2: -1.1 both (inside the range) -> -1.1, unclipped
    #   t3: -A*r = -0.5, -A*clip = -0.8 -> max -0.5, unclipped (pessimistic bound keeps the raw term)
    # token_mean = (-1.2 + 0.8 - 1.1 - 0.5) / 4 = -0.5; clip_frac 2/4; ratio_mean 3.6/4 = 0.9
    # k3(old||new) = r - 1 - ln r: 0.094535, 0.193147, 0.004690, 0.193147 -> mean 0.121380
    # d loss / d logp = -A * r / 4 on unclipped tokens, 0 on clipped: [0, 0, -0.275, -0.125]
    old = torch.full((1, 4), -2.0)
    ratios = torch.tensor([[1.5, 0.5, 1.1, 0.5]])
    logp = (old + ratios.log()).requires_grad_(True)
    adv = torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    loss, stats = policy_loss(logp, old, adv, torch.ones(1, 4))
    assert_close(loss, torch.tensor(-0.5))
    assert_close(stats["clip_frac"], torch.tensor(0.5))
    assert_close(stats["ratio_mean"], torch.tensor(0.9))
    assert_close(stats["approx_kl_old"], torch.tensor(0.121380), atol=1e-6, rtol=0)
    loss.backward()
    assert_close(logp.grad, torch.tensor([[0.0, 0.0, -0.275, -0.125]]))


def test_clip_higher_widens_only_the_upper_side():
    # ratio 1.25, A = +1: with clip_high 0.2 the term is -1.2 (clipped, zero gradient);
    # with DAPO's clip_high 0.28 it is -1.25 (unclipped, gradient -A*r = -1.25)
    old = torch.zeros(1, 1)
    for clip_high, expected_loss, expected_grad, frac in ((0.2, -1.2, 0.0, 1.0), (0.28, -1.25, -1.25, 0.0)):
        logp = torch.full((1, 1), math.log(1.25), requires_grad=True)
        loss, stats = policy_loss(logp, old, torch.ones(1), torch.ones(1, 1), clip_high=clip_high)
        loss.backward()
        assert_close(loss, torch.tensor(expected_loss))
        assert_close(logp.grad, torch.tensor([[expected_grad]]))
        assert stats["clip_frac"].item() == frac


def test_kl_term_is_added_with_gradient():
    # ratio 1, A = 0 -> pg 0; kl [[0.1, 0.2, 0.3], [0.4, pad, pad]] token_mean = 1.0 / 4 = 0.25
    # loss = 0 + 0.5 * 0.25 = 0.125; d loss / d kl = 0.5 / 4 = 0.125 on valid tokens, 0 on padding
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, NAN, NAN]], requires_grad=True)
    logp = torch.zeros(2, 3)
    loss, stats = policy_loss(logp, logp, torch.zeros(2), M, kl=kl, kl_coef=0.5)
    assert_close(loss, torch.tensor(0.125))
    assert_close(stats["kl_loss"], torch.tensor(0.25))
    assert_close(stats["pg_loss"], torch.tensor(0.0))
    loss.backward()
    assert_close(kl.grad, torch.tensor([[0.125, 0.125, 0.125], [0.125, 0.0, 0.0]]))


def test_kl_from_approx_kl_flows_into_logp():
    # policy == old == ref, A = 0: pg gradient 0; k3 gradient 1 - ref/pi = 0 at pi == ref, so total 0.
    # move ref so that log_r = ref - logp = ln 0.5 on the single token: dk3/dlogp = 1 - 0.5 = 0.5;
    # kl_coef 0.1 -> grad 0.05; loss = 0.1 * (0.5 - 1 - ln 0.5) = 0.1 * 0.193147 = 0.0193147
    logp = torch.zeros(1, 1, requires_grad=True)
    ref = torch.full((1, 1), math.log(0.5))
    mask = torch.ones(1, 1)
    loss, _ = policy_loss(
        logp, logp.detach(), torch.zeros(1), mask, kl=approx_kl(logp, ref, mask=mask), kl_coef=0.1
    )
    loss.backward()
    assert_close(loss, torch.tensor(0.0193147), atol=1e-7, rtol=0)
    assert_close(logp.grad, torch.tensor([[0.05]]))


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean", "seq_sum_norm"])
def test_fully_masked_rows_never_make_nan(agg):
    # row 1 is pure padding with -inf log-probs and nan advantage: no effect on loss, zero gradient
    logp = torch.tensor([[-1.0, -1.0], [float("-inf"), NAN]], requires_grad=True)
    old = torch.tensor([[-1.0, -1.0], [NAN, float("-inf")]])
    adv = torch.tensor([2.0, NAN])
    mask = torch.tensor([[1, 1], [0, 0]])
    loss, stats = policy_loss(logp, old, adv, mask, agg=agg)
    loss.backward()
    # valid tokens: ratio 1, loss -2 each; token_mean -2, seq_mean -2, seq_sum_norm -4 / (2 * 2) = -1
    assert_close(loss, torch.tensor(-1.0 if agg == "seq_sum_norm" else -2.0))
    assert torch.isfinite(logp.grad).all() and torch.equal(logp.grad[1], torch.zeros(2))
    assert all(torch.isfinite(v) for v in stats.values())
    # everything masked: loss and every stat 0
    loss0, stats0 = policy_loss(logp, old, adv, torch.zeros(2, 2), agg=agg)
    assert loss0.item() == 0.0 and all(v.item() == 0.0 for v in stats0.values())


def test_stats_are_detached_scalars_and_inputs_are_validated():
    logp = torch.zeros(1, 2, requires_grad=True)
    _, stats = policy_loss(logp, torch.zeros(1, 2), torch.ones(1), torch.ones(1, 2))
    assert set(stats) == {"pg_loss", "kl_loss", "clip_frac", "approx_kl_old", "ratio_mean"}
    assert all(v.dim() == 0 and not v.requires_grad for v in stats.values())
    with pytest.raises(ValueError, match="clip_low"):
        policy_loss(logp, logp, torch.ones(1), torch.ones(1, 2), clip_low=1.0)
    with pytest.raises(ValueError, match="advantages must be"):
        policy_loss(logp, logp, torch.ones(3), torch.ones(1, 2))
    with pytest.raises(ValueError, match="share one"):
        policy_loss(logp, logp, torch.ones(1), torch.ones(1, 3))
    with pytest.raises(ValueError, match="unknown loss aggregation 'mean'"):
        policy_loss(logp, logp, torch.ones(1), torch.ones(1, 2), agg="mean")


def test_agg_weight_counts_what_each_mode_divides_by():
    # M = [[1, 1, 1], [1, 0, 0]] plus an empty third row: 4 tokens, 2 non-empty sequences, 3 rows
    mask = torch.cat([M, torch.zeros(1, 3, dtype=M.dtype)])
    assert [agg_weight(a, mask) for a in ("token_mean", "seq_mean", "seq_sum_norm")] == [4, 2, 3]


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean", "seq_sum_norm"])
def test_split_batch_weighted_by_agg_weight_has_the_whole_batch_gradient(agg):
    """Rows of 3, 1, 0 and 2 valid tokens split as [row 0] [rows 1, 2] [row 3]: each piece's loss times
    its weight over the total sums to the whole batch's loss, gradient included."""
    torch.manual_seed(0)
    logp = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])
    adv = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    whole, _ = policy_loss(logp, logp.detach() - 0.1, adv, mask, agg=agg, max_len=3)
    (g_whole,) = torch.autograd.grad(whole, logp)

    total = agg_weight(agg, mask)
    losses, weights = [], []
    for rows in ([0], [1, 2], [3]):
        loss, _ = policy_loss(
            logp[rows], logp.detach()[rows] - 0.1, adv[rows], mask[rows], agg=agg, max_len=3
        )
        losses.append(loss)
        weights.append(agg_weight(agg, mask[rows]))
    split = sum(loss * w / total for loss, w in zip(losses, weights, strict=True))
    (g_split,) = torch.autograd.grad(split, logp, retain_graph=True)
    assert_close(split, whole)
    assert_close(g_split, g_whole)
    # unweighted, as the learner did before: the mean of the micro-batch losses is another loss, unless
    # the pieces weigh the same (seq_mean here: one non-empty sequence in each)
    (g_mean,) = torch.autograd.grad(sum(losses) / 3, logp)
    assert torch.allclose(g_mean, g_whole) == (len(set(weights)) == 1)
    assert (len(set(weights)) == 1) == (agg == "seq_mean")


def test_tempered_logits_by_hand():
    # logits [0, 2 ln 2] at temperature 2 are [0, ln 2]: probabilities 1/3 and 2/3
    logits = torch.tensor([[[0.0, 2 * math.log(2.0)]]])
    logp = logprobs_from_logits(tempered(logits, 2.0), torch.tensor([[1]]))
    assert logp.item() == pytest.approx(math.log(2 / 3))
    # temperature 0 (greedy) and 1 leave the logits as they are; a negative one is refused
    assert tempered(logits, 0.0) is logits and tempered(logits, 1.0) is logits
    assert_close(tempered(logits, 0.5), logits * 2)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        tempered(logits, -1.0)
