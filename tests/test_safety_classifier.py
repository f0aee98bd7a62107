"""The crisis guard's learned second opinion: reproducible training, raises only, hard negatives stay quiet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from empathy_ray.data.samples import load_sample_posts
from empathy_ray.domain import safety_classifier as classifier
from empathy_ray.domain.safety import assess
from empathy_ray.eval.safety_training import (
    ANSWERS,
    DEFAULT_ANSWERS,
    DEFAULT_TRAIN,
    FROZEN,
    MESSAGES,
    Case,
    Settings,
    _fit,
    _score,
    _threshold,
    cross_validate,
    held_out_scores,
    load_cases,
    load_examples,
    pick_threshold,
    prepare,
    train,
    train_main,
)
from tests.safety_phrases import NEGATIVE, POSITIVE

SET_DIR = Path(__file__).parent / "data" / "safety"
_RANK = {"none": 0, "low": 1, "high": 2}


def _train_args(out: Path, *files: Path, answers: bool = False) -> argparse.Namespace:
    """`empathy-ray safety train-classifier [--answers] [FILE ...] --out OUT` as parsed."""
    return argparse.Namespace(
        files=[str(f) for f in files], out=str(out), threshold=None, cross_validate=False, answers=answers
    )


def test_training_regenerates_the_shipped_model_byte_for_byte(tmp_path: Path) -> None:
    # Same inputs, same settings -> the same file, in another process and on another day.
    out = tmp_path / "model.json"
    assert train_main(_train_args(out)) == 0
    assert out.read_bytes() == classifier.MODEL_PATH.read_bytes(), (
        "safety_model.json is stale: run `empathy-ray safety train-classifier` and commit the file"
    )
    assert classifier.MODEL_PATH.stat().st_size < 300_000
    provenance = json.loads(out.read_text(encoding="utf-8"))["trained_on"]
    assert sorted(provenance) == sorted(p.name for p in DEFAULT_TRAIN) and not set(FROZEN) & set(provenance)


def test_training_regenerates_the_shipped_output_model_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "output_model.json"
    assert train_main(_train_args(out, answers=True)) == 0
    assert out.read_bytes() == classifier.OUTPUT_MODEL_PATH.read_bytes(), (
        "safety_output_model.json is stale: run `empathy-ray safety train-classifier --answers` and commit it"
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["kind"] == "answer" and sorted(data["trained_on"]) == sorted(p.name for p in DEFAULT_ANSWERS)
    assert (
        train_main(_train_args(out, SET_DIR / "answers_test.jsonl", answers=True)) == 2
    )  # the frozen replies are never trained on
    assert (
        train_main(_train_args(out, SET_DIR / "tune.jsonl", answers=True)) == 2
    )  # message rows are not replies


def test_training_is_deterministic_and_the_seed_matters() -> None:
    examples = load_examples(SET_DIR / "tune.jsonl")
    small = Settings(buckets=1 << 10, epochs=3)
    first, again = train(examples, small), train(examples, small)
    assert first.to_json(small.scale, {}) == again.to_json(small.scale, {})
    other = train(examples, Settings(buckets=1 << 10, epochs=3, seed=small.seed + 1))
    assert other.weights != first.weights


def test_the_frozen_test_part_is_refused_and_shares_no_text_with_the_extra_examples() -> None:
    for name in FROZEN:  # the users' messages and the model replies
        with pytest.raises(ValueError, match="frozen test part"):
            load_examples(SET_DIR / name)
    frozen = {
        json.loads(line).get("text")
        for line in (SET_DIR / FROZEN[0]).read_text(encoding="utf-8").splitlines()
    }
    answers = {
        json.loads(line)["text"] for line in (SET_DIR / FROZEN[1]).read_text(encoding="utf-8").splitlines()
    }
    tuning = {
        json.loads(line)["text"]
        for p in DEFAULT_ANSWERS
        for line in p.read_text(encoding="utf-8").splitlines()
    }
    assert not answers & tuning
    extra = load_examples(SET_DIR / "classifier_extra.jsonl")
    extra2 = load_examples(SET_DIR / "classifier_extra2.jsonl")
    assert (len(extra), len(extra2)) == (295, 440)
    shared = len(frozen & {text for text, _ in extra + extra2})  # a count: the frozen texts stay unprinted
    assert shared == 0


def test_the_threshold_counts_only_the_false_alarms_the_classifier_adds() -> None:
    # (label, per text: (rules flag, probability)). The benign row the rules already flag costs the
    # classifier nothing; the lowest threshold keeping its own alarms within 1 % of 100 benign rows is
    # just above the highest probability it gives a benign row the rules leave alone, but one.
    benign = [(False, ((False, 0.10 + i / 1000),)) for i in range(97)]
    benign += [(False, ((True, 0.99),)), (False, ((False, 0.62),)), (False, ((False, 0.71),))]
    risky = [(True, ((False, 0.80),))]
    assert pick_threshold(benign + risky, Settings()) == 0.63
    assert pick_threshold(benign + risky, Settings(max_added_false_alarms=0.02)) == 0.30
    assert pick_threshold(benign + risky, Settings(max_added_false_alarms=0.0)) == 0.72


def test_quiet_texts_must_stay_quiet_and_tolerated_ones_count_in_the_budget() -> None:
    # The reply task: the preference pairs' preferred replies must pass (quiet), their rejected replies
    # (dismissive, never harmful) are benign rows in the 2 % budget like the files' safe rows (loose).
    held = {"f": [(False, ((False, 0.10 + i / 1000),)) for i in range(98)] + [(True, ((False, 0.9),))]}
    quiet = [(False, ((False, 0.41),))]
    loose = [(False, ((False, 0.70),)), (False, ((False, 0.86),))]
    s = Settings(max_added_false_alarms=0.02)
    assert _threshold(held, quiet, s) == 0.42  # just above the quiet reply
    assert _threshold(held, quiet, s, loose=loose) == 0.42  # 2 of 101 benign rows: within the budget
    assert _threshold(held, quiet, Settings(max_added_false_alarms=0.01), loose=loose) == 0.71
    assert _threshold(held, loose, s) == 0.87  # the same texts as quiet ones hold the threshold up
    assert ANSWERS.budget == 0.02 and MESSAGES.budget == 0.01
    assert {i[-2:] for i, _ in ANSWERS.quiet()} == {"/c"} and {i[-2:] for i, _ in ANSWERS.tolerated()} == {
        "/r"
    }
    assert MESSAGES.tolerated() == []


def test_cross_validation_refuses_two_files_of_one_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Files are held out and reported by name: two of one name would be merged silently.
    twin = tmp_path / "tune4.jsonl"
    twin.write_bytes((SET_DIR / "tune4.jsonl").read_bytes())
    args = _train_args(tmp_path / "m.json", SET_DIR / "tune4.jsonl", twin)
    args.cross_validate = True
    assert train_main(args) == 2
    assert "['tune4.jsonl'] come twice" in capsys.readouterr().out
    assert not (tmp_path / "m.json").exists()


def test_cross_validation_chooses_nothing_on_the_held_out_file() -> None:
    # A file's line uses the threshold the rule picks from the OTHER files' held-out scores (and the sample
    # posts); its own scores never enter it. Flipping its labels flips its own counts and figures.
    small = Settings(buckets=1 << 10, epochs=2)
    held = load_cases(SET_DIR / "tune4.jsonl")
    flipped = [Case(c.id, c.texts, not c.risky) for c in held]
    others = [
        prepare(name, load_cases(SET_DIR / name)[:60], small)
        for name in ("tune3.jsonl", "classifier_extra.jsonl")
    ]
    posts = prepare(
        "posts", [Case(p.id, (p.text,), False) for p in load_sample_posts()[:20] if not p.crisis], small
    )
    parts = [prepare("held", held, small), *others]
    lines, _ = cross_validate(parts, posts, small)
    lines_flipped, _ = cross_validate([prepare("held", flipped, small), *others], posts, small)
    row, row_flipped = lines[2].split(" | "), lines_flipped[2].split(" | ")
    scores = held_out_scores(parts, small)
    post_scores = _score(_fit([d for p in parts for d in p.data()], small), posts)  # the full model's
    others_only = [c for name in ("tune3.jsonl", "classifier_extra.jsonl") for c in scores[name]]
    assert row[0] == "| held" and float(row[3]) == pick_threshold(
        others_only + post_scores, small, post_scores
    )
    assert (row[1], row[2]) == ("64", "36") and (row_flipped[1], row_flipped[2]) == ("36", "64")
    recall, alarms = row[4].split(" / ")
    assert row_flipped[4] == f"{alarms} / {recall}"  # the rules' flags, read against the flipped labels
    assert row[6] != row_flipped[6]  # rules + classifier: the figures are the held-out file's own


@pytest.mark.parametrize(
    "text",
    [
        "我覺得自己已經走到盡頭了，再也撐不住",  # traditional script, no rule word
        "I think everyone would be better off if I wasn't around anymore",  # English, veiled
        "我已经把房间收拾干净了，以后也不用再麻烦谁了",  # a veiled farewell
    ],
)
def test_crisis_messages_the_rules_miss_are_raised(text: str) -> None:
    assert assess(text, learned=False).risk_level == "none"
    raised = assess(text)
    assert raised.risk_level == "low" and raised.categories == ("suicidal_ideation",)
    assert raised.evidence and all(quote in text for quote in raised.evidence)  # the user's own characters


def test_the_evidence_is_the_riskiest_sentence_of_a_longer_message() -> None:
    # The verdict is on the whole message (sentence by sentence, everyday distress would fire), the quote
    # is the sentence that scores highest.
    # (Without its last clause, "我好累。我覺得自己已經走到盡頭了，再也撐不住" scored 0.81 with the model of
    # round h, under its threshold; 0.83 with round i's and 0.85 with round j's, at 0.82: long messages
    # dilute a risky sentence.)
    assert assess("我好累。我覺得自己已經走到盡頭了，再也撐不住，想就這樣結束").evidence == (
        "我覺得自己已經走到盡頭了，再也撐不住，想就這樣結束",
    )
    assert assess("说了你也不懂。我已经把房间收拾干净了，以后也不用再麻烦谁了").evidence == (
        "我已经把房间收拾干净了，以后也不用再麻烦谁了",
    )


HARD_NEGATIVES = [
    "累死了，今天搬了一天砖",
    "笑死我了，这个视频",
    "想死你了宝贝，周末见",
    "天天加班，身体都要垮了，下个月一定要请假",
    "新闻报道，一名男子从桥上跳下，警方正在调查",
    "小说里的主人公最后选择了结束自己的生命",
    "医生问我最近有没有想过伤害自己，我说没有",
    "I'm so stressed about work, my manager keeps piling on tasks",
    "我想你了",  # short messages carry few n-grams: the bias must not decide them
    "宝贝我想你",
    "我好累哦",
    "最近总是睡不着",
    "我覺得好累，沒有人懂",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_stay_negative(text: str) -> None:
    assert assess(text).risk_level == "none"


def test_ordinary_distress_in_the_sample_posts_is_not_raised() -> None:
    # The shipped sample posts are everyday counselling questions (never trained on): the classifier must
    # not turn sadness, stress or grief into a crisis path.
    raised = [
        p.id
        for p in load_sample_posts()
        if assess(p.text).is_risky and not assess(p.text, learned=False).is_risky  # long posts: rules last
    ]
    assert raised == []


def test_the_classifier_only_raises() -> None:
    texts = [t for t, _ in POSITIVE] + list(NEGATIVE) + HARD_NEGATIVES
    for text in texts:
        rules, both = assess(text, learned=False), assess(text)
        assert _RANK[both.risk_level] >= _RANK[rules.risk_level], text
        if rules.is_risky:
            assert both == rules, text  # a rule's verdict, evidence and categories are kept as they are


def test_a_malformed_model_file_names_the_field() -> None:
    good = json.loads(classifier.MODEL_PATH.read_text(encoding="utf-8"))
    with pytest.raises(classifier.ModelFileError, match="field 'weights'"):
        classifier.parse_model(json.dumps({**good, "weights": [1, 2]}), "m.json")
    with pytest.raises(classifier.ModelFileError, match="field 'threshold'"):
        classifier.parse_model(json.dumps({**good, "threshold": 1.5}), "m.json")
    with pytest.raises(classifier.ModelFileError, match="m.json: not valid JSON"):
        classifier.parse_model("{", "m.json")
