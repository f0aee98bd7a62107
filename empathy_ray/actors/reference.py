"""The reference role of GRPO: log-probs of sampled answers under the frozen starting policy (for the KL term).

`ReferencePolicy` is a plain class (testable without Ray); the RL roles run it as a restartable actor
(a group of one). It never trains, so it holds no optimizer state and no gradients.
"""

from __future__ import annotations

import logging

import torch
from transformers import AutoModelForCausalLM

from empathy_ray.algo.losses import logprobs_from_logits
from empathy_ray.config import ReferenceConfig
from empathy_ray.modeling.batching import collate, response_logits

log = logging.getLogger(__name__)


class ReferencePolicy:
    """A frozen copy of the policy the run started from."""

    def __init__(self, model_dir: str, cfg: ReferenceConfig) -> None:
        self.batch_size = cfg.batch_size
        dtype = torch.bfloat16 if cfg.bf16 else torch.float32
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        self.model = model.to(self.device).eval().requires_grad_(False)
        log.info("reference policy %s loaded on %s (%s)", model_dir, self.device, dtype)

    @torch.no_grad()
    def logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """For each (prompt_ids, response_ids): the log-prob of every response token given all tokens
        before it (teacher forcing), one float per response token, in the order of `items`."""
        for i, (prompt, _) in enumerate(items):
            if not prompt:
                raise ValueError(f"ReferencePolicy.logprobs: item {i} has no prompt tokens to condition on")
        # Similar lengths share a batch, so little compute goes to padding; results do not depend on it.
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]) + len(items[i][1]))
        out: list[list[float]] = [[] for _ in items]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, row in zip(batch, self._batch_logprobs([items[i] for i in batch]), strict=True):
                out[i] = row
        return out

    def _batch_logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        batch = collate(items, pad_id=0).to(self.device)  # right padding: masked, never attended to
        logp = logprobs_from_logits(response_logits(self.model, batch), batch.labels).cpu()
        return [logp[row, : len(response)].tolist() for row, (_, response) in enumerate(items)]
