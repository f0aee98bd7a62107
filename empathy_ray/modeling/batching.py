"""Prompt + response rows as the learner and the reference see them, and the logits for the response.

Logits at position t predict token t+1, so response token j of a row with P prompt tokens sits at
P + j and is predicted by the logits at P + j - 1. Both roles that score sampled answers (learner,
reference) go through these two functions, so their log-probs line up token for token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


def pad_batch(seqs: list[list[int]], pad_id: int, pad_left: bool = False) -> torch.Tensor:
    """[n, width] long tensor of the rows, padded with `pad_id` on the right (or the left)."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        if pad_left:
            out[i, width - len(s) :] = torch.tensor(s)
        else:
            out[i, : len(s)] = torch.tensor(s)
    return out


def pad_with_mask(
    seqs: list[list[int]], pad_id: int, left: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, width] ids padded with `pad_id` (right, or left for generation) and the [n, width] long
    attention mask that is 1 on each row's real tokens."""
    ids = pad_batch(seqs, pad_id, pad_left=left)
    width = ids.shape[1]
    lengths = torch.tensor([len(s) for s in seqs])[:, None]
    cols = torch.arange(width)[None, :]
    mask = cols >= width - lengths if left else cols < lengths
    return ids, mask.long()


@dataclass
class ResponseBatch:
    """Right-padded prompt+response rows and where each response token's prediction sits.

    Logits at position t predict token t+1, so response token j of a row with P prompt tokens sits at
    P + j and is predicted by the logits at P + j - 1 (`positions`).
    """

    input_ids: torch.Tensor  # [n, L]
    attention_mask: torch.Tensor  # [n, L]
    positions: torch.Tensor  # [n, R] logit index predicting response token j (clamped where masked)
    labels: torch.Tensor  # [n, R] response token ids, -100 past each row's response
    mask: torch.Tensor  # [n, R] bool: real response tokens
    advantages: torch.Tensor | None = None  # [n]
    ref_logprobs: torch.Tensor | None = None  # [n, R], 0 where masked

    def to(self, device: torch.device) -> ResponseBatch:
        return ResponseBatch(**{k: v.to(device) if v is not None else None for k, v in vars(self).items()})


def collate(pairs: list[tuple[list[int], list[int]]], pad_id: int) -> ResponseBatch:
    seqs = [list(p) + list(r) for p, r in pairs]
    input_ids, attention_mask = pad_with_mask(seqs, pad_id)
    width = input_ids.shape[1]
    resp = max(1, max(len(r) for _, r in pairs))
    prompt_lens = torch.tensor([len(p) for p, _ in pairs])[:, None]
    j = torch.arange(resp)[None, :]
    labels = torch.full((len(pairs), resp), -100, dtype=torch.long)
    for row, (_, r) in enumerate(pairs):
        labels[row, : len(r)] = torch.tensor(r, dtype=torch.long)
    return ResponseBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        positions=(prompt_lens - 1 + j).clamp(max=width - 1),
        labels=labels,
        mask=labels >= 0,
    )


def response_logits(model, batch: ResponseBatch) -> torch.Tensor:
    """[n, R, V]: the logits that predict each response token (model: HF causal LM or DeepSpeed engine)."""
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    index = batch.positions[..., None].expand(-1, -1, out.logits.shape[-1])
    return out.logits.gather(1, index)


def check_train_items(items: list[dict[str, Any]], expected: int, needs_ref: bool) -> bool:
    """Validate a rank's share; returns whether reference log-probs came with it."""
    if len(items) != expected:
        raise ValueError(
            f"LearnerRank.train_step got {len(items)} samples; this rank's share of a step is {expected} "
            "(rl.prompts_per_step * rl.algo.group_size / rl.learner.num_workers): send the whole step's batch"
        )
    with_ref = [bool(it.get("ref_logprobs")) for it in items]
    if any(with_ref) and not all(with_ref):
        raise ValueError(f"train_step: item {with_ref.index(False)} has no ref_logprobs while others do")
    if needs_ref and not all(with_ref):
        raise ValueError(
            "rl.algo.kl_coef > 0 with rl.algo.kl_in='loss' needs ref_logprobs on every item (from the "
            "reference actor); set rl.algo.kl_coef=0 to train without the KL term"
        )
    for i, it in enumerate(items):
        if not it["prompt_ids"]:
            raise ValueError(
                f"train_step: item {i} has empty prompt_ids; a response needs a prompt to follow"
            )
        if not math.isfinite(it["advantage"]):
            raise ValueError(
                f"train_step: item {i} has advantage {it['advantage']}; advantages must be finite"
            )
        ref = it.get("ref_logprobs") or []
        if ref and len(ref) != len(it["response_ids"]):
            raise ValueError(
                f"train_step: item {i} has {len(ref)} ref_logprobs for {len(it['response_ids'])} response tokens"
            )
        if any(math.isnan(x) for x in ref):
            raise ValueError(f"train_step: item {i} has NaN in ref_logprobs; check the reference actor")
    return all(with_ref)
