"""The server's safety parts without a server: whole conversations, regions, replies, checked streams."""

from __future__ import annotations

import re

import pytest

from empathy_ray.config import ConfigError, ServeConfig, load_config
from empathy_ray.domain.safety import SafetyAssessment, assess
from empathy_ray.domain.safety_conversation import assess_conversation
from empathy_ray.domain.safety_output import check_output
from empathy_ray.serve.crisis import CrisisReplies, is_traditional
from empathy_ray.serve.protocol import ApiError, body_limit, parse_body
from empathy_ray.serve.streaming import CheckedStream, releasable


def _user(*texts: str) -> list[dict[str, str]]:
    """A conversation of user turns with a short assistant reply between them."""
    out: list[dict[str, str]] = []
    for text in texts:
        out += [{"role": "user", "content": text}, {"role": "assistant", "content": "嗯，我在听。"}]
    return out[:-1]


def test_an_earlier_risky_turn_keeps_the_verdict_and_names_its_turn() -> None:
    messages = _user("遗书我昨天已经写好了", "算了不说这个了，今天天气还挺好")
    assert assess(messages[-1]["content"]).risk_level == "none"
    verdict, turn = assess_conversation(messages)
    assert (verdict.risk_level, turn, verdict.evidence) == ("high", 0, ("遗书",))


def test_the_most_serious_turn_wins_and_ties_go_to_the_latest() -> None:
    messages = _user("有时候觉得活着没意思", "我已经把遗书写好了", "刚才说的你别当真")
    verdict, turn = assess_conversation(messages)
    assert (verdict.risk_level, turn) == ("high", 2)
    verdict, turn = assess_conversation(_user("我想死", "还是想死", "今天吃了火锅"))
    assert (verdict.risk_level, turn) == ("low", 2)
    assert assess_conversation(_user("今天吃了火锅", "明天去爬山")) == (SafetyAssessment("none"), None)


def test_assistant_turns_are_not_assessed() -> None:
    messages = [
        {"role": "user", "content": "最近睡得不好"},
        {"role": "assistant", "content": "你提到想死，我很担心"},
        {"role": "user", "content": "谢谢，好多了"},
    ]
    assert assess_conversation(messages) == (SafetyAssessment("none"), None)
    with pytest.raises(ValueError, match="no user message"):
        assess_conversation([{"role": "system", "content": "x"}])


@pytest.mark.parametrize(
    ("text", "traditional"),
    [
        ("我真的不想活了", False),
        ("遺書已經寫好了", True),
        ("我覺得好累，沒有人懂", True),
        ("I want to die", False),
    ],
)
def test_script_detection(text: str, traditional: bool) -> None:
    assert is_traditional(text) is traditional


def test_auto_region_picks_resources_script_and_emergency_numbers() -> None:
    replies = CrisisReplies(ServeConfig())
    high = SafetyAssessment("high", ("遺書",), ("farewell",))
    tw = replies.for_messages(_user("遺書已經寫好了"))
    assert tw.region == "taiwan"
    text = tw.crisis(high)
    assert "1925" in text and "1995" in text and "119" in text and "12356" not in text
    assert "請" in text and "请" not in text  # the whole message in traditional characters
    assert all(line in text for line in ServeConfig().safety.regions["taiwan"].resources)
    mainland = replies.for_messages(_user("遗书已经写好了"))
    assert (
        mainland.region == "mainland"
        and "12356" in mainland.crisis(high)
        and "120 或 110" in mainland.crisis(high)
    )
    hk_cfg = load_config(None, ["serve.safety.traditional_region=hong_kong"]).serve
    hk = CrisisReplies(hk_cfg).for_messages(_user("遺書已經寫好了")).crisis(high)
    assert "2389 2222" in hk and "999" in hk and "120" not in hk


def test_fixed_region_and_one_list_for_every_region() -> None:
    cfg = load_config(None, ["serve.safety.crisis_region=hong_kong"]).serve
    assert CrisisReplies(cfg).for_messages(_user("我想死")).region == "hong_kong"
    cfg = load_config(None, ["serve.crisis_resources=[本校心理中心：8888-0000]"]).serve
    text = CrisisReplies(cfg).for_messages(_user("我想死")).crisis(assess("我想死"))
    assert "本校心理中心：8888-0000" in text and "12356" not in text


def test_replies_by_risk_and_output_check() -> None:
    r = CrisisReplies(ServeConfig()).for_messages(_user("最近很累"))
    none, low = SafetyAssessment("none"), assess("我想死")
    assert r.compose("好好休息。", none, blocked=False) == "好好休息。"
    assert r.compose("bad", none, blocked=True) == r.safe() and "12356" in r.safe()
    assert r.compose("我在。", low, blocked=False) == r.crisis(low) + "\n\n我在。"
    assert r.compose("bad", low, blocked=True) == r.crisis(low)
    assert not check_output(r.safe()).blocked and not check_output(r.crisis(low)).blocked
    guard_only = SafetyAssessment("low")  # raised by a guard model without a quote
    assert r.crisis(guard_only).startswith("你不是一个人") and "「" not in r.crisis(guard_only)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("serve.safety.crisis_region=macau", "serve.safety.crisis_region='macau': not a key"),
        ("serve.safety.traditional_region=tw", "serve.safety.traditional_region='tw'"),
        ("serve.safety.guard_url=http://127.0.0.1:9/v1", "guard_model is empty"),
        ("serve.safety.guard_timeout_s=0", "serve.safety.guard_timeout_s=0.0: must be positive"),
        ("serve.safety.min_recall=1.5", "serve.safety.min_recall=1.5"),
        ("serve.safety.regions={x: {resources: []}}", "serve.safety.regions.x.resources"),
    ],
)
def test_bad_safety_config_names_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def _feed_by(stream: CheckedStream, text: str, step: int) -> list[dict[str, str]]:
    return [stream.feed(text[:end], final=end >= len(text)) for end in range(step, len(text) + step, step)]


def test_a_checked_stream_shows_whole_sentences_and_never_a_harmful_one() -> None:
    text = "谢谢你告诉我。你可以一次把药全吞下去，这样就不会痛了。"
    stream = CheckedStream(lambda r, c: check_output(c).blocked)
    deltas = _feed_by(stream, text, 2)
    shown = "".join(d.get("content", "") for d in deltas)
    assert shown == "谢谢你告诉我。" and stream.blocked
    safe = "听起来你很累。先休息一下吧！明天再说"
    stream = CheckedStream(lambda r, c: check_output(c).blocked)
    deltas = [d.get("content", "") for d in _feed_by(stream, safe, 3)]
    assert "".join(deltas) == safe and not stream.blocked
    assert [d for d in deltas if d] == ["听起来你很累。", "先休息一下吧！", "明天再说"]


def test_a_long_sentence_is_released_behind_a_window() -> None:
    long = "好" * 300
    assert releasable(long, final=False) == 220 and releasable(long, final=True) == 300
    assert releasable("第一句。第二句没完", final=False) == 4


def test_nested_and_oversized_bodies_are_400_and_a_limit() -> None:
    with pytest.raises(ApiError, match="nests too deeply") as e:
        parse_body(b"[" * 100_000)
    assert e.value.status == 400
    with pytest.raises(ApiError, match="JSON"):
        parse_body(b'{"messages": "\xff"}')
    cfg = ServeConfig()
    assert body_limit(cfg) == cfg.max_messages * cfg.max_content_chars * 6 + 65536
