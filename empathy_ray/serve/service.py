"""The counselling chat service: one async vLLM engine, the crisis guard around it.

A plain class (no Ray) so the Serve deployment in `app.py` stays a thin HTTP shell. Concurrent
requests go to one `AsyncLLM`, which batches them step by step (continuous batching).

Safety, per request:
  * before generation, every user turn is assessed (`domain.safety_conversation`); the most serious
    turn decides, so a risk stated earlier keeps the safety path on a benign latest message. A guard
    model (`serve.safety.guard_url`, empathy_ray/guard.py) may raise that verdict, never lower it.
  * risk "high": the model is not asked; every choice is the crisis reply (serve/crisis.py).
  * otherwise every model answer, and its CoE reasoning, passes the output check
    (`domain.safety_output`) before it is shown, in every choice, streamed or not. A blocked answer is
    replaced by the crisis reply (risky conversation) or a short safe reply (no risk), and the
    response's `safety.output_blocked` lists the choice.
  * risk "low": the crisis reply first, then the model's answer if it passed.
Streaming holds back one sentence per choice (`streaming.CheckedStream`): a sentence is shown once
the check has seen it whole. The logs count risk levels, guard outcomes and blocked answers, never texts.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empathy_ray.config import ServeConfig
from empathy_ray.domain import coe
from empathy_ray.domain.safety import SafetyAssessment
from empathy_ray.domain.safety_conversation import assess_conversation
from empathy_ray.domain.safety_output import check_output
from empathy_ray.guard import GuardClient
from empathy_ray.modeling.chat import encode_messages
from empathy_ray.serve import protocol as P
from empathy_ray.serve.crisis import CrisisReplies, Replies
from empathy_ray.serve.streaming import CheckedStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """A request's safety verdict before generation: risk, the turn it came from, the guard's part,
    and the replies of the region whose resources apply."""

    assessment: SafetyAssessment
    turn: int | None
    guard: str
    replies: Replies

    def safety(self, path: str, blocked: list[int]) -> dict[str, Any]:
        return P.safety_object(self.assessment, path, self.turn, self.replies.region, self.guard, blocked)


def blocks(reasoning: str, answer: str) -> bool:
    """The output check on what a choice would show: its CoE reasoning and its answer."""
    return check_output(answer).blocked or check_output(reasoning).blocked


class ChatService:
    def __init__(self, model_dir: str | Path, cfg: ServeConfig) -> None:
        from transformers import AutoTokenizer

        from empathy_ray.modeling.vllm_version import check_vllm_version

        check_vllm_version()  # before vLLM is imported: another release fails late and obscurely
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from empathy_ray.modeling.generation import (
            Vocabulary,
            cpu_engine_kwargs,
            engine_worker_in_engine_process,
        )

        self.cfg = cfg
        self.replies = CrisisReplies(cfg)
        self.guard = GuardClient(cfg.safety) if cfg.safety.guard_url else None
        self.counts: Counter[str] = Counter()  # output checks since start: "answers", "blocked"
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        # embedding rows past the tokenizer (Qwen pads its vocabulary) are never sampled
        self.allowed_ids = Vocabulary.of(str(model_dir), self.tokenizer).allowed_ids()
        engine_worker_in_engine_process(cfg.tensor_parallel_size)
        args = AsyncEngineArgs(
            model=str(model_dir),
            max_model_len=cfg.max_model_len,
            max_num_seqs=cfg.max_num_seqs,
            tensor_parallel_size=cfg.tensor_parallel_size,
            **cpu_engine_kwargs(),
        )
        t0 = time.perf_counter()
        self.engine = AsyncLLM.from_engine_args(args)
        log.info("serve: vLLM AsyncLLM engine up for %s in %.1fs", model_dir, time.perf_counter() - t0)

    def shutdown(self) -> None:
        self.engine.shutdown()

    # -- helpers ------------------------------------------------------------------------------

    def prompt_ids(self, req: P.ChatRequest) -> list[int]:
        """The chat prompt; the CoE system prompt the model was trained with unless the client sent one."""
        ids = encode_messages(self.tokenizer, req.messages)
        if len(ids) + req.max_tokens > self.cfg.max_model_len:
            raise P.ApiError(
                400,
                f"the conversation is {len(ids)} tokens and max_tokens is {req.max_tokens}; together they "
                f"exceed the model's context of {self.cfg.max_model_len} tokens: shorten the messages or max_tokens",
                "messages",
                "context_length_exceeded",
            )
        return ids

    def _params(self, req: P.ChatRequest, final_only: bool):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            stop=req.stop or None,
            allowed_token_ids=self.allowed_ids,
            seed=req.seed,
            output_kind=RequestOutputKind.FINAL_ONLY if final_only else RequestOutputKind.CUMULATIVE,
        )

    async def _generate(self, rid: str, ids: list[int], req: P.ChatRequest):
        """Final outputs of the engine for this request (n choices)."""
        final = None
        async for out in self.engine.generate({"prompt_token_ids": ids}, self._params(req, True), rid):
            final = out
        return final

    async def verdict(self, req: P.ChatRequest) -> Verdict:
        """The conversation's risk (every user turn), raised by the guard model when one is set."""
        assessment, turn = assess_conversation(req.messages)
        guard = "off"
        if self.guard is not None:
            outcome = await self.guard.review(req.messages, assessment, turn)
            assessment, turn, guard = outcome.assessment, outcome.turn, outcome.outcome
        return Verdict(assessment, turn, guard, self.replies.for_messages(req.messages))

    def _count(self, checked: int, blocked: int) -> None:
        self.counts["answers"] += checked
        self.counts["blocked"] += blocked

    def _choice(self, index: int, text: str | None, finish: str, verdict: Verdict) -> tuple[dict, bool]:
        """One choice of a whole response, and whether the output check blocked its answer."""
        parsed = coe.parse(text) if text is not None else None
        reasoning = P.reasoning_text(parsed)
        answer = parsed.answer if parsed else None
        blocked = parsed is not None and blocks(reasoning or "", answer or "")
        content = verdict.replies.compose(answer, verdict.assessment, blocked)
        message = {
            "role": "assistant",
            "content": content,
            "reasoning_content": None if blocked else reasoning,
        }
        choice = {"index": index, "message": message, "finish_reason": finish}
        return choice | {"coe": P.coe_object(parsed, withheld=blocked)}, blocked

    # -- requests -----------------------------------------------------------------------------

    async def complete(self, req: P.ChatRequest, rid: str, verdict: Verdict | None = None) -> dict[str, Any]:
        ids = self.prompt_ids(req)
        verdict = verdict or await self.verdict(req)
        completion_tokens = 0
        if verdict.assessment.risk_level == "high":
            results = [self._choice(i, None, "stop", verdict) for i in range(req.n)]
        else:
            out = await self._generate(rid, ids, req)
            results = [self._choice(o.index, o.text, o.finish_reason or "stop", verdict) for o in out.outputs]
            completion_tokens = sum(len(o.token_ids) for o in out.outputs)
            self._count(len(results), sum(b for _, b in results))
        choices = [c for c, _ in results]
        blocked = [c["index"] for c, b in results if b]
        path = self._path(verdict, [c["message"]["content"] for c in choices], blocked)
        self._log(rid, req, verdict, path, blocked, completion_tokens)
        return P.completion_body(
            rid,
            self.cfg.model_name,
            choices,
            P.usage(len(ids), completion_tokens),
            verdict.safety(path, blocked),
        )

    def _path(self, verdict: Verdict, contents: list[str], blocked: list[int]) -> str:
        if not verdict.assessment.is_risky:
            return "safe_reply" if contents and len(blocked) == len(contents) else "model"
        # the model's words reached the user when a reply is longer than the crisis message alone
        crisis_only = verdict.replies.crisis(verdict.assessment)
        return "crisis+model" if any(c != crisis_only for c in contents) else "crisis"

    def _log(
        self, rid: str, req: P.ChatRequest, v: Verdict, path: str, blocked: list[int], tokens: int
    ) -> None:
        """Sizes, levels and counts only: never a user's or the model's text."""
        log.info(
            "%s: %d messages, risk %s (turn %s, guard %s, region %s), path %s, output blocked %d of %d "
            "(%d of %d answers since start), %d completion tokens",
            rid, len(req.messages), v.assessment.risk_level, v.turn, v.guard, v.replies.region, path,
            len(blocked), req.n, self.counts["blocked"], self.counts["answers"], tokens,
        )  # fmt: skip

    async def stream(self, req: P.ChatRequest, rid: str) -> AsyncIterator[str]:
        """Server-sent events: the safety object, role, reasoning/content deltas per choice, [DONE].

        When the output check blocks a choice, its replacement follows what was already shown, and a
        chunk with the updated `safety` object (`output_blocked`) is sent.
        """
        ids = self.prompt_ids(req)  # raises ApiError before the stream starts
        verdict = await self.verdict(req)
        if verdict.assessment.risk_level == "high":
            body = await self.complete(req, rid, verdict)
            async for event in self._replay(req, rid, body):
                yield event
            return
        async for event in self._stream_checked(req, rid, ids, verdict):
            yield event

    async def _replay(self, req: P.ChatRequest, rid: str, body: dict[str, Any]) -> AsyncIterator[str]:
        """A finished response as a stream, paragraph by paragraph."""
        model, created = self.cfg.model_name, body["created"]
        yield P.chunk_body(rid, model, created, [], safety=body["safety"])
        for c in body["choices"]:
            m = c["message"]
            delta = {"role": "assistant", "content": "", "reasoning_content": m["reasoning_content"]}
            yield P.chunk_body(rid, model, created, [_delta(c["index"], delta)])
            parts = m["content"].split("\n\n")
            for j, part in enumerate(parts):
                text = part + ("\n\n" if j < len(parts) - 1 else "")
                yield P.chunk_body(rid, model, created, [_delta(c["index"], {"content": text})])
            yield P.chunk_body(
                rid, model, created, [_delta(c["index"], {}, c["finish_reason"], coe=c["coe"])]
            )
        if req.include_usage:
            yield P.chunk_body(rid, model, created, [], usage=body["usage"])
        yield "data: [DONE]\n\n"

    async def _stream_checked(
        self, req: P.ChatRequest, rid: str, ids: list[int], verdict: Verdict
    ) -> AsyncIterator[str]:
        """The model's answers as they are generated, each sentence shown once the output check passed it."""
        model, created = self.cfg.model_name, int(time.time())
        state = _StreamState(req.n, verdict)

        def chunk(index: int, delta: dict, finish: str | None = None, **extra: Any) -> str:
            return P.chunk_body(rid, model, created, [_delta(index, delta, finish, **extra)])

        shown = (state.path(), [])  # the safety object last sent: sent again whenever it changes
        yield P.chunk_body(rid, model, created, [], safety=verdict.safety(*shown))
        for i in range(req.n):
            yield chunk(i, {"role": "assistant", "content": state.prefix})
        async for out in self.engine.generate({"prompt_token_ids": ids}, self._params(req, False), rid):
            for o in out.outputs:
                state.tokens[o.index] = len(o.token_ids)
                done = o.finish_reason is not None
                delta, replacement = state.feed(o.index, o.text, done)
                if delta:
                    yield chunk(o.index, delta)
                if replacement:
                    yield chunk(o.index, {"content": replacement})
                if (state.path(), state.blocked) != shown:
                    shown = (state.path(), list(state.blocked))
                    yield P.chunk_body(rid, model, created, [], safety=verdict.safety(*shown))
                if done and state.finished[o.index] is None:
                    state.finished[o.index] = o.finish_reason
                    withheld = state.streams[o.index].blocked
                    yield chunk(
                        o.index, {}, o.finish_reason, coe=P.coe_object(coe.parse(o.text), withheld=withheld)
                    )
        self._count(req.n, len(state.blocked))
        self._log(rid, req, verdict, state.path(), state.blocked, sum(state.tokens))
        if req.include_usage:
            yield P.chunk_body(rid, model, created, [], usage=P.usage(len(ids), sum(state.tokens)))
        yield "data: [DONE]\n\n"


def _delta(index: int, delta: dict, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish} | extra


class _StreamState:
    """The choices of one streamed request: their checked streams and what each has shown so far."""

    def __init__(self, n: int, verdict: Verdict) -> None:
        self.verdict = verdict
        risky = verdict.assessment.is_risky
        self.prefix = verdict.replies.crisis(verdict.assessment) if risky else ""  # the crisis reply first
        self.streams = [CheckedStream(blocks) for _ in range(n)]
        self.answered = [False] * n  # whether some of the model's answer was shown
        self.finished: list[str | None] = [None] * n
        self.tokens = [0] * n
        self.blocked: list[int] = []

    def feed(self, index: int, text: str, final: bool) -> tuple[dict[str, str], str]:
        """(delta to show, replacement text when the check has just blocked this choice, else "")."""
        stream = self.streams[index]
        delta = stream.feed(text, final)
        if delta.get("content"):
            if self.prefix and not self.answered[index]:
                delta["content"] = "\n\n" + delta["content"]  # the answer follows the crisis reply
            self.answered[index] = True
        if not stream.blocked or index in self.blocked:
            return delta, ""
        self.blocked.append(index)
        if self.verdict.assessment.is_risky:
            return delta, ""  # the crisis reply is already shown: nothing of the answer follows it
        lead = "\n\n" if self.answered[index] else ""
        return delta, lead + self.verdict.replies.safe()

    def path(self) -> str:
        if not self.verdict.assessment.is_risky:
            return "safe_reply" if len(self.blocked) == len(self.streams) else "model"
        return "crisis+model" if any(self.answered) else "crisis"
