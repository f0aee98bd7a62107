"""Reference-based text metrics for Chinese counselling replies.

Chinese has no word boundaries, so every metric here works on characters (BLEU via sacrebleu's
"zh" tokeniser, which splits CJK characters apart and keeps Latin words whole).

Text handling, the same for every metric so scores are comparable:

* Unicode NFKC is applied first. It folds full-width ASCII forms onto their half-width twins
  (``，`` -> ``,``, ``！`` -> ``!``, ``ＡＢＣ`` -> ``ABC``), so a model that writes a half-width comma
  is not penalised against a reference that writes a full-width one. CJK punctuation with no
  half-width twin (``。``, ``、``, ``“”``) is left alone.
* Punctuation is KEPT: it is part of written Chinese and part of what the references contain.
* Whitespace: the character metrics (ROUGE-L, distinct-n, mean length) drop ALL whitespace, because
  spaces and line breaks in Chinese text are layout, not content. BLEU and chrF see the text with
  only its ends stripped: sacrebleu needs spaces to keep Latin words apart, and chrF ignores
  whitespace itself.

Scales follow the usual conventions: BLEU and chrF in [0, 100] (sacrebleu), ROUGE-L and distinct-n
in [0, 1].
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF


def normalise(text: str) -> str:
    """NFKC-fold ``text`` and strip its ends (the form BLEU and chrF are given)."""
    return unicodedata.normalize("NFKC", text).strip()


def chars(text: str) -> str:
    """The characters the character-level metrics count: NFKC-folded, all whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _check_corpus(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    """Reject inputs sacrebleu would silently mis-score (misaligned or reference-less rows)."""
    if not hypotheses:
        raise ValueError("hypotheses is empty: need at least one hypothesis to score")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} reference lists; "
            "references[i] must hold the references for hypotheses[i]"
        )
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise ValueError(
                f"references[{i}] is a bare string; wrap it in a list: references[{i}] = [{refs[:20]!r}...]"
            )
        if not refs:
            raise ValueError(f"references[{i}] is empty: every hypothesis needs at least one reference")
        for j, ref in enumerate(refs):
            if not isinstance(ref, str) or not ref.strip():
                raise ValueError(f"references[{i}][{j}] must be a non-empty string, got {ref!r}")


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Transpose per-hypothesis reference lists into sacrebleu's per-reference streams.

    sacrebleu wants ``streams[j][i]`` = j-th reference of hypothesis i, every stream as long as the
    corpus. Posts have different numbers of references, so short rows are padded with ``None``,
    which sacrebleu skips; ``""`` would instead count as a real (empty) reference and distort the
    brevity penalty, and ``zip`` would silently drop every reference past the shortest row.
    """
    width = max(len(refs) for refs in references)
    return [[normalise(refs[j]) if j < len(refs) else None for refs in references] for j in range(width)]


def bleu4(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 in [0, 100], "zh" tokenisation, sacrebleu's default exponential smoothing.

    ``references[i]`` lists the references for ``hypotheses[i]``; the lists may differ in length.
    """
    _check_corpus(hypotheses, references)
    hyps = [normalise(h) for h in hypotheses]
    return float(BLEU(tokenize="zh").corpus_score(hyps, _reference_streams(references)).score)


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta=2) in [0, 100], multi-reference."""
    _check_corpus(hypotheses, references)
    hyps = [normalise(h) for h in hypotheses]
    return float(CHRF().corpus_score(hyps, _reference_streams(references)).score)


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of two strings.

    Bit-parallel (Hyyro 2004): one big-int step per character of ``b`` instead of a
    len(a) x len(b) table, so long replies against long references stay fast in pure Python.
    Bit i of ``v`` is 0 where the LCS has grown at position i of ``a``.
    """
    if not a or not b:
        return 0
    match: dict[str, int] = {}
    for i, ch in enumerate(a):
        match[ch] = match.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for ch in b:
        u = v & match.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(hyp: str, ref: str, beta: float = 1.0) -> float:
    """Character-level ROUGE-L F-score in [0, 1] (Lin 2004).

    P = LCS/len(hyp), R = LCS/len(ref), F = (1 + beta^2) P R / (R + beta^2 P). ``beta`` = 1 (the
    default) weighs precision and recall equally, i.e. plain F1; beta > 1 favours recall. An empty
    hypothesis or reference (after whitespace removal) scores 0.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    h, r = chars(hyp), chars(ref)
    lcs = lcs_length(h, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(h), lcs / len(r)
    b2 = beta * beta
    return (1 + b2) * precision * recall / (recall + b2 * precision)


def rouge_l_multi(hyp: str, refs: Sequence[str], beta: float = 1.0) -> float:
    """ROUGE-L against several references: the best match counts (max over ``refs``)."""
    if isinstance(refs, str) or not refs:
        raise ValueError(f"refs must be a non-empty list of strings, got {refs!r}")
    return max(rouge_l(hyp, ref, beta) for ref in refs)


def rouge_l_corpus(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], beta: float = 1.0
) -> float:
    """Mean over the corpus of per-hypothesis :func:`rouge_l_multi`, in [0, 1]."""
    _check_corpus(hypotheses, references)
    return sum(rouge_l_multi(h, refs, beta) for h, refs in zip(hypotheses, references, strict=True)) / len(
        hypotheses
    )


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique character n-grams / all n-grams, pooled over the corpus.

    N-grams never span two texts. Returns 0.0 when the corpus has no n-gram at all (every text
    shorter than ``n`` characters, or no texts).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[str] = set()
    total = 0
    for text in texts:
        c = chars(text)
        grams = [c[i : i + n] for i in range(len(c) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def mean_length(texts: Sequence[str]) -> float:
    """Mean reply length in characters, whitespace not counted (see the module docstring)."""
    if not texts:
        raise ValueError("texts is empty: the mean length of no replies is undefined")
    return sum(len(chars(t)) for t in texts) / len(texts)
