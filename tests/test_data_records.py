from __future__ import annotations

from empathy_ray.data.records import REASONS, Answer, Post, PreferencePair


def post(*answers: Answer) -> Post:
    return Post("p1", "家庭关系", "亲子", "标题", "正文", answers)


def test_text_is_question_newline_description():
    assert post(Answer("a")).text == "标题\n正文"


def test_best_answer_lowest_rank_then_counsellor_then_order():
    a = Answer("counsellor rank 2", rank=2)
    b = Answer("peer rank 1", rank=1, source="peer")
    assert post(a, b).best_answer is b
    c = Answer("peer unranked", source="peer")
    d = Answer("counsellor unranked")
    e = Answer("second counsellor unranked")
    assert post(c, d, e).best_answer is d
    assert post(c, Answer("model rank 3", rank=3, source="model")).best_answer.text == "model rank 3"


def test_answer_dict_round_trip_omits_absent_optionals():
    plain = Answer("好")
    assert plain.to_dict() == {"text": "好", "source": "counsellor"}
    full = Answer(
        "好",
        coe={"L1": "a", "L2": "b", "L3": "c", "L4": "d"},
        rank=1,
        source="psyqa",
        strategies=({"start": 0, "end": 1, "type": "Others"},),
    )
    assert Answer.from_dict(full.to_dict()) == full
    assert Answer.from_dict(
        {"text": "x", "coe": None, "rank": None, "source": None, "strategies": None}
    ) == Answer("x")


def test_post_dict_round_trip_and_defaults():
    p = Post.from_dict(
        {
            "id": "p",
            "topic": "t",
            "subtopic": "",
            "question": "q",
            "description": "d",
            "answers": [{"text": "a"}],
        }
    )
    assert p.crisis is False and p.keywords == ()
    assert p.to_dict()["keywords"] == [] and p.to_dict()["crisis"] is False
    assert Post.from_dict(p.to_dict()) == p


def test_pair_dict_round_trip():
    pair = PreferencePair("x", "帖子", "好回复", "差回复", "generic")
    assert "post_id" not in pair.to_dict()
    assert PreferencePair.from_dict(pair.to_dict()) == pair
    with_post = PreferencePair("x", "帖子", "好回复", "差回复", "unsafe", post_id="p1")
    assert PreferencePair.from_dict(with_post.to_dict()) == with_post


def test_reasons():
    assert REASONS == ("dismissive", "generic", "lecturing", "off_topic", "mismatched", "unsafe")
