"""The GRPO learner: log-prob alignment against a plain HF forward, the direction of an update, the
non-finite guard, LoRA merging, save/load, and the Ray group under ZeRO-2 and ZeRO-3."""

from __future__ import annotations

import math

import pytest
import ray
import torch
from transformers import AutoModelForCausalLM

from empathy_ray.actors import learner as learner_mod
from empathy_ray.actors.learner_config import micro_batches_per_rank
from empathy_ray.actors.learner_group import LearnerGroup
from empathy_ray.algo import logprobs_from_logits, sampled_vocab
from empathy_ray.runtime.placement import local_ranks, split_even
from empathy_ray.train.engine import created_partitioned
from tests.learner_helpers import hf_logprobs, hf_model, max_diff, rl_config, step_items

# Rows of different prompt and response lengths, one with an empty response.
PAIRS = [
    ([5, 6, 7, 8, 9], [10, 11, 12, 13]),
    ([20, 21, 22], [30, 31, 32, 33, 34, 35]),
    ([40, 41, 42, 43, 44, 45, 46], [50]),
    ([60], [61, 62]),
    ([70, 71], []),
]
STAT_KEYS = {
    "train/policy_loss",
    "train/pg_loss",
    "train/kl",
    "train/clip_frac",
    "train/entropy",
    "train/approx_kl_old",
    "train/ratio_mean",
    "train/grad_norm",
    "train/lr",
    "train/tokens",
    "train/skipped_microbatches",
}

TIS_KEYS = {"train/tis_k3_kl", "train/tis_weight_mean", "train/tis_weight_max", "train/tis_truncated_share"}


def test_split_helpers():
    # the config refuses splits that do not divide evenly (tests/test_config_constraints.py)
    assert micro_batches_per_rank(rl_config(workers=1, mbs=2)) == 2
    assert split_even(list(range(5)), 2) == [[0, 1, 2], [3, 4]]
    assert split_even([1], 3) == [[1], [], []]
    assert local_ranks(["a", "b", "a", "a", "b"]) == [0, 0, 1, 2, 1]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_a_plain_hf_forward(make_rank, tiny_model_dir, temperature):
    rank = make_rank(temperature=temperature)
    got = rank.logprobs(PAIRS)
    expected = hf_logprobs(hf_model(tiny_model_dir, rank.weights_for_sync()), PAIRS, temperature)
    assert [len(row) for row in got] == [4, 6, 1, 2, 0]
    assert max_diff(got, expected) < 1e-5
    if temperature != 1.0:  # the temperature is applied, not ignored: scores differ from temperature 1
        assert max_diff(got, hf_logprobs(hf_model(tiny_model_dir), PAIRS)) > 0.01


def test_update_follows_the_advantage_sign(make_rank, tiny_model_dir):
    rank = make_rank()
    items = step_items([1.0, -1.0, 0.0, 0.0])
    pairs = [(it["prompt_ids"], it["response_ids"]) for it in items]
    before = [sum(row) for row in rank.logprobs(pairs)]
    w0 = rank.weights_for_sync()

    stats = rank.train_step(items)

    after = [sum(row) for row in rank.logprobs(pairs)]
    assert after[0] > before[0] + 0.05  # positive advantage: more likely
    assert after[1] < before[1] - 0.05  # negative advantage: less likely
    assert set(stats) == STAT_KEYS and all(math.isfinite(v) for v in stats.values())
    assert stats["train/ratio_mean"] == 1.0 and stats["train/clip_frac"] == 0.0  # inner_epochs 1: on-policy
    assert stats["train/tokens"] == 10 and stats["train/skipped_microbatches"] == 0
    # ratio 1, token_mean over the whole step: -(4 tokens * +1 + 3 tokens * -1 + 3 tokens * 0) / 10
    assert stats["train/pg_loss"] == pytest.approx(-0.1)
    assert stats["train/lr"] == pytest.approx(1e-3) and stats["train/grad_norm"] > 0

    w1 = rank.weights_for_sync()
    assert list(w1) == list(hf_model(tiny_model_dir).state_dict())  # plain HF names, tied head included
    assert all(w1[k].dtype == torch.float32 and w1[k].device.type == "cpu" for k in w1)
    assert not torch.equal(
        w0["model.layers.0.self_attn.q_proj.weight"], w1["model.layers.0.self_attn.q_proj.weight"]
    )


@pytest.mark.parametrize("zero", [2, 3])
def test_non_finite_loss_is_skipped_on_every_rank(make_rank, monkeypatch, zero):
    rank = make_rank(zero=zero)
    w0 = rank.weights_for_sync()
    real = learner_mod.policy_loss
    monkeypatch.setattr(learner_mod, "policy_loss", lambda *a, **kw: (real(*a, **kw)[0] * math.nan, {}))

    stats = rank.train_step(step_items([1.0, -1.0, 0.5, 0.0]))

    assert stats["train/skipped_microbatches"] == 2
    assert math.isnan(stats["train/pg_loss"])  # no micro-batch left to average
    # Both micro-batches gave exact zero gradients: Adam's first step with g = 0 moves nothing.
    w1 = rank.weights_for_sync()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean", "seq_sum_norm"])
def test_token_budget_gives_the_gradient_of_one_batch(make_rank, agg):
    """Row lengths 7, 5, 6, 2: a 12-token budget packs [2, 5] [6] [7] (3 micro-batches of 1-2 rows),
    `mbs=4` takes all 4 rows at once; the loss, the gradient and the update must agree."""
    items = step_items([1.0, -1.0, 0.5, -0.5])
    whole = make_rank(mbs=4, agg=agg)
    assert len(whole._batches(items, False)) == 1
    split = make_rank(agg=agg, max_tokens_per_micro_batch=12)
    assert [b.input_ids.shape[0] for b in split._batches(items, False)] == [2, 1, 1]

    one, three = whole.train_step(items), split.train_step(items)

    assert three["train/pg_loss"] == pytest.approx(one["train/pg_loss"], rel=1e-5)
    assert three["train/grad_norm"] == pytest.approx(one["train/grad_norm"], rel=1e-4)
    # Adam's first step moves each weight by about lr * g / (|g| + eps): the same for both splits wherever
    # the gradients agree, but for entries whose gradient is float noise near eps (1e-8) a different
    # summation order moves it by a different fraction of lr (7.5e-6 = 0.0075 lr on one CPU). A wrong
    # sign or a missing micro-batch moves entries by up to 2 lr, far above this bound.
    lr = whole.cfg.learner.lr
    w_one, w_three = whole.weights_for_sync(), split.weights_for_sync()
    assert max(float((w_one[k] - w_three[k]).abs().max()) for k in w_one) < 0.05 * lr


def test_zero3_models_are_created_partitioned(make_rank, tiny_model_dir):
    """What the ZeRO-3 learner loads its policy under: every parameter is born a shard (empty .data,
    its part in ds_tensor); outside it, models hold full tensors again (export skeletons)."""
    rank = make_rank(zero=3)
    with created_partitioned(rank.trainer_config, world_size=1):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert all(p.numel() == 0 and p.ds_tensor.numel() > 0 for p in model.parameters())
    assert all(p.numel() > 0 for p in hf_model(tiny_model_dir).parameters())
    # the learner built that way computes what a plain HF forward does
    assert max_diff(rank.logprobs(PAIRS), hf_logprobs(hf_model(tiny_model_dir), PAIRS)) < 1e-5


def test_bad_items_are_rejected_with_the_field_named(make_rank):
    rank = make_rank(kl_coef=0.1)
    with pytest.raises(ValueError, match="this rank's share of a step is 4"):
        rank.train_step(step_items([1.0, 0.0, 0.0, 0.0])[:3])
    with pytest.raises(ValueError, match="needs ref_logprobs"):
        rank.train_step(step_items([1.0, 0.0, 0.0, 0.0]))
    items = step_items([1.0, 0.0, 0.0, 0.0], ref=[[-1.0] * 4, [-1.0] * 3, [-1.0] * 2, [-1.0]])
    items[2]["advantage"] = math.inf
    with pytest.raises(ValueError, match="item 2 has advantage inf"):
        rank.train_step(items)


@pytest.mark.parametrize("zero", [2, 3])
def test_lora_merges_into_plain_hf_weights(make_rank, tiny_model_dir, zero):
    """Under ZeRO-3 the adapters' live parameters are shards: the merge reads the gathered weights."""
    rank = make_rank(lora=True, inner_epochs=2, kl_coef=0.1, zero=zero)
    base = hf_model(tiny_model_dir).state_dict()
    merged0 = rank.weights_for_sync()
    assert list(merged0) == list(base)
    assert all(torch.equal(merged0[k], base[k]) for k in base)  # lora_B starts at 0: nothing to add yet
    items = step_items([1.0, -1.0, 0.0, 0.5])
    ref = rank.logprobs([(it["prompt_ids"], it["response_ids"]) for it in items])
    for it, row in zip(items, ref, strict=True):
        it["ref_logprobs"] = row

    stats = rank.train_step(items)

    merged1 = rank.weights_for_sync()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged1[q], base[q])
    assert torch.equal(merged1["model.embed_tokens.weight"], base["model.embed_tokens.weight"])  # frozen
    # The merged weights are the model the learner now runs.
    model = hf_model(tiny_model_dir, merged1)
    pairs = [(it["prompt_ids"], it["response_ids"]) for it in items]
    assert max_diff(rank.logprobs(pairs), hf_logprobs(model, pairs)) < 1e-5
    # Second inner epoch: the policy has moved away from the old (and reference) log-probs.
    assert stats["train/ratio_mean"] != 1.0 and stats["train/approx_kl_old"] > 0 and stats["train/kl"] > 0


@pytest.mark.parametrize(("zero", "lora"), [(2, False), (3, False), (3, True)])
def test_save_exports_hf_and_load_restores_the_state(make_rank, tmp_path, zero, lora):
    rank = make_rank(zero=zero, lora=lora)
    rank.train_step(step_items([1.0, -1.0, 0.0, 0.0]))
    saved = rank.weights_for_sync()
    rank.save(str(tmp_path))

    exported = hf_model(tmp_path).state_dict()
    assert all(torch.equal(exported[k], saved[k]) for k in saved)
    assert (tmp_path / "learner_state" / "latest").is_file()

    rank.train_step(step_items([-1.0, 1.0, 0.0, 0.0]))
    rank.load(str(tmp_path))
    restored = rank.weights_for_sync()
    assert all(torch.equal(restored[k], saved[k]) for k in saved)


@pytest.mark.parametrize("zero", [2, 3])
def test_group_trains_in_lockstep(ray_cluster, tiny_model_dir, make_rank, zero):
    # ZeRO-2, micro-batch 1: each rank's 2 samples are 2 micro-batches; 3 log-prob rows give rank 1 an
    # idle round. ZeRO-3, a 12-token budget: rank 0's rows (7, 5 tokens) are 2 micro-batches, rank 1's
    # (6, 2) one, so rank 1 runs an empty second one, in both inner epochs and the old-log-prob pass.
    # with rollout log-probs: the importance-sampling figures are reduced over ranks like one batch's
    items = step_items([1.0, -1.0, 0.5, -0.5])
    pairs4 = [(it["prompt_ids"], it["response_ids"]) for it in items]
    with_rollout_logprobs(items, hf_logprobs(hf_model(tiny_model_dir), pairs4))
    epochs = 2 if zero == 3 else 1
    one_batch = make_rank(mbs=4, inner_epochs=epochs).train_step(items)  # one rank, one micro-batch
    budget = {"max_tokens_per_micro_batch": 12} if zero == 3 else {}
    cfg = rl_config(workers=2, zero=zero, mbs=1, inner_epochs=epochs, **budget)
    group = LearnerGroup.create(str(tiny_model_dir), cfg, seed=0)
    try:
        pairs = PAIRS[:3]
        assert max_diff(group.logprobs(pairs).result(), hf_logprobs(hf_model(tiny_model_dir), pairs)) < 1e-5
        before = group.weights_checksums()

        stats = group.train(items).result()

        assert set(stats) == STAT_KEYS | TIS_KEYS and stats["train/tokens"] == 10
        # the loss is normalised over both ranks' tokens: the gradient is the one-batch gradient
        for key in ("train/pg_loss", *TIS_KEYS):
            assert stats[key] == pytest.approx(one_batch[key], rel=1e-5), key
        assert stats["train/tis_weight_max"] == pytest.approx(4.0, rel=1e-4)  # rank 1 holds none of it
        assert stats["train/grad_norm"] == pytest.approx(one_batch["train/grad_norm"], rel=1e-4)
        after = group.weights_checksums()
        if zero == 2:  # every rank holds the full weights: they must agree exactly
            assert after[0] == after[1] and after != before
        ref = group.gather_weights().result()
        assert isinstance(ref, ray.ObjectRef)
        weights = ray.get(ref)
        base = hf_model(tiny_model_dir).state_dict()
        assert list(weights) == list(base)
        assert all(weights[k].shape == base[k].shape for k in base)  # gathered, not ZeRO-3 shards
        q = "model.layers.1.mlp.down_proj.weight"
        assert not torch.equal(weights[q], base[q])
        # The gathered weights are the ones the ranks compute with.
        assert (
            max_diff(group.logprobs(pairs).result(), hf_logprobs(hf_model(tiny_model_dir, weights), pairs))
            < 1e-5
        )
    finally:
        group.shutdown()


# Importance weights p_learner / p_rollout per response token of step_items' rows (4, 3, 2, 1 tokens):
# the rollout log-probs are the learner's minus log w. At cap 2, 3 and 4 are truncated.
TIS_W = [[0.5, 1.0, 3.0, 1.5], [0.25, 1.0, 4.0], [1.0, 1.0], [1.0]]


def with_rollout_logprobs(items: list[dict], learner_lp: list[list[float]]) -> list[dict]:
    for it, lp, w in zip(items, learner_lp, TIS_W, strict=True):
        it["rollout_logprobs"] = [x - math.log(v) for x, v in zip(lp, w, strict=True)]
    return items


def test_truncated_importance_weights_scale_the_loss_by_hand(make_rank, tiny_model_dir):
    """Two micro-batches of 2 rows (7 and 3 tokens), token_mean over the step's 10 tokens, ratio 1:
    pg_loss = -sum_t A_t min(w_t, 2) / 10 = -(1 * 5 - 1 * 3.25 + 0.5 * 2 - 0.5 * 1) / 10 = -0.225.
    With tis_cap=0 the loss is the plain one, -0.15, and the update is exactly the one without
    rollout log-probs, while the gap is still measured."""
    advantages = [1.0, -1.0, 0.5, -0.5]
    pairs = [(it["prompt_ids"], it["response_ids"]) for it in step_items(advantages)]
    learner_lp = hf_logprobs(hf_model(tiny_model_dir), pairs)
    stats = make_rank().train_step(with_rollout_logprobs(step_items(advantages), learner_lp))
    assert stats["train/pg_loss"] == pytest.approx(-0.225, rel=1e-4)
    # over all 10 tokens, not the mean of the micro-batches' means (11.25 / 7 and 1)
    assert stats["train/tis_weight_mean"] == pytest.approx(14.25 / 10, rel=1e-4)
    assert stats["train/tis_weight_max"] == pytest.approx(4.0, rel=1e-4)
    assert stats["train/tis_truncated_share"] == pytest.approx(0.2)
    k3 = sum((w - 1) - math.log(w) for row in TIS_W for w in row) / 10
    assert stats["train/tis_k3_kl"] == pytest.approx(k3, rel=1e-3)

    off = make_rank(tis_cap=0)
    off_stats = off.train_step(with_rollout_logprobs(step_items(advantages), learner_lp))
    plain = make_rank(tis_cap=0)
    plain_stats = plain.train_step(step_items(advantages))
    assert off_stats["train/pg_loss"] == plain_stats["train/pg_loss"] == pytest.approx(-0.15, rel=1e-5)
    assert off_stats["train/tis_weight_mean"] == pytest.approx(1.425, rel=1e-4)
    assert off_stats["train/tis_truncated_share"] == 0.0 and set(plain_stats) == STAT_KEYS
    w_off, w_plain = off.weights_for_sync(), plain.weights_for_sync()
    assert all(torch.equal(w_off[k], w_plain[k]) for k in w_plain)
    with pytest.raises(ValueError, match=r"items \[1\] need one rollout_logprobs value per response token"):
        items = with_rollout_logprobs(step_items(advantages), learner_lp)
        items[1]["rollout_logprobs"] = items[1]["rollout_logprobs"][:2]
        off.train_step(items)


def test_padded_vocabulary_rows_are_left_out_of_the_scores():
    """Rows past the tokenizer (Qwen's padding) are never sampled: the learner's and the reference's
    softmax leave them out. Four equal logits, one of them padding: log(1/3), not log(1/4)."""
    logits = torch.zeros(1, 1, 4, requires_grad=True)
    logp = logprobs_from_logits(sampled_vocab(logits, 3), torch.tensor([[0]]))
    assert float(logp) == pytest.approx(-math.log(3))
    logp.sum().backward()
    assert float(logits.grad[0, 0, 3]) == 0.0  # a padded row gets no gradient
    assert sampled_vocab(logits, 4) is logits and sampled_vocab(logits, None) is logits
