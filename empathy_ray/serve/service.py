"""The counselling chat service: one async vLLM engine, the safety guard in front of it.

A plain class (no Ray) so the Serve deployment in `app.py` stays a thin HTTP shell. Concurrent
requests go to one `AsyncLLM`, which batches them step by step (continuous batching).

Safety policy, per request, on the latest user message (`safety.assess`):
  * risk "high": the model is not asked at all; every choice is the crisis reply.
  * risk "low":  the model answers, and the reply is the crisis message followed by that answer
                 (or the crisis message alone when the answer is empty or harmful) - `compose_reply`.
  * risk "none": the model's answer.
A risky request is generated in full before anything is sent, also when streaming: the answer must
be checked before a user sees any of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from empathy_ray.config import ServeConfig
from empathy_ray.domain import coe
from empathy_ray.domain.safety import SafetyAssessment, SafetyConfig, assess, compose_reply
from empathy_ray.modeling.chat import encode_messages
from empathy_ray.serve import protocol as P
from empathy_ray.serve.streaming import CoEStream

log = logging.getLogger(__name__)


def safety_config(cfg: ServeConfig) -> SafetyConfig:
    kw: dict[str, Any] = {}
    if cfg.crisis_resources:
        kw["resources"] = tuple(cfg.crisis_resources)
    if cfg.crisis_message:
        kw["support_message"] = cfg.crisis_message
    return SafetyConfig(**kw)


class ChatService:
    def __init__(self, model_dir: str | Path, cfg: ServeConfig) -> None:
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from empathy_ray.modeling.generation import cpu_engine_kwargs

        self.cfg = cfg
        self.safety = safety_config(cfg)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
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
            seed=req.seed,
            output_kind=RequestOutputKind.FINAL_ONLY if final_only else RequestOutputKind.CUMULATIVE,
        )

    async def _generate(self, rid: str, ids: list[int], req: P.ChatRequest):
        """Final outputs of the engine for this request (n choices)."""
        final = None
        async for out in self.engine.generate({"prompt_token_ids": ids}, self._params(req, True), rid):
            final = out
        return final

    def _choice(self, index: int, text: str | None, finish: str, assessment: SafetyAssessment) -> dict:
        parsed = coe.parse(text) if text is not None else None
        answer = parsed.answer if parsed else None
        content = compose_reply(answer, assessment, self.safety) if assessment.is_risky else answer
        message = {"role": "assistant", "content": content, "reasoning_content": P.reasoning_text(parsed)}
        return {"index": index, "message": message, "finish_reason": finish, "coe": P.coe_object(parsed)}

    # -- requests -----------------------------------------------------------------------------

    async def complete(self, req: P.ChatRequest, rid: str) -> dict[str, Any]:
        ids = self.prompt_ids(req)
        assessment = assess(req.last_user_text)
        completion_tokens = 0
        if assessment.risk_level == "high":
            choices = [self._choice(i, None, "stop", assessment) for i in range(req.n)]
        else:
            out = await self._generate(rid, ids, req)
            choices = [
                self._choice(o.index, o.text, o.finish_reason or "stop", assessment) for o in out.outputs
            ]
            completion_tokens = sum(len(o.token_ids) for o in out.outputs)
        path = self._safety_path(assessment, choices)
        log.info(
            "%s: %d messages, risk %s, path %s, %d completion tokens",
            rid,
            len(req.messages),
            assessment.risk_level,
            path,
            completion_tokens,
        )
        return P.completion_body(
            rid,
            self.cfg.model_name,
            choices,
            P.usage(len(ids), completion_tokens),
            P.safety_object(assessment, path),
        )

    def _safety_path(self, assessment: SafetyAssessment, choices: list[dict]) -> str:
        if not assessment.is_risky:
            return "model"
        # the model's words reached the user when a reply is longer than the crisis message alone
        crisis_only = compose_reply(None, assessment, self.safety)
        return "crisis+model" if any(c["message"]["content"] != crisis_only for c in choices) else "crisis"

    async def stream(self, req: P.ChatRequest, rid: str) -> AsyncIterator[str]:
        """Server-sent events: role, then reasoning/content deltas per choice, then [DONE]."""
        ids = self.prompt_ids(req)  # raises ApiError before the stream starts
        created = int(time.time())
        model = self.cfg.model_name
        assessment = assess(req.last_user_text)

        def chunk(index: int, delta: dict, finish: str | None = None, **extra: Any) -> str:
            choice = {"index": index, "delta": delta, "finish_reason": finish} | extra
            return P.chunk_body(rid, model, created, [choice])

        if assessment.is_risky:
            body = await self.complete(req, rid)
            yield P.chunk_body(rid, model, created, [], safety=body["safety"])
            for c in body["choices"]:
                m = c["message"]
                yield chunk(
                    c["index"],
                    {"role": "assistant", "content": "", "reasoning_content": m["reasoning_content"]},
                )
                parts = m["content"].split("\n\n")
                for j, part in enumerate(parts):
                    yield chunk(c["index"], {"content": part + ("\n\n" if j < len(parts) - 1 else "")})
                yield chunk(c["index"], {}, c["finish_reason"], coe=c["coe"])
            if req.include_usage:
                yield P.chunk_body(rid, model, created, [], usage=body["usage"])
            yield "data: [DONE]\n\n"
            return

        yield P.chunk_body(rid, model, created, [], safety=P.safety_object(assessment, "model"))
        for i in range(req.n):
            yield chunk(i, {"role": "assistant", "content": ""})
        splitters = [CoEStream() for _ in range(req.n)]
        texts, finished, tokens = [""] * req.n, [None] * req.n, [0] * req.n
        async for out in self.engine.generate({"prompt_token_ids": ids}, self._params(req, False), rid):
            for o in out.outputs:
                texts[o.index], tokens[o.index] = o.text, len(o.token_ids)
                done = o.finish_reason is not None
                reasoning, content = splitters[o.index].feed(o.text, final=done)
                delta = {k: v for k, v in (("reasoning_content", reasoning), ("content", content)) if v}
                if delta:
                    yield chunk(o.index, delta)
                if done and finished[o.index] is None:
                    finished[o.index] = o.finish_reason
                    yield chunk(o.index, {}, o.finish_reason, coe=P.coe_object(coe.parse(o.text)))
        log.info("%s: streamed %d choices, risk none, %d completion tokens", rid, req.n, sum(tokens))
        if req.include_usage:
            yield P.chunk_body(rid, model, created, [], usage=P.usage(len(ids), sum(tokens)))
        yield "data: [DONE]\n\n"
