"""`empathy-ray safety train-classifier`: regenerate safety_model.json from the labelled tuning sets.

With `--answers` the same learner is trained on model replies instead (tuning files of type "answer",
DEFAULT_ANSWERS) and writes the output check's safety_output_model.json; answers_test.jsonl is refused.

Reproducible on purpose: a fixed seed, a fixed number of passes, pure-Python float arithmetic and
integer weights in a sorted-key file, so the same inputs give a byte-identical model file (the command
prints its SHA-256; run it twice to check). Trains ONLY on the tuning files (tests/data/safety/tune*.jsonl
plus our own extra examples); the frozen test part is refused.

Training examples from a JSONL set (tests/data/safety/README.md): a message row is one example; a risky
conversation gives its risk turn as a positive (its other turns are unlabelled and left out); a benign
conversation gives every user turn as a negative. The two classes are weighted to count equally.

`--cross-validate` measures how the learned opinion carries to phrasings it has not seen: each training
file F is scored by a model trained on the other files only, and its line prints the recall and false
alarms on F of the rules alone, the classifier alone and both together (counted per row as `empathy-ray
safety eval` counts them) at the threshold chosen from the other files' held-out scores. The rules were
tuned on most of these files, so their own figures there are optimistic; the classifier's are not. It ends
with the threshold chosen from every file's held-out scores: the shipped one (`Task.threshold`).

Threshold rule: the lowest probability (0.30-0.99 in steps of 0.01) at which the classifier adds false
alarms (benign rows the rules leave alone that it flags) to at most the task's budget (1 % for messages,
2 % for replies: see Task) of the benign rows, each scored by the model that never saw its file, and to
none of the task's quiet texts (ordinary sample posts; the preference pairs' preferred replies), which
are never trained on and are scored by the model trained on every file.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from empathy_ray.data.samples import load_sample_pairs, load_sample_posts
from empathy_ray.domain import safety_classifier as classifier
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.domain.safety import assess, canonical_text
from empathy_ray.domain.safety_output import check_output
from empathy_ray.domain.safety_output_concepts import normalise_answer
from empathy_ray.eval.safety import load_set

_SET_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "safety"
# tune26 and tune27 are left out: the blind check of the next change to the rules or the classifier.
DEFAULT_TRAIN = tuple(
    _SET_DIR / f
    for f in (
        *(f"tune{n}.jsonl" for n in ("", *range(2, 26))),
        *(f"classifier_extra{n}.jsonl" for n in ("", *range(2, 17))),
    )
)
FROZEN = ("test.jsonl", "answers_test.jsonl")
SAMPLES = "sample posts"
# answers_tune10 is left out: the blind check of the next change to the output check.
DEFAULT_ANSWERS = tuple(_SET_DIR / f"answers_tune{n}.jsonl" for n in ("", *range(2, 10), 11, 12))


@dataclass(frozen=True)
class Task:
    """What a model learns to flag: users' messages (the crisis classifier, safety_model.json) or model
    replies (the learned output check, safety_output_model.json). Each has its own rows, normalisation,
    rules to stand beside, quiet texts that must not be raised (the ordinary sample posts for messages; the
    sample preference pairs' preferred replies for answers), texts that count in the false-alarm budget
    like the files' benign rows (the pairs' rejected replies: dismissive, never harmful; blocking one costs
    a reply the training moves away from) and the budget itself: 1 % of benign rows for messages, where a
    false alarm puts a crisis message before the answer; 2 % for replies, where a false block swaps one
    reply for a short supportive one and a miss can pass on a method (measured in
    tests/data/safety/README.md)."""

    kind: str
    defaults: tuple[Path, ...]
    out: Path
    threshold: float
    normalise: Callable[[str], str]
    rules: Callable[[str], bool]
    quiet: Callable[[], list[tuple[str, str]]]
    tolerated: Callable[[], list[tuple[str, str]]]
    budget: float


def _quiet_posts() -> list[tuple[str, str]]:
    return [(post.id, post.text) for post in load_sample_posts() if not post.crisis]


def _preferred_replies() -> list[tuple[str, str]]:
    return [(f"{p.id}/c", p.chosen) for p in load_sample_pairs()]


def _rejected_replies() -> list[tuple[str, str]]:
    return [(f"{p.id}/r", p.rejected) for p in load_sample_pairs()]


MESSAGES = Task(
    "message", DEFAULT_TRAIN, classifier.MODEL_PATH, 0.82, canonical_text,
    lambda t: assess(t, learned=False).is_risky, _quiet_posts, list, 0.01,
)  # fmt: skip
ANSWERS = Task(
    "answer", DEFAULT_ANSWERS, classifier.OUTPUT_MODEL_PATH, 0.78, normalise_answer,
    lambda t: check_output(t, learned=False).blocked, _preferred_replies, _rejected_replies, 0.02,
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Everything that decides the model file besides the data, chosen by leave-one-file-out validation
    (`--cross-validate`, figures in tests/data/safety/README.md): 1-4-grams in 2^16 buckets with the
    concept tokens and a light L2 caught more held-out rows at the same false-alarm budget than 1-5-grams,
    stronger L2 (0.01-0.1, which ranks rows well but flattens the probabilities of new phrasings),
    sentence-by-sentence maxima or extra weight on the rows the rules miss; on the 33 files of 2026-12-01
    L2 0.0005 did no better at the same false-alarm budget, and on 35 a second, lower threshold for texts
    with a crisis concept added under one point. `threshold` is the one `--cross-validate` reports for the
    shipped files (0.82 for messages, 0.78 for replies), checked against the unit tests' look-alikes ("I
    would never hurt myself" 0.46, "我覺得好累，沒有人懂" 0.75, "坐在阳台边上喝茶" 0.81, the nearest of them, in
    tests/safety_phrases.py); rerun both after changing the data or the rules. On the 41 files of round j
    a model with 2^18 buckets or L2 0.0005 caught no more held-out rows at the same false-alarm rate."""

    max_order: int = 4
    buckets: int = 1 << 16
    epochs: int = 30
    learning_rate: float = 2.0  # divided by (1 + epoch): big early steps, settled late ones
    l2: float = 0.001  # shrinks the weights an example touches: fewer, broader cues, calmer probabilities
    seed: int = 13
    threshold: float = 0.82  # the message classifier's; a Task carries its own
    kind: str = "message"  # the Task's kind, so the features match the model's
    scale: int = 1000  # weights are stored as round(weight * scale)
    max_added_false_alarms: float = 0.01


@dataclass(frozen=True)
class Case:
    """One labelled row as the guard is scored on it: flagged when any of `texts` is flagged."""

    id: str
    texts: tuple[str, ...]
    risky: bool


def load_cases(path: Path, kind: str = "message") -> list[Case]:
    """The rows of one labelled JSONL file, read and checked by `safety eval`'s reader (errors name file,
    line, field): a message as it is; a risky conversation's risk turn; every user turn of a benign one."""
    if path.name in FROZEN:
        raise ValueError(f"{path}: the frozen test part is never trained on; pass the tuning files")
    cases = []
    for item in load_set(path):
        if item.answer != (kind == "answer"):
            raise ValueError(f"{path}: row {item.id!r} is not a {kind} row (use --answers for model replies)")
        if not item.messages:
            cases.append(Case(item.id, (item.text,), item.risky))
        elif item.risky:
            cases.append(Case(item.id, (item.messages[item.risk_turn]["content"],), True))
        else:
            users = tuple(m["content"] for m in item.messages if m["role"] == "user")
            cases.append(Case(item.id, users, False))
    return cases


def load_examples(path: Path) -> list[tuple[str, int]]:
    """(raw text, 1 for risk / 0 for none): every text of every case of one file."""
    return [(text, int(case.risky)) for case in load_cases(path) for text in case.texts]


def _empty(settings: Settings) -> classifier.NgramModel:
    return classifier.NgramModel(
        settings.max_order, settings.buckets, 0.0, (), settings.threshold, settings.kind
    )


def train(
    examples: Sequence[tuple[str, int]], settings: Settings, task: Task = MESSAGES
) -> classifier.NgramModel:
    """Class-weighted, L2-regularised logistic regression by seeded SGD over the normalised texts."""
    empty = _empty(settings)
    return _fit([(empty.features(task.normalise(text)), label) for text, label in examples], settings)


def _fit(data: Sequence[tuple[dict[int, float], int]], settings: Settings) -> classifier.NgramModel:
    positives = sum(label for _, label in data)
    if not 0 < positives < len(data):
        raise ValueError("train: need both risky and benign examples")
    class_weight = {1: len(data) / (2 * positives), 0: len(data) / (2 * (len(data) - positives))}
    weights = [0.0] * settings.buckets
    bias = 0.0
    rng = random.Random(settings.seed)
    order = list(range(len(data)))
    for epoch in range(settings.epochs):
        rng.shuffle(order)
        rate = settings.learning_rate / (1 + epoch)
        for index in order:
            features, label = data[index]
            z = bias + sum(weights[b] * v for b, v in features.items())
            error = (1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))) - label) * class_weight[label]
            for b, v in features.items():
                weights[b] -= rate * (error * v + settings.l2 * weights[b])
            bias -= rate * error
    # Round through the file's integer form, so the model measured here is the model shipped.
    return classifier.NgramModel(
        settings.max_order,
        settings.buckets,
        round(bias * settings.scale) / settings.scale,
        tuple(round(w * settings.scale) / settings.scale for w in weights),
        settings.threshold,
        settings.kind,
    )


@dataclass(frozen=True)
class Part:
    """One file made ready once for many fits: per case its label and, per text, features and rules' flag."""

    name: str
    cases: tuple[tuple[bool, tuple[tuple[dict[int, float], bool], ...]], ...]

    def data(self) -> list[tuple[dict[int, float], int]]:
        """Training pairs of every text of every case."""
        return [(f, int(risky)) for risky, texts in self.cases for f, _ in texts]


def prepare(name: str, cases: Sequence[Case], settings: Settings, task: Task = MESSAGES) -> Part:
    """Features and rules' flags of one file's cases, computed once for every fit that uses them."""
    empty = _empty(settings)
    return Part(
        name,
        tuple(
            (case.risky, tuple((empty.features(task.normalise(t)), task.rules(t)) for t in case.texts))
            for case in cases
        ),
    )


# A scored case: its label and, per text, (the rules' flag, the classifier's probability).
Scored = tuple[bool, tuple[tuple[bool, float], ...]]


def _score(model: classifier.NgramModel, part: Part) -> list[Scored]:
    """Every case of `part` scored by `model`."""
    return [(risky, tuple((rule, model.score(f)) for f, rule in texts)) for risky, texts in part.cases]


def _flagged(case: Scored, threshold: float, rules: bool, learned: bool) -> bool:
    return any((rules and rule) or (learned and p >= threshold) for rule, p in case[1])


def _added_false_alarms(scored: Sequence[Scored], threshold: float) -> float:
    """Share of benign cases that the classifier flags and the rules leave alone."""
    benign = [c for c in scored if not c[0]]
    added = sum(
        _flagged(c, threshold, False, True) and not _flagged(c, threshold, True, False) for c in benign
    )
    return added / max(1, len(benign))


def pick_threshold(scored: Sequence[Scored], settings: Settings, quiet: Sequence[Scored] = ()) -> float:
    """The lowest threshold on the grid whose added false alarms on `scored` stay within the budget and
    that adds none on `quiet` (module docstring)."""
    grid = [t / 100 for t in range(30, 100)]
    return next(
        (
            t
            for t in grid
            if _added_false_alarms(scored, t) <= settings.max_added_false_alarms
            and _added_false_alarms(quiet, t) == 0.0
        ),
        grid[-1],
    )


def held_out_scores(parts: Sequence[Part], settings: Settings) -> dict[str, list[Scored]]:
    """Each file scored by a model trained on every other file: phrasings, writers and a set it never saw.
    By file, not by row: a look-alike written in the same words as a risky row sits in the same file, so
    no row is scored by a model that learned its twin (row folds could; on the 33 files both rules pick
    nearly the same threshold, 0.83 by file and 0.84 by row)."""
    return {
        held.name: _score(_fit([d for p in parts if p is not held for d in p.data()], settings), held)
        for held in parts
    }


def _threshold(
    held: dict[str, list[Scored]],
    posts: Sequence[Scored],
    s: Settings,
    skip: str = "",
    loose: Sequence[Scored] = (),
) -> float:
    """The threshold rule over the held-out scores of every file but `skip`, the sample posts (quiet) and
    the tolerated texts (`loose`, in the budget)."""
    pooled = [case for name, scored in held.items() if name != skip for case in scored]
    return pick_threshold([*pooled, *loose, *posts], s, quiet=posts)


def cross_validate(
    parts: Sequence[Part], samples: Part, settings: Settings, tolerated: Part | None = None
) -> tuple[list[str], float]:
    """Leave-one-file-out table lines and the threshold for a model trained on every part. A file's line
    uses the threshold chosen from the other files' held-out scores, never its own. `samples` must stay
    quiet; `tolerated` texts count in the budget. Both are scored by the full model (never trained on)."""
    lines = [
        "| held-out file | risky | benign | threshold | rules recall / FA | classifier alone recall / FA "
        "| rules+classifier recall / FA |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    held = held_out_scores(parts, settings)
    full = _fit([d for p in parts for d in p.data()], settings)
    posts = _score(full, samples)
    loose = _score(full, tolerated) if tolerated else []
    for part in parts:
        threshold = _threshold(held, posts, settings, skip=part.name, loose=loose)
        scored = held[part.name]
        cells = [_rates(scored, threshold, r, c) for r, c in ((True, False), (False, True), (True, True))]
        lines.append(
            f"| {part.name} | {sum(c[0] for c in scored)} | {sum(not c[0] for c in scored)} | {threshold:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines, _threshold(held, posts, settings, loose=loose)


def _rates(scored: Sequence[Scored], threshold: float, rules: bool, learned: bool) -> str:
    hits = [(c[0], _flagged(c, threshold, rules, learned)) for c in scored]
    positives = [f for risky, f in hits if risky]
    negatives = [f for risky, f in hits if not risky]
    return f"{sum(positives) / max(1, len(positives)):.1%} / {sum(negatives) / max(1, len(negatives)):.1%}"


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="*",
        help="labelled tuning JSONL files (default: " + ", ".join(f.name for f in DEFAULT_TRAIN) + "; with "
        "--answers: " + ", ".join(f.name for f in DEFAULT_ANSWERS) + ")",
    )
    p.add_argument(
        "--answers",
        action="store_true",
        help="train the learned output check on model replies (safety_output_model.json)",
    )
    p.add_argument("--out", default=None, help="model file to write (default: the shipped one)")
    p.add_argument("--threshold", type=float, default=None, help="probability that counts as risky")
    p.add_argument(
        "--cross-validate",
        action="store_true",
        help="print leave-one-file-out recall and false alarms and the threshold chosen from all files",
    )


def train_main(args: argparse.Namespace) -> int:
    """Train, write the model file, print its size and SHA-256 and (with --cross-validate) the table."""
    task = ANSWERS if args.answers else MESSAGES
    paths = [Path(f) for f in args.files] or list(task.defaults)
    settings = Settings(
        threshold=task.threshold if args.threshold is None else args.threshold,
        kind=task.kind,
        max_added_false_alarms=task.budget,
    )
    try:
        if not 0.0 < settings.threshold < 1.0:
            raise ValueError(f"--threshold: expected a probability in (0, 1), got {settings.threshold}")
        if args.cross_validate and len(paths) < 2:
            raise ValueError("--cross-validate: needs at least two files (each is held out in turn)")
        twice = sorted(name for name, n in Counter(path.name for path in paths).items() if n > 1)
        if args.cross_validate and twice:
            raise ValueError(
                f"--cross-validate: files are held out by name and {twice} come twice; rename one"
            )
        named = [(path, load_cases(path, task.kind)) for path in paths]
    except (OSError, ValueError) as e:
        print(f"error: {e}")
        return 2
    examples = [(t, int(case.risky)) for _, cases in named for case in cases for t in case.texts]
    model = train(examples, settings, task)
    provenance = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in paths}
    text = model.to_json(settings.scale, provenance)
    out = Path(args.out or task.out)
    atomic_write_text(out, text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    print(f"wrote {out} ({len(text.encode('utf-8'))} bytes, sha256 {digest}) from {len(examples)} examples")
    if args.cross_validate:
        parts = [prepare(path.name, cases, settings, task) for path, cases in named]
        quiet, tolerated = (
            prepare(name, [Case(i, (t,), False) for i, t in texts()], settings, task)
            for name, texts in ((SAMPLES, task.quiet), ("tolerated", task.tolerated))
        )
        lines, threshold = cross_validate(parts, quiet, settings, tolerated)
        print(
            "\nleave-one-file-out validation (threshold chosen without the held-out file; FA = false alarms):"
        )
        print("\n".join(lines))
        print(
            f"\nthreshold from all files' held-out scores: {threshold:.2f} (this model: {settings.threshold})"
        )
    return 0
