"""The learner role of GRPO: a DeepSpeed engine over M ranks that turns scored samples into updates.

`LearnerRank` is one rank, a plain class (world 1 in a plain process for tests); `LearnerGroup` runs M
as Ray actors and fans every call out to all ranks (under ZeRO-3 every forward and gather is collective).

One `train_step` is one optimizer step per inner epoch: every rank's share of the B*G samples is split
into micro-batches (`rl.learner.micro_batch_size` rows, or `max_tokens_per_micro_batch` padded tokens)
whose gradients accumulate. Each micro-batch's loss (`rl.algo.agg`) is weighted by the count its
aggregation divides by (`algo.losses.agg_weight`: tokens, sequences or rows) over the step's total on
every rank, all-reduced once, and multiplied by the world size that DeepSpeed's gradient averaging
divides by: the gradient is the one of the whole batch in one piece (`token_mean` is the step's token
mean, `seq_sum_norm` divides by the step's N * max_new_tokens), however it is split. Every rank runs
the same number of micro-batches (the longest plan; the others add empty ones), as ZeRO-3's
lock-step gathers need, and the accumulation boundary is set by hand at the last one.

Log-probs: logits over `rl.rollout.temperature`, as reference and rollouts have them; no top-p (README).
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from empathy_ray.actors.adapter_sync import gather_adapter
from empathy_ray.actors.learner_config import trainer_config
from empathy_ray.actors.learner_stats import StepStats
from empathy_ray.actors.weight_sync import Broadcaster, SyncStats
from empathy_ray.algo.importance import padded_rows, tis_weights
from empathy_ray.algo.kl import approx_kl
from empathy_ray.algo.losses import (
    agg_weight,
    entropy_from_logits,
    logprobs_from_logits,
    policy_loss,
    sampled_vocab,
    tempered,
)
from empathy_ray.algo.masked import masked_mean
from empathy_ray.config import RLConfig
from empathy_ray.modeling.batching import ResponseBatch, check_train_items, collate, response_logits
from empathy_ray.runtime.checkpoint import load_rng, save_rng
from empathy_ray.runtime.placement import node_address
from empathy_ray.train.engine import (
    apply_lora,
    created_partitioned,
    enable_gradient_checkpointing,
    export_hf,
    full_state_dict,
    init_engine,
    merged_state,
    model_dtype,
)
from empathy_ray.train.packing import pack_by_tokens

log = logging.getLogger(__name__)


class LearnerRank:
    """One rank of the learner: the policy under DeepSpeed, its GRPO update, and its weights."""

    def __init__(self, model_dir: str, cfg: RLConfig, rank: int, world_size: int, seed: int = 0) -> None:
        lc = cfg.learner
        self.trainer_config = trainer_config(cfg)
        if world_size != lc.num_workers or not 0 <= rank < world_size:
            raise ValueError(
                f"LearnerRank(rank={rank}, world_size={world_size}) with rl.learner.num_workers={lc.num_workers}"
            )
        self.model_dir, self.cfg, self.seed = model_dir, cfg, seed
        self.rank, self.world_size = rank, world_size
        self.engine: Any = None

    def address(self) -> tuple[str, int]:
        """This rank's node IP and a free port there: rank 0's is the group's rendezvous."""
        return node_address()

    def setup(self, master_addr: str, master_port: int, local_rank: int | None = None) -> None:
        """Join the process group (or the one a launcher already made), load the policy, build the engine."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        lc = self.cfg.learner
        local_rank = self.rank if local_rank is None else local_rank
        use_cuda = lc.num_gpus > 0 and torch.cuda.is_available()
        if lc.num_gpus > 0 and not use_cuda:
            log.warning("rl.learner.num_gpus=%g but CUDA is not available here: training on CPU", lc.num_gpus)
        if use_cuda:
            local_rank %= torch.cuda.device_count()  # a Ray GPU actor sees only its own GPU(s)
            torch.cuda.set_device(local_rank)
        os.environ.update(
            RANK=str(self.rank),
            LOCAL_RANK=str(local_rank),
            WORLD_SIZE=str(self.world_size),
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
        )
        self._comm_device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if not dist.is_initialized():
            # NCCL would otherwise guess cuda:<global rank>, absent in an actor that sees one GPU; not
            # bound for one rank, which has no peer for the comm splits a bound device makes (as DeepSpeed)
            dist.init_process_group(
                "nccl" if use_cuda else "gloo",
                rank=self.rank,
                world_size=self.world_size,
                timeout=timedelta(minutes=30),
                device_id=self._comm_device if use_cuda and self.world_size > 1 else None,
            )
        elif (dist.get_rank(), dist.get_world_size()) != (self.rank, self.world_size):
            raise RuntimeError(
                f"torch.distributed is already initialised as rank {dist.get_rank()}/{dist.get_world_size()}, "
                f"not {self.rank}/{self.world_size}"
            )
        torch.manual_seed(self.seed)
        with created_partitioned(self.trainer_config, self.world_size):  # ZeRO-3: each rank its shard
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=model_dtype(lc.bf16))
        model.config.use_cache = False
        enable_gradient_checkpointing(model, lc.gradient_checkpointing)
        self.pad_id = model.config.pad_token_id or 0
        self.tokenizer_size = len(AutoTokenizer.from_pretrained(self.model_dir))  # rows past it: padding
        total_steps = self.cfg.steps * lc.inner_epochs
        self.engine = init_engine(apply_lora(model, lc.lora), self.trainer_config, total_steps)
        log.info("DeepSpeed ZeRO-%d learner rank %d/%d", lc.zero_stage, self.rank, self.world_size)

    # -- forward -------------------------------------------------------------------------------------

    def _response_logits(self, batch: ResponseBatch) -> torch.Tensor:
        """[n, R, V] logits of the response tokens over the ids and at the temperature the rollout samples."""
        logits = sampled_vocab(response_logits(self.engine, batch), self.tokenizer_size)
        return tempered(logits, self.cfg.rollout.temperature)

    def _plan(self, lengths: list[int]) -> list[list[int]]:
        """Row indices per micro-batch: by padded-token budget when one is set, else by row count."""
        lc = self.cfg.learner
        budget = lc.max_tokens_per_micro_batch
        return pack_by_tokens(lengths, budget, 0 if budget else lc.micro_batch_size)

    def _idle_forward(self) -> torch.Tensor:
        """A forward on one pad token: keeps ZeRO-3's per-layer gathers in step with busier ranks."""
        ids = torch.full((1, 1), self.pad_id, dtype=torch.long, device=self.engine.device)
        return self.engine(input_ids=ids, use_cache=False).logits

    def _all_reduce(
        self, values: list[float], op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM
    ) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        if self.world_size > 1:
            dist.all_reduce(t, op=op)
        return t.tolist()

    def _policy(self, reference: bool) -> contextlib.AbstractContextManager:
        """The current policy, or with `reference` the starting one: the LoRA adapter switched off leaves
        the base this learner started from (rl.reference.source=learner)."""
        if not reference:
            return contextlib.nullcontext()
        if not self.cfg.learner.lora.enabled:
            raise ValueError("reference log-probs from the learner need a LoRA learner (rl.learner.lora)")
        return self.engine.module.disable_adapter()

    @torch.no_grad()
    def logprobs(
        self, items: list[tuple[list[int], list[int]]], reference: bool = False
    ) -> list[list[float]]:
        """Log-prob of every response token under the current weights (with `reference`: the starting
        policy's), aligned 1:1 with response_ids.

        Collective under ZeRO-3 (every rank calls it, with its own items, possibly none)."""
        for i, (prompt, _) in enumerate(items):
            if not prompt:
                raise ValueError(f"LearnerRank.logprobs: item {i} has no prompt tokens to condition on")
        with self._policy(reference):
            return self._logprobs(items)

    def _logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        self.engine.eval()
        groups = self._plan([len(p) + len(r) for p, r in items])
        rounds = len(groups)
        if self.cfg.learner.zero_stage == 3:
            rounds = int(self._all_reduce([rounds], dist.ReduceOp.MAX)[0])
        out: list[list[float]] = [[] for _ in items]
        for k in range(rounds):
            if k >= len(groups):
                self._idle_forward()
                continue
            batch = collate([items[i] for i in groups[k]], self.pad_id).to(self.engine.device)
            logp = logprobs_from_logits(self._response_logits(batch), batch.labels).cpu()
            for row, i in enumerate(groups[k]):
                out[i] = logp[row, : len(items[i][1])].tolist()
        return out

    # -- update --------------------------------------------------------------------------------------

    def _batches(self, items: list[dict[str, Any]], with_ref: bool) -> list[ResponseBatch]:
        out = []
        for rows in self._plan([len(it["prompt_ids"]) + len(it["response_ids"]) for it in items]):
            chunk = [items[i] for i in rows]
            b = collate([(it["prompt_ids"], it["response_ids"]) for it in chunk], self.pad_id)
            b.advantages = torch.tensor([float(it["advantage"]) for it in chunk])
            if with_ref:
                b.ref_logprobs = padded_rows([it["ref_logprobs"] for it in chunk], b.labels.shape[1])
            out.append(b.to(self.engine.device))
        return out

    def _rollout_logprobs(self, items: list[dict[str, Any]], batches: list[ResponseBatch]) -> list[Any]:
        """Per micro-batch of `_batches`, the rollout engine's log-probs [n, R] of its tokens; None each
        when the items carry none (callers other than the driver)."""
        if not any("rollout_logprobs" in it for it in items):
            return [None] * len(batches)
        lengths = [(len(it.get("rollout_logprobs", [])), len(it["response_ids"])) for it in items]
        bad = [i for i, (n, m) in enumerate(lengths) if n != m]
        if bad:
            raise ValueError(f"train_step: items {bad} need one rollout_logprobs value per response token")
        plan = self._plan([len(it["prompt_ids"]) + len(it["response_ids"]) for it in items])
        rows = [[items[i]["rollout_logprobs"] for i in r] for r in plan]
        return [
            padded_rows(r, b.labels.shape[1]).to(b.labels.device) for r, b in zip(rows, batches, strict=True)
        ]

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank: they must all skip a micro-batch together."""
        return self._all_reduce([float(torch.isfinite(loss).item())], dist.ReduceOp.MIN)[0] == 1.0

    def _loss(
        self, b: ResponseBatch, old_logp: torch.Tensor | None, with_ref: bool, rollout: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The clipped policy loss of one micro-batch (with grad) and its detached stats. With the
        rollout's log-probs, each token's term is weighted by min(p_old / p_rollout, rl.algo.tis_cap)
        (algo/importance.py; tis_cap 0: not weighted, the gap still measured)."""
        algo = self.cfg.algo
        kl_in_loss = algo.kl_coef > 0 and algo.kl_in == "loss"
        logits = self._response_logits(b)
        logp = logprobs_from_logits(logits, b.labels)
        kl = approx_kl(logp, b.ref_logprobs, algo.kl_kind, mask=b.mask) if with_ref else None
        old = logp.detach() if old_logp is None else old_logp
        tis_w, tis_st = tis_weights(old, rollout, b.mask, algo.tis_cap) if rollout is not None else (None, {})
        loss, st = policy_loss(
            logp,
            old,
            b.advantages,
            b.mask,
            algo.clip_low,
            algo.clip_high,
            algo.agg,
            kl=kl if kl_in_loss else None,
            kl_coef=algo.kl_coef if kl_in_loss else 0.0,
            max_len=self.cfg.rollout.max_new_tokens,
            tis_weight=tis_w if algo.tis_cap > 0 else None,
        )
        st |= tis_st
        with torch.no_grad():
            st["policy_loss"] = loss.detach()
            st["entropy"] = masked_mean(entropy_from_logits(logits.detach()), b.mask)
            st["kl"] = masked_mean(kl.detach(), b.mask) if kl is not None else torch.zeros(())
        return loss, st

    def train_step(self, items: list[dict[str, Any]]) -> dict[str, float]:
        """GRPO update on this rank's share: one optimizer step per inner epoch; stats over all ranks.

        Items: {"prompt_ids", "response_ids", "advantage", "ref_logprobs" (empty when KL is off),
        optionally "rollout_logprobs" (the engine's, for truncated importance sampling)}.
        The old-policy log-probs come from a no-grad pass before the first update; with inner_epochs=1
        they are exactly the current log-probs (logp.detach()), so the ratio is 1 and nothing clips:
        the loss is the plain policy gradient. "train/kl" is the mean k-estimate against the reference
        (0 without ref_logprobs); "train/tokens" counts the step's response tokens over all ranks once.
        """
        algo, lc = self.cfg.algo, self.cfg.learner
        needs_ref = algo.kl_coef > 0 and algo.kl_in == "loss"
        with_ref = check_train_items(items, lc.micro_batch_size * self.trainer_config.grad_accum, needs_ref)
        batches = self._batches(items, with_ref)
        rollouts = self._rollout_logprobs(items, batches)
        weights = [agg_weight(algo.agg, b.mask) for b in batches]
        tokens = [int(b.mask.sum()) for b in batches]
        # The step's loss normaliser and token count over every rank (one all-reduce), and the number
        # of micro-batches every rank runs: the longest plan (ZeRO-3 gathers in lock step).
        total_weight, total_tokens = self._all_reduce([sum(weights), sum(tokens)])
        rounds = int(self._all_reduce([len(batches)], dist.ReduceOp.MAX)[0])
        # DeepSpeed averages gradients over ranks: the world size undoes it, so the sum is the step's.
        scales = [w / total_weight * self.world_size if total_weight else 0.0 for w in weights]
        old: list[torch.Tensor | None] = [None] * len(batches)
        if lc.inner_epochs > 1:
            self.engine.eval()
            with torch.no_grad():
                old = [logprobs_from_logits(self._response_logits(b), b.labels) for b in batches]
                for _ in range(rounds - len(batches)):  # in step with longer plans (ZeRO-3)
                    self._idle_forward()
        self.engine.train()
        acc = StepStats()
        skipped = 0
        for epoch in range(lc.inner_epochs):
            for k in range(rounds):
                self.engine.set_gradient_accumulation_boundary(k == rounds - 1)
                if k < len(batches):
                    loss, st = self._loss(batches[k], old[k], with_ref, rollouts[k])
                    loss = loss * scales[k]
                else:  # an empty micro-batch: this rank's plan is shorter than another's
                    loss, st = self._idle_forward().sum() * 0.0, None
                if not self._all_finite(loss):
                    log.warning(
                        "non-finite loss in micro-batch %d, inner epoch %d: no gradient from it", k, epoch
                    )
                    skipped += 1
                    # Every rank must backward and step together: a fresh tiny forward gives exact zero
                    del loss  # gradients; 0 * (the NaN loss) would carry NaN into the weights
                    loss, st = self._idle_forward().sum() * 0.0, None
                if st is not None:
                    acc.add(st, weights[k], tokens[k])
                self.engine.backward(loss, scale_wrt_gas=False)
                self.engine.step()
            acc.add_grad_norm(self.engine.get_global_grad_norm())
        stats = acc.reduce(self._all_reduce)
        stats["train/lr"] = float(self.engine.get_lr()[0])
        stats["train/tokens"] = total_tokens
        stats["train/skipped_microbatches"] = skipped  # the same on every rank: the decision is collective
        return stats

    # -- weights -------------------------------------------------------------------------------------

    def weights_for_sync(self) -> dict[str, torch.Tensor] | None:
        """Full weights under plain HF names (what `Qwen2ForCausalLM.state_dict()` holds), on CPU, on
        rank 0; None elsewhere. Collective under ZeRO-3. A LoRA adapter comes merged into its base."""
        state = full_state_dict(self.engine)
        if state is None or not self.cfg.learner.lora.enabled:
            return state
        return merged_state(self.engine.module, state)

    def tensors_for_sync(self) -> dict[str, torch.Tensor] | None:
        """What the object-store sync ships: the LoRA adapter alone if rl.sync_lora says so, else all."""
        return gather_adapter(self.engine) if self.cfg.adapter_sync else self.weights_for_sync()

    @torch.no_grad()
    def weights_checksum(self) -> float:
        """A float64 fingerprint of the parameters this rank holds (its own shard under ZeRO-3)."""
        total = 0.0
        for i, p in enumerate(self.engine.module.parameters()):
            local = getattr(p, "ds_tensor", p)
            total += (i + 1) * float(local.detach().double().sum())
        return total

    # -- collective weight sync: this rank 0 process broadcasts to every vLLM worker ---------------

    def init_collective_sync(self, workers: list[Any], tensor_parallel_size: int, backend: str) -> None:
        """Rank 0 joins the rollout workers' broadcast group as its source (weight_sync.CollectiveSync)."""
        if self.rank == 0:
            self._broadcaster = Broadcaster(workers, tensor_parallel_size, backend)

    def readmit_collective(self) -> SyncStats | None:
        """Rank 0: the group formed again with a restarted rollout worker (`Broadcaster.readmit`)."""
        return self._broadcaster.readmit()

    def publish_collective(self, version: int) -> SyncStats | None:
        """Gather the weights (collective under ZeRO-3) and broadcast them from rank 0: its stats."""
        state = self.weights_for_sync()
        return self._broadcaster.broadcast(state, version) if self.rank == 0 else None

    def save(self, directory: str) -> None:
        """HF export of the (merged) policy into `directory` on rank 0; DeepSpeed state (optimizer,
        scheduler, step) into `directory/learner_state` on every rank. Multi-node: needs shared storage."""
        out = Path(directory)
        self.export(directory)
        frozen = self.cfg.learner.lora.enabled  # LoRA: the base is model_dir's, the adapter is saved
        self.engine.save_checkpoint(str(out / "learner_state"), exclude_frozen_parameters=frozen)
        save_rng(out / f"rng_rank{self.rank}.pt")  # DeepSpeed keeps no RNG state

    def export(self, directory: str) -> None:
        """The (merged) policy as a plain HF directory, written by rank 0 (collective under ZeRO-3)."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        out = Path(directory)
        state = self.weights_for_sync()
        if state is not None:
            out.mkdir(parents=True, exist_ok=True)
            skeleton = AutoModelForCausalLM.from_config(
                AutoConfig.from_pretrained(self.model_dir), dtype=model_dtype(self.cfg.learner.bf16)
            )
            export_hf(state, skeleton, AutoTokenizer.from_pretrained(self.model_dir), out)

    def load(self, directory: str) -> None:
        """Resume weights, optimizer, scheduler and RNG states from `save(directory)`."""
        path = Path(directory) / "learner_state"
        strict = not self.cfg.learner.lora.enabled  # LoRA: the frozen base was not saved
        loaded, _ = self.engine.load_checkpoint(str(path), load_module_strict=strict)
        if loaded is None:
            raise FileNotFoundError(f"no DeepSpeed learner checkpoint (a 'latest' file) under {path}")
        load_rng(Path(directory) / f"rng_rank{self.rank}.pt")
