"""The OpenAI chat-completions wire format: request checks, response and stream-chunk bodies.

Plain Python (no Ray, no vLLM) so every 4xx rule is testable on its own. Every rejection is an
`ApiError` carrying the HTTP status and OpenAI's error shape, naming the offending parameter.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from empathy_ray.config import ServeConfig
from empathy_ray.domain import coe
from empathy_ray.domain.safety import SafetyAssessment

ROLES = ("system", "user", "assistant")
# Client parameters we accept and ignore (they change nothing here) rather than reject: the
# official clients send some of them by default.
_IGNORED = {
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "user",
    "stream_options",
    "metadata",
    "store",
    "parallel_tool_calls",
    "service_tier",
}
_KNOWN = {"model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "n"}
_KNOWN |= {"stop", "seed", "stream"} | _IGNORED


class ApiError(Exception):
    """A request the server refuses; rendered as OpenAI's `{"error": {...}}` body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        kind = {401: "authentication_error", 404: "not_found_error"}.get(self.status, "invalid_request_error")
        if self.status >= 500:
            kind = "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]  # role + plain-text content, checked
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage

    @property
    def last_user_text(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


def body_limit(cfg: ServeConfig) -> int:
    """Bytes a request body may have: the largest accepted conversation, every character escaped as
    \\uXXXX (6 bytes), plus 64 KiB for the other fields. Larger bodies get a 413 before parsing."""
    return cfg.max_messages * cfg.max_content_chars * 6 + 65536


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the request body is not valid JSON ({e}); send a JSON object") from None
    except RecursionError:  # e.g. 100,000 nested brackets: the decoder gives up, the server must not
        raise ApiError(
            400, "the request body nests too deeply; send a flat chat-completions JSON object"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _number(body: dict, key: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"'{key}' must be a number, got {value!r}", key)
    if value > high or value < low or (low_open and value == low):
        span = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ApiError(400, f"'{key}'={value} is out of range: use a value in {span}", key)
    return float(value)


def _integer(body: dict, key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer, got {value!r}", key)
    if not low <= value <= high:
        raise ApiError(400, f"'{key}'={value} is out of range: use an integer in [{low}, {high}]", key)
    return value


def _content_text(content: Any, where: str) -> str:
    """A message's text: a string, or OpenAI's list of {"type": "text", "text": ...} parts."""
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not (
                isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            ):
                raise ApiError(400, f"{where}[{j}]: only text parts are supported", where)
            parts.append(part["text"])
        content = "".join(parts)
    if not isinstance(content, str):
        raise ApiError(400, f"{where} must be a string, got {type(content).__name__}", where)
    return content


def _messages(body: dict, cfg: ServeConfig) -> list[dict[str, str]]:
    messages = body.get("messages")
    if messages is None:
        raise ApiError(400, "'messages' is required: a list of {role, content} objects", "messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects", "messages")
    if len(messages) > cfg.max_messages:
        raise ApiError(400, f"{len(messages)} messages; at most {cfg.max_messages} are accepted", "messages")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ApiError(400, f"{where} must be an object with 'role' and 'content'", where)
        role = m.get("role")
        if role not in ROLES:
            raise ApiError(400, f"{where}.role={role!r}: must be one of {', '.join(ROLES)}", f"{where}.role")
        text = _content_text(m.get("content"), f"{where}.content")
        if not text.strip():
            raise ApiError(400, f"{where}.content is empty", f"{where}.content")
        if len(text) > cfg.max_content_chars:
            raise ApiError(
                400,
                f"{where}.content has {len(text)} characters; the limit is {cfg.max_content_chars}",
                f"{where}.content",
                "content_too_long",
            )
        out.append({"role": role, "content": text})
    if out[-1]["role"] != "user":
        raise ApiError(400, "the last message must come from the user", f"messages[{len(out) - 1}].role")
    return out


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > 4:
        raise ApiError(400, "'stop' must be a non-empty string or a list of up to 4 of them", "stop")
    return stops


def parse_chat_request(body: dict[str, Any], cfg: ServeConfig) -> ChatRequest:
    """Check a chat-completions body against OpenAI's rules and our limits (ServeConfig)."""
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise ApiError(400, f"unsupported parameter(s): {', '.join(unknown)}", unknown[0])
    model = body.get("model")
    if model is not None and model != cfg.model_name:
        raise ApiError(
            404,
            f"model {model!r} does not exist; this server has {cfg.model_name!r}",
            "model",
            "model_not_found",
        )
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, f"'stream' must be true or false, got {stream!r}", "stream")
    options = body.get("stream_options") or {}
    return ChatRequest(
        messages=_messages(body, cfg),
        max_tokens=_integer(body, key, cfg.default_max_tokens, 1, cfg.max_tokens_limit),
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, low_open=True),
        n=_integer(body, "n", 1, 1, cfg.max_n),
        stop=_stop(body),
        seed=_integer(body, "seed", None, -(2**63), 2**63 - 1),
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
    )


# -- responses -------------------------------------------------------------------------------


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def coe_object(parsed: coe.CoE | None, withheld: bool = False) -> dict[str, Any]:
    """The `coe` extra of a choice: the four layers, whether the format held, and what broke.

    `withheld`: the output check blocked this answer, so its layers are not shown either.
    """
    if parsed is None:  # the safety path answered without the model
        return {"valid": False, "layers": {}, "problems": ["not generated: crisis-safety reply"]}
    if withheld:
        problems = [*parsed.reasons, "withheld: the output check blocked this answer"]
        return {"valid": parsed.valid, "layers": {}, "problems": problems}
    return {"valid": parsed.valid, "layers": dict(parsed.layers), "problems": list(parsed.reasons)}


def safety_object(
    assessment: SafetyAssessment,
    path: str,
    turn: int | None = None,
    region: str = "",
    guard: str = "off",
    blocked: list[int] | None = None,
) -> dict[str, Any]:
    """The `safety` extra of a response.

    `path`: "model" (no risk), "crisis" (safety message only), "crisis+model", or "safe_reply" (no
    risk, but every answer was blocked by the output check). `turn`: the index in `messages` of the
    user turn the evidence was quoted from (None without risk). `region`: whose crisis resources were
    used. `guard`: the guard model's part ("off", "agree", "raised", "timeout", "error", "invalid").
    `output_blocked`: the indices of the choices whose model answer the output check replaced.
    """
    return {
        "risk_level": assessment.risk_level,
        "evidence": list(assessment.evidence),
        "categories": list(assessment.categories),
        "path": path,
        "turn": turn,
        "region": region,
        "guard": guard,
        "output_blocked": list(blocked or []),
    }


def reasoning_text(parsed: coe.CoE | None) -> str | None:
    if parsed is None or not parsed.layers:
        return None
    return "\n".join(f"<{name}>{text}</{name}>" for name, text in parsed.layers.items())


def completion_body(
    rid: str, model: str, choices: list[dict[str, Any]], usage: dict[str, int], safety: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage,
        "safety": safety,
    }


def chunk_body(rid: str, model: str, created: int, choices: list[dict[str, Any]], **extra: Any) -> str:
    """One server-sent event carrying a `chat.completion.chunk`."""
    body = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    return "data: " + json.dumps(body | extra, ensure_ascii=False) + "\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
