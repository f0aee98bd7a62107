"""The reward role of GRPO: turn (post, completion) pairs into per-term rewards and their weighted total.

`RewardScorer` is a plain class so it can be tested and reused without Ray; the RL roles run it as a
restartable actor (a group of one). Every term is returned separately (the driver logs them) next to
"total". A reward call that hangs or dies is retried (`submit_score`): Ray restarts the actor but
never re-runs a call by itself, so each retry is bounded and logged. The call fails loudly after the
last try: a missing reward must stop the run, never enter the update as zeros. A non-finite RM
score is returned as it is (with a warning): the driver skips that step's update and counts it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import torch
from ray.actor import ActorHandle

from empathy_ray.actors.group import Pending, call_with_retries
from empathy_ray.config import RewardConfig
from empathy_ray.domain import coe
from empathy_ray.domain.safety import safety_reward
from empathy_ray.modeling.reward_model import load_reward_model, rm_input_ids
from empathy_ray.modeling.reward_model import score as rm_score
from empathy_ray.modeling.tokenizer import pad_id
from empathy_ray.train.engine import model_dtype
from empathy_ray.train.packing import pack_by_tokens

log = logging.getLogger(__name__)


class RewardTimeoutError(RuntimeError):
    """The reward actor gave no scores within the allowed attempts; the run cannot go on without them."""


class RewardScorer:
    """Scores completions with the reward model (when there is one) and the rule terms.

    The RM reads what it was trained on: the chat prompt of the post and the extracted answer text,
    never the CoE reasoning, so the policy cannot earn RM reward for the think block itself.
    """

    def __init__(
        self,
        cfg: RewardConfig,
        reward_model_dir: str | None,
        max_prompt_tokens: int,
        max_response_tokens: int,
    ) -> None:
        self.cfg = cfg
        self.reward_model_dir = reward_model_dir
        self.max_prompt_tokens = max_prompt_tokens
        self.max_response_tokens = max_response_tokens
        self.tokenizer = self.model = None
        if reward_model_dir is not None and cfg.rm_weight != 0:  # weight 0: not worth loading
            dtype = model_dtype(cfg.bf16)
            self.tokenizer, self.model = load_reward_model(reward_model_dir, dtype)
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            self.model = self.model.to(device).eval().requires_grad_(False)
            log.info("reward model %s loaded on %s (%s)", reward_model_dir, device, dtype)

    def score(self, posts: list[str], completions: list[str]) -> dict[str, list[float]]:
        """Per-term rewards and "total" (the weighted sum of the terms present), one value per completion.

        Always present: "format", "total"; "rm" with a reward model and rm_weight != 0; "length" and
        "safety" when their weights are nonzero.
        """
        if len(posts) != len(completions):
            raise ValueError(f"RewardScorer.score: {len(posts)} posts but {len(completions)} completions")
        cfg = self.cfg
        answers = [coe.parse(c).answer for c in completions]
        terms: dict[str, list[float]] = {}
        weights: dict[str, float] = {}
        if self.model is not None:
            terms["rm"], weights["rm"] = self._rm_scores(posts, answers), cfg.rm_weight
        terms["format"], weights["format"] = [coe.format_reward(c) for c in completions], cfg.format_weight
        if cfg.length_weight != 0:
            target = cfg.length_target
            terms["length"] = [-abs(len(a) - target) / target for a in answers]
            weights["length"] = cfg.length_weight
        if cfg.safety_weight != 0:
            terms["safety"] = [safety_reward(p, a) for p, a in zip(posts, answers, strict=True)]
            weights["safety"] = cfg.safety_weight
        terms["total"] = [
            sum(weights[name] * values[i] for name, values in terms.items()) for i in range(len(completions))
        ]
        return terms

    @torch.no_grad()
    def _rm_scores(self, posts: list[str], answers: list[str]) -> list[float]:
        seqs = [
            rm_input_ids(self.tokenizer, p, a, self.max_prompt_tokens, self.max_response_tokens)
            for p, a in zip(posts, answers, strict=True)
        ]
        out = [math.nan] * len(seqs)
        # similar lengths together: at most batch_size rows and max_tokens_per_batch padded tokens each
        for batch in pack_by_tokens(
            [len(s) for s in seqs], self.cfg.max_tokens_per_batch, self.cfg.batch_size
        ):
            scores = rm_score(self.model, [seqs[i] for i in batch], pad_id(self.tokenizer)).tolist()
            for i, value in zip(batch, scores, strict=True):
                out[i] = value
        bad = [i for i, value in enumerate(out) if not math.isfinite(value)]
        if bad:  # returned as they are: the driver skips the step and stops a run that keeps doing it
            log.warning(
                "reward model %s scored %d of %d completions as non-finite (first: completion %d = %s); "
                "the RM checkpoint may be broken or overflowed",
                self.reward_model_dir,
                len(bad),
                len(out),
                bad[0],
                out[bad[0]],
            )
        return out


def submit_score(
    actor: ActorHandle,
    posts: list[str],
    completions: list[str],
    timeout_s: float,
    retries: int,
    counters: Counter | None = None,
) -> Pending[dict[str, list[float]]]:
    """`actor.score`, submitted now; the result waits at most `timeout_s` per attempt and makes up to
    `retries` more attempts after a timeout or an actor death (each counted in
    `counters["reward_retries"]`), then raises `RewardTimeoutError` (group.call_with_retries)."""
    return call_with_retries(
        actor,
        "score",
        (posts, completions),
        timeout_s=timeout_s,
        retries=retries,
        what=f"reward call for {len(completions)} completions",
        section="rl.reward",
        error=RewardTimeoutError,
        counters=counters,
        logger=log,
    )
