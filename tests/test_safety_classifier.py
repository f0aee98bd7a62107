"""The crisis guard's learned second opinion: reproducible training, raises only, hard negatives stay quiet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from empathy_ray.data.samples import load_sample_posts
from empathy_ray.domain import safety_classifier as classifier
from empathy_ray.domain.safety import assess
from empathy_ray.eval.safety_training import DEFAULT_TRAIN, Settings, load_examples, train, train_main
from tests.safety_phrases import NEGATIVE, POSITIVE

SET_DIR = Path(__file__).parent / "data" / "safety"
_RANK = {"none": 0, "low": 1, "high": 2}


def test_training_regenerates_the_shipped_model_byte_for_byte(tmp_path: Path) -> None:
    # Same inputs, same settings -> the same file, in another process and on another day.
    out = tmp_path / "model.json"
    args = argparse.Namespace(files=[], validate="", out=str(out), threshold=Settings.threshold)
    assert train_main(args) == 0
    assert out.read_bytes() == classifier.MODEL_PATH.read_bytes(), (
        "safety_model.json is stale: run `empathy-ray safety train-classifier` and commit the file"
    )
    assert classifier.MODEL_PATH.stat().st_size < 300_000
    provenance = json.loads(out.read_text(encoding="utf-8"))["trained_on"]
    assert sorted(provenance) == sorted(p.name for p in DEFAULT_TRAIN)  # never test.jsonl nor tune4.jsonl


def test_training_is_deterministic_and_the_seed_matters() -> None:
    examples = load_examples(SET_DIR / "tune.jsonl")
    small = Settings(buckets=1 << 10, epochs=3)
    first, again = train(examples, small), train(examples, small)
    assert first.to_json(small.scale, {}) == again.to_json(small.scale, {})
    other = train(examples, Settings(buckets=1 << 10, epochs=3, seed=small.seed + 1))
    assert other.weights != first.weights


def test_the_frozen_test_part_is_refused_and_shares_no_text_with_the_extra_examples() -> None:
    with pytest.raises(ValueError, match="frozen test part"):
        load_examples(SET_DIR / "test.jsonl")
    frozen = {
        json.loads(line).get("text")
        for line in (SET_DIR / "test.jsonl").read_text(encoding="utf-8").splitlines()
    }
    extra = load_examples(SET_DIR / "classifier_extra.jsonl")
    assert len(extra) == 295 and not frozen & {text for text, _ in extra}


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
    assert assess("我好累。我覺得自己已經走到盡頭了，再也撐不住").evidence == (
        "我覺得自己已經走到盡頭了，再也撐不住",
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
