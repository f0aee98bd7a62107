from __future__ import annotations

import random

import pytest

from empathy_ray.eval.metrics import (
    bleu4,
    chars,
    chrf,
    distinct_n,
    lcs_length,
    mean_length,
    rouge_l,
    rouge_l_corpus,
    rouge_l_multi,
)


def _lcs_table(a: str, b: str) -> int:
    """Textbook O(len(a) * len(b)) LCS, the reference for the bit-parallel version."""
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


# ---- text handling -------------------------------------------------------------------------------


def test_chars_drops_whitespace_and_folds_full_width_keeps_punctuation():
    # NFKC: full-width comma and Ｏ fold to ASCII; "。" has no half-width twin and stays.
    assert chars(" 我 很\n难过，ＯＫ。\t") == "我很难过,OK。"


# ---- ROUGE-L ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("我很难过", "我今天很难过", 4), ("ABCBDAB", "BDCABA", 4), ("abc", "xyz", 0), ("", "abc", 0)],
)
def test_lcs_length_known_values(a, b, expected):
    assert lcs_length(a, b) == expected
    assert lcs_length(b, a) == expected


def test_lcs_length_matches_dynamic_programming_on_random_strings():
    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("我你很难过好") for _ in range(rng.randrange(0, 70)))
        b = "".join(rng.choice("我你很难过好") for _ in range(rng.randrange(0, 70)))
        assert lcs_length(a, b) == _lcs_table(a, b), (a, b)


def test_rouge_l_by_hand():
    # LCS("我很难过", "我今天很难过") = 4 (我很难过); P = 4/4 = 1, R = 4/6 = 2/3
    # F1 = 2 * 1 * 2/3 / (1 + 2/3) = (4/3) / (5/3) = 0.8
    assert rouge_l("我很难过", "我今天很难过") == pytest.approx(0.8)
    # Swapping hyp and ref swaps P and R; F1 is symmetric.
    assert rouge_l("我今天很难过", "我很难过") == pytest.approx(0.8)


def test_rouge_l_beta_weights_recall():
    # P = 1, R = 2/3, beta = 2: F = 5 * (2/3) / (2/3 + 4) = (10/3) / (14/3) = 10/14
    assert rouge_l("我很难过", "我今天很难过", beta=2.0) == pytest.approx(10 / 14)


def test_rouge_l_ignores_whitespace_and_half_vs_full_width_punctuation():
    assert rouge_l("我 很\n难过,", "我很难过，") == pytest.approx(1.0)


def test_rouge_l_empty_and_disjoint_score_zero():
    assert rouge_l("", "我很难过") == 0.0
    assert rouge_l("  ", "我很难过") == 0.0
    assert rouge_l("你好", "难过") == 0.0


def test_rouge_l_multi_takes_best_reference_and_corpus_means():
    assert rouge_l_multi("我很难过", ["天气不错", "我今天很难过"]) == pytest.approx(0.8)
    # post 1: 0.8 (as above); post 2: identical -> 1.0; mean = 0.9
    corpus = rouge_l_corpus(["我很难过", "谢谢你"], [["天气不错", "我今天很难过"], ["谢谢你"]])
    assert corpus == pytest.approx(0.9)


def test_rouge_l_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty list"):
        rouge_l_multi("我", [])
    with pytest.raises(ValueError, match="non-empty list"):
        rouge_l_multi("我", "我很难过")
    with pytest.raises(ValueError, match="beta"):
        rouge_l("我", "我", beta=0)


# ---- distinct-n and length ----------------------------------------------------------------------


def test_distinct_n_by_hand():
    texts = ["我很难过", "我 很好"]
    # unigrams: 我 很 难 过 | 我 很 好 -> 7 in all, unique {我, 很, 难, 过, 好} = 5 -> 5/7
    assert distinct_n(texts, 1) == pytest.approx(5 / 7)
    # bigrams: 我很 很难 难过 | 我很 很好 -> 5 in all, unique {我很, 很难, 难过, 很好} = 4 -> 0.8
    # (the space in "我 很好" is dropped, so 我很 is a bigram; no bigram spans "过"+"我" across texts)
    assert distinct_n(texts, 2) == pytest.approx(0.8)


def test_distinct_n_zero_when_no_ngrams():
    assert distinct_n(["我", "你"], 2) == 0.0
    assert distinct_n([], 1) == 0.0
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n(["我"], 0)


def test_mean_length_counts_characters_without_whitespace():
    # 我很难过 = 4; "我 很好" = 3 (space dropped); "谢谢你，！" = 5 (punctuation kept) -> 12 / 3 = 4
    assert mean_length(["我很难过", "我 很好", "谢谢你，！"]) == pytest.approx(12 / 3)
    with pytest.raises(ValueError, match="empty"):
        mean_length([])


# ---- BLEU and chrF ------------------------------------------------------------------------------


def test_bleu_identical_is_100_and_disjoint_is_0():
    assert bleu4(["我今天很难过"], [["我今天很难过"]]) == pytest.approx(100.0)
    assert bleu4(["谢谢你的分享"], [["我今天很难过"]]) == pytest.approx(0.0)


def test_bleu_by_hand_with_exp_smoothing():
    # hyp 我今天很难过 (6 chars), ref 我很难过 (4 chars), "zh" splits every character:
    # 1-grams 4/6, 2-grams {很难, 难过} 2/5, 3-grams {很难过} 1/4, 4-grams 0/3.
    # sacrebleu "exp" smoothing replaces the zero 4-gram precision by 1 / (2 * 3) = 1/6.
    # BP = 1 (hyp longer than ref). BLEU = 100 * (4/6 * 2/5 * 1/4 * 1/6) ** (1/4)
    #      = 100 * (1/90) ** 0.25 = 32.47
    assert bleu4(["我今天很难过"], [["我很难过"]]) == pytest.approx(100 * (1 / 90) ** 0.25)
    assert bleu4(["我今天很难过"], [["我很难过"]]) == pytest.approx(32.47, abs=0.01)


def test_bleu_multi_reference_uses_the_matching_reference():
    refs = [["谢谢你的分享", "我今天很难过"]]
    assert bleu4(["我今天很难过"], refs) == pytest.approx(100.0)


def test_bleu_ragged_references_keep_every_reference():
    # Post 0 has two references and matches only its SECOND; post 1 has one. Truncating to the
    # shortest row (zip) would drop post 0's matching reference and score below 100.
    hyps = ["我今天很难过", "谢谢你的分享"]
    refs = [["天气晴朗不错", "我今天很难过"], ["谢谢你的分享"]]
    assert bleu4(hyps, refs) == pytest.approx(100.0)
    assert chrf(hyps, refs) == pytest.approx(100.0)


def test_bleu_and_chrf_reject_misaligned_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference lists"):
        bleu4(["我", "你"], [["我"]])
    with pytest.raises(ValueError, match=r"references\[0\] is a bare string"):
        chrf(["我"], ["我"])
    with pytest.raises(ValueError, match=r"references\[1\] is empty"):
        bleu4(["我", "你"], [["我"], []])
    with pytest.raises(ValueError, match=r"references\[0\]\[1\] must be a non-empty string"):
        chrf(["我"], [["我", " "]])
    with pytest.raises(ValueError, match="hypotheses is empty"):
        bleu4([], [])


def test_chrf_sanity():
    assert chrf(["我今天很难过"], [["我今天很难过"]]) == pytest.approx(100.0)
    assert chrf(["谢谢你的分享"], [["我今天很难过"]]) == pytest.approx(0.0)
    partial = chrf(["我很难过"], [["我今天很难过"]])
    assert 0.0 < partial < 100.0
    # A longer contiguous run shared with the reference -> more matching character n-grams, higher
    # score ("我今很难过" would NOT do: the extra 我 breaks the 今..过 run and costs precision).
    assert chrf(["今天很难过"], [["我今天很难过"]]) > partial
    # A second, matching reference lifts the score to the match.
    assert chrf(["我很难过"], [["我今天很难过", "我很难过"]]) == pytest.approx(100.0)
