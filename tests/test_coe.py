"""Chain-of-Empathy format: every rule, round trip, best-effort answers, reward and CLI."""

from __future__ import annotations

import json

import pytest

from empathy_ray.cli import main
from empathy_ray.domain import coe

LAYERS = {"L1": "焦虑、孤单", "L2": "认为自己不够好", "L3": "想被理解", "L4": "先共情，再给小建议"}
ANSWER = "听起来你这段时间真的很辛苦。"
GOOD = coe.render(LAYERS, ANSWER)


def codes(text: str) -> list[str]:
    return [r.split(":")[0] for r in coe.validate(text)]


def test_render_is_the_template_line_by_line():
    assert GOOD.splitlines() == [
        "<empathy_think>",
        "<L1>焦虑、孤单</L1>",
        "<L2>认为自己不够好</L2>",
        "<L3>想被理解</L3>",
        "<L4>先共情，再给小建议</L4>",
        "</empathy_think>",
        "<answer>听起来你这段时间真的很辛苦。</answer>",
    ]


def test_round_trip_render_parse():
    parsed = coe.parse(GOOD)
    assert parsed.valid and parsed.reasons == ()
    assert parsed.layers == LAYERS and parsed.answer == ANSWER
    assert coe.render(parsed.layers, parsed.answer) == GOOD


def test_whitespace_around_tags_is_allowed():
    text = "\n  " + GOOD.replace("\n", "\n\n   ").replace("<L2>", "<L2>\n  ") + "\n\n"
    parsed = coe.parse(text)
    assert parsed.valid, parsed.reasons
    assert parsed.layers["L2"] == "认为自己不够好"


def test_missing_layer():
    assert coe.validate(GOOD.replace("<L3>想被理解</L3>\n", "")) == ["missing_layer: L3 is missing"]


def test_duplicate_layer():
    text = GOOD.replace("<L3>", "<L2>再来一次</L2>\n<L3>")
    assert coe.validate(text) == ["duplicate_layer: L2 appears 2 times"]
    assert coe.parse(text).layers["L2"] == "认为自己不够好"  # the first one wins


def test_out_of_order():
    text = GOOD.replace(
        "<L2>认为自己不够好</L2>\n<L3>想被理解</L3>", "<L3>想被理解</L3>\n<L2>认为自己不够好</L2>"
    )
    assert coe.validate(text) == ["out_of_order: L3 comes before L2"]


def test_empty_layer():
    assert coe.validate(GOOD.replace("焦虑、孤单", "  \n ")) == ["empty_layer: L1 is empty"]


def test_outside_text_before_and_between():
    text = "好的，我来回答。\n" + GOOD.replace("</empathy_think>\n", "</empathy_think>\n中间的话\n")
    assert coe.validate(text) == [
        "outside_text: text outside the tags: '好的，我来回答。'",
        "outside_text: text outside the tags: '中间的话'",
    ]


def test_outside_text_inside_think_between_layers():
    assert codes(GOOD.replace("</L1>\n", "</L1>\n闲话\n")) == ["outside_text"]


def test_long_outside_text_is_shortened():
    (reason,) = coe.validate("x" * 100 + GOOD)
    assert reason == "outside_text: text outside the tags: '" + "x" * 30 + "…'"


def test_unclosed_layer_keeps_its_text():
    parsed = coe.parse(GOOD.replace("先共情，再给小建议</L4>", "先共情，再给小建议"))
    assert parsed.reasons == ("unclosed_tag: <L4> is never closed",)
    assert parsed.layers["L4"] == "先共情，再给小建议"
    assert parsed.answer == ANSWER


def test_unclosed_answer():
    parsed = coe.parse(GOOD.removesuffix("</answer>"))
    assert parsed.reasons == ("unclosed_tag: <answer> is never closed",)
    assert parsed.answer == ANSWER


def test_stray_closing_tag():
    assert coe.validate(GOOD + "</L2>") == ["stray_close: </L2> has no matching <L2>"]


def test_missing_answer():
    text = GOOD.split("<answer>")[0]
    assert coe.validate(text) == ["missing_answer: no <answer> after </empathy_think>"]


def test_empty_answer():
    assert coe.validate(GOOD.replace(ANSWER, " ")) == ["empty_answer: <answer> is empty"]


def test_duplicate_answer():
    assert codes(GOOD + "\n<answer>第二个</answer>") == ["duplicate_answer"]


def test_answer_before_think():
    think, answer = GOOD.split("\n<answer>")
    assert codes("<answer>" + answer + "\n" + think) == ["answer_before_think"]


def test_missing_think():
    text = GOOD.replace("<empathy_think>\n", "").replace("</empathy_think>\n", "")
    assert codes(text) == ["missing_think"] + ["layer_outside_think"] * 4


def test_duplicate_think():
    assert codes("<empathy_think></empathy_think>\n" + GOOD) == ["duplicate_think"]


def test_layer_outside_think():
    text = GOOD.replace(
        "<L4>先共情，再给小建议</L4>\n</empathy_think>", "</empathy_think>\n<L4>先共情，再给小建议</L4>"
    )
    assert coe.validate(text) == ["layer_outside_think: L4 is outside <empathy_think>"]


def test_text_after_answer():
    assert coe.validate(GOOD + "\n祝好") == ["text_after_answer: text after </answer>: '祝好'"]


def test_nested_tag():
    text = GOOD.replace(
        "<L2>认为自己不够好</L2>\n<L3>想被理解</L3>", "<L2>认为自己不够好<L3>想被理解</L3></L2>"
    )
    assert coe.validate(text) == ["nested_tag: <L3> is inside <L2>"]


def test_layer_inside_answer_is_nested_and_outside_think():
    text = GOOD.replace(ANSWER, ANSWER + "<L1>又一个</L1>")
    assert codes(text) == ["duplicate_layer", "layer_outside_think", "nested_tag"]


def test_every_problem_is_reported_at_once():
    text = "前言<empathy_think><L2></L2><L1>a</L1></empathy_think>"
    assert codes(text) == [
        "empty_layer",
        "missing_layer",
        "missing_layer",
        "out_of_order",
        "missing_answer",
        "outside_text",
    ]


def test_no_tags_at_all():
    parsed = coe.parse("你好，我很理解你。")
    assert parsed.answer == "你好，我很理解你。"
    assert parsed.layers == {}
    assert codes("你好") == ["missing_think"] + ["missing_layer"] * 4 + ["missing_answer", "outside_text"]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (
            GOOD.split("<answer>")[0] + "我在这里陪着你。",
            "我在这里陪着你。",
        ),  # no <answer>: after </empathy_think>
        ("<empathy_think><L1>a</L1>\n<answer>半截回答", "半截回答"),  # unclosed think and answer
        ("<empathy_think><L1>累</L1> 先休息一下吧", "累 先休息一下吧"),  # nothing better: tags stripped
        ("<answer>第一</answer><answer>第二</answer>", "第一"),
        ("<answer>我<L1>懂</L1>你</answer>", "我懂你"),
    ],
)
def test_best_effort_answer_on_broken_text(text, answer):
    parsed = coe.parse(text)
    assert not parsed.valid
    assert parsed.answer == answer


def test_format_reward():
    assert coe.format_reward(GOOD) == 1.0
    assert coe.format_reward(GOOD + "x") == 0.0
    assert coe.format_reward("") == 0.0


@pytest.mark.parametrize(
    ("layers", "answer", "message"),
    [
        ({"L1": "a", "L2": "b", "L3": "c"}, "ok", "exactly the layers"),
        ({**LAYERS, "L5": "e"}, "ok", "exactly the layers"),
        ({**LAYERS, "L2": " "}, "ok", "L2 must be a non-empty string"),
        ({**LAYERS, "L3": "<L3>x</L3>"}, "ok", "L3 must not contain CoE tags"),
        (LAYERS, "", "answer must be a non-empty string"),
    ],
)
def test_render_rejects_what_parse_would_reject(layers, answer, message):
    with pytest.raises(ValueError, match=message):
        coe.render(layers, answer)


def test_render_display_for_reviewers():
    shown = coe.render_display(coe.parse(GOOD))
    assert shown.splitlines() == [
        "【L1 情绪与处境】焦虑、孤单",
        "【L2 原因与信念】认为自己不够好",
        "【L3 求助意图】想被理解",
        "【L4 回应策略】先共情，再给小建议",
        "【回答】听起来你这段时间真的很辛苦。",
    ]
    broken = coe.render_display(coe.parse("只有回答"))
    assert "【L1 情绪与处境】（缺失）" in broken
    assert "- missing_think: no <empathy_think> block" in broken


def test_has_coe_tags():
    assert coe.has_coe_tags("好的</answer>")
    assert not coe.has_coe_tags("<L5> 和 <think> 不算")
    assert set(coe.LAYER_TITLES) == set(coe.LAYERS)


def test_cli_valid_file(tmp_path, capsys):
    path = tmp_path / "c.txt"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["coe", "check", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"valid": True, "reasons": [], "layers": LAYERS, "answer": ANSWER}


def test_cli_invalid_from_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(GOOD.replace("<L3>想被理解</L3>", "")))
    assert main(["coe", "check", "-"]) == 1
    captured = capsys.readouterr()
    assert "想被理解" not in captured.out and "听起来" in captured.out  # ensure_ascii=False
    assert json.loads(captured.out)["reasons"] == ["missing_layer: L3 is missing"]


def test_cli_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main(["coe", "check", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and str(missing) in captured.err
