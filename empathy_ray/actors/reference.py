"""The reference role of GRPO: log-probs of sampled answers under the frozen starting policy (for the KL term).

`ReferencePolicy` is a plain class (testable without Ray); the RL roles run it as a restartable actor
(a group of one) whose calls are retried after a timeout or a death like the reward actor's (Ray
restarts it; `Roles.ref_logprobs` re-sends the call, rl.reference.timeout_s and retries bound it).
It never trains, so it holds no optimizer state and no gradients. It scores at the
rollout's sampling temperature, as the learner does, so the KL term (in the loss, or in the reward
against the sampler's own log-probs) compares the distributions the samples came from.
"""

from __future__ import annotations

import logging

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.algo.losses import logprobs_from_logits, sampled_vocab, tempered
from empathy_ray.config import ReferenceConfig
from empathy_ray.modeling.batching import collate, response_logits
from empathy_ray.train.engine import model_dtype
from empathy_ray.train.packing import pack_by_tokens

log = logging.getLogger(__name__)


class ReferenceTimeoutError(RuntimeError):
    """The reference actor gave no log-probs within the allowed attempts (rl.reference.timeout_s, retries)."""


class ReferencePolicy:
    """A frozen copy of the policy the run started from."""

    def __init__(self, model_dir: str, cfg: ReferenceConfig, temperature: float = 1.0) -> None:
        self.cfg, self.temperature = cfg, temperature
        dtype = model_dtype(cfg.bf16)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.tokenizer_size = len(AutoTokenizer.from_pretrained(model_dir))  # rows past it: never sampled
        log.info(
            "reference policy %s loaded on %s (%s), scoring at temperature %g",
            model_dir,
            self.device,
            dtype,
            temperature,
        )

    @torch.no_grad()
    def logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """For each (prompt_ids, response_ids): the log-prob of every response token given all tokens
        before it (teacher forcing), one float per response token, in the order of `items`."""
        for i, (prompt, _) in enumerate(items):
            if not prompt:
                raise ValueError(f"ReferencePolicy.logprobs: item {i} has no prompt tokens to condition on")
        # Similar lengths share a batch (at most batch_size rows and max_tokens_per_batch padded tokens),
        # so little compute goes to padding; results do not depend on it.
        lengths = [len(p) + len(r) for p, r in items]
        out: list[list[float]] = [[] for _ in items]
        for batch in pack_by_tokens(lengths, self.cfg.max_tokens_per_batch, self.cfg.batch_size):
            for i, row in zip(batch, self._batch_logprobs([items[i] for i in batch]), strict=True):
                out[i] = row
        return out

    def _batch_logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        batch = collate(items, pad_id=0).to(self.device)  # right padding: masked, never attended to
        logits = tempered(
            sampled_vocab(response_logits(self.model, batch), self.tokenizer_size), self.temperature
        )
        logp = logprobs_from_logits(logits, batch.labels).cpu()
        return [logp[row, : len(response)].tolist() for row, (_, response) in enumerate(items)]
