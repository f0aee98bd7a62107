"""The chat API's request rules and the CoE stream splitter, without a server."""

from __future__ import annotations

import pytest

from empathy_ray.config import ServeConfig
from empathy_ray.domain import coe
from empathy_ray.serve.protocol import ApiError, parse_body, parse_chat_request
from empathy_ray.serve.streaming import CoEStream

CFG = ServeConfig(max_content_chars=50, max_tokens_limit=64, default_max_tokens=32, max_n=3, max_messages=4)
USER = [{"role": "user", "content": "最近总是睡不着"}]


def test_defaults_and_accepted_parameters() -> None:
    req = parse_chat_request({"messages": USER}, CFG)
    assert (req.max_tokens, req.temperature, req.top_p, req.n, req.stop, req.seed, req.stream) == (
        32, 1.0, 1.0, 1, [], None, False,
    )  # fmt: skip
    req = parse_chat_request(
        {
            "model": "empathy-ray",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": [{"type": "text", "text": "你好"}]},
            ],
            "temperature": 0,
            "top_p": 0.5,
            "max_completion_tokens": 64,
            "n": 3,
            "stop": "。",
            "seed": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
            "presence_penalty": 0.1,
        },
        CFG,
    )
    assert (req.max_tokens, req.temperature, req.top_p, req.n, req.stop, req.seed) == (
        64,
        0.0,
        0.5,
        3,
        ["。"],
        7,
    )
    assert req.stream and req.include_usage and req.last_user_text == "你好"


BAD = [
    ({}, 400, "messages"),
    ({"messages": []}, 400, "messages"),
    ({"messages": "hi"}, 400, "messages"),
    ({"messages": USER * 5}, 400, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role"),
    ({"messages": [{"content": "x"}]}, 400, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "   "}]}, 400, "messages[0].content"),
    ({"messages": [{"role": "user", "content": None}]}, 400, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "长" * 51}]}, 400, "messages[0].content"),
    ({"messages": [*USER, {"role": "assistant", "content": "好"}]}, 400, "messages[1].role"),
    ({"messages": USER, "temperature": 2.5}, 400, "temperature"),
    ({"messages": USER, "temperature": "hot"}, 400, "temperature"),
    ({"messages": USER, "top_p": 0}, 400, "top_p"),
    ({"messages": USER, "max_tokens": 0}, 400, "max_tokens"),
    ({"messages": USER, "max_tokens": 65}, 400, "max_tokens"),
    ({"messages": USER, "max_tokens": 1.5}, 400, "max_tokens"),
    ({"messages": USER, "n": 4}, 400, "n"),
    ({"messages": USER, "n": True}, 400, "n"),
    ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"messages": USER, "stop": [""]}, 400, "stop"),
    ({"messages": USER, "seed": "x"}, 400, "seed"),
    ({"messages": USER, "stream": "yes"}, 400, "stream"),
    ({"messages": USER, "tools": []}, 400, "tools"),
    ({"messages": USER, "model": "gpt-4o"}, 404, "model"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD, ids=[p for _, _, p in BAD])
def test_bad_requests_name_the_parameter(body: dict, status: int, param: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_chat_request(body, CFG)
    assert (e.value.status, e.value.param) == (status, param)
    err = e.value.body()["error"]
    assert (
        err["param"] == param
        and err["message"]
        and err["type"] in ("invalid_request_error", "not_found_error")
    )


@pytest.mark.parametrize("raw", [b"{bad", b"[1, 2]", b"\xff\xfe"])
def test_bodies_that_are_not_json_objects(raw: bytes) -> None:
    with pytest.raises(ApiError, match="JSON") as e:
        parse_body(raw)
    assert e.value.status == 400


COE_TEXT = coe.render(
    {"L1": "来访者很焦虑", "L2": "担心被否定", "L3": "想被理解", "L4": "先共情再建议"},
    "听起来你这段时间真的很辛苦。",
)


def _stream(text: str, step: int) -> tuple[list[str], list[str]]:
    splitter, reasoning, content = CoEStream(), [], []
    for end in range(step, len(text) + step, step):
        r, c = splitter.feed(text[:end], final=end >= len(text))
        reasoning.append(r)
        content.append(c)
    return reasoning, content


@pytest.mark.parametrize("step", [1, 3, 7])
def test_stream_splits_coe_into_reasoning_and_answer(step: int) -> None:
    reasoning, content = _stream(COE_TEXT, step)
    assert "".join(content) == "听起来你这段时间真的很辛苦。"
    joined = "".join(reasoning)
    assert joined.startswith("<L1>来访者很焦虑</L1>") and joined.endswith("<L4>先共情再建议</L4>")
    assert not any("<" in c for c in content)  # no tag, and no half tag, ever reaches the reply
    assert not any(piece.endswith(("<", "<ans", "</empathy")) for piece in reasoning)


def test_stream_without_coe_and_with_a_broken_coe() -> None:
    _, content = _stream("谢谢你愿意说出来。", 2)
    assert "".join(content) == "谢谢你愿意说出来。"
    broken = "<empathy_think><L1>难过</L1></empathy_think>\n你并不孤单。"  # no <answer>: best effort
    reasoning, content = _stream(broken, 4)
    assert "".join(content) == coe.parse(broken).answer == "你并不孤单。"
    assert "".join(reasoning) == "<L1>难过</L1>"


def test_stream_holds_back_half_a_character() -> None:
    splitter = CoEStream()
    assert splitter.feed("你好\ufffd") == ("", "你好")
    assert splitter.feed("你好呀") == ("", "呀")
