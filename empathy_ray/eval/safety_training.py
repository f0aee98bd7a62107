"""`empathy-ray safety train-classifier`: regenerate safety_model.json from the labelled tuning sets.

Reproducible on purpose: a fixed seed, a fixed number of passes, pure-Python float arithmetic and
integer weights in a sorted-key file, so the same inputs give a byte-identical model file (the command
prints its SHA-256; run it twice to check). Trains ONLY on the tuning files (tests/data/safety/tune*.jsonl
except the validation file, plus our own extra examples); the frozen test part is refused.

Training examples from a JSONL set (tests/data/safety/README.md): a message row is one example; a risky
conversation gives its risk turn as a positive (its other turns are unlabelled and left out); a benign
conversation gives every user turn as a negative. The two classes are weighted to count equally.
With `--validate FILE` the command prints, per threshold, the recall and false-alarm rate on that file's
messages of the classifier alone and of rules + classifier, which is how the shipped threshold and
n-gram settings were chosen (tune4.jsonl, never trained on).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from empathy_ray.domain import safety_classifier as classifier
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.domain.safety import assess, canonical_text
from empathy_ray.eval.safety import load_set

_SET_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "safety"
DEFAULT_TRAIN = tuple(
    _SET_DIR / f for f in ("tune.jsonl", "tune2.jsonl", "tune3.jsonl", "classifier_extra.jsonl")
)
DEFAULT_VALIDATE = _SET_DIR / "tune4.jsonl"
FROZEN = "test.jsonl"


@dataclass(frozen=True)
class Settings:
    """Everything that decides the model file besides the data, chosen on the blind tune4.jsonl: n-gram
    length and buckets by the classifier's ranking there (AUC 0.98 with 1-4-grams in 2^16 buckets), the
    threshold as the lowest on the sweep with no false alarm on tune4's negatives nor on the sample posts
    (ordinary distress; at 0.80 two of them fired)."""

    max_order: int = 4
    buckets: int = 1 << 16
    epochs: int = 30
    learning_rate: float = 2.0  # divided by (1 + epoch): big early steps, settled late ones
    seed: int = 13
    threshold: float = 0.85
    scale: int = 1000  # weights are stored as round(weight * scale)


def load_examples(path: Path) -> list[tuple[str, int]]:
    """(raw text, 1 for risk / 0 for none) from one labelled JSONL file, read and checked by `safety eval`'s
    reader (errors name file, line, field): a message as it is; a risky conversation's risk turn; every
    user turn of a benign conversation."""
    if path.name == FROZEN:
        raise ValueError(f"{path}: the frozen test part is never trained on; pass the tuning files")
    examples: list[tuple[str, int]] = []
    for item in load_set(path):
        if not item.messages:
            examples.append((item.text, int(item.risky)))
        elif item.risky:
            examples.append((item.messages[item.risk_turn]["content"], 1))
        else:
            examples.extend((m["content"], 0) for m in item.messages if m["role"] == "user")
    return examples


def train(examples: Sequence[tuple[str, int]], settings: Settings) -> classifier.NgramModel:
    """Class-weighted logistic regression by seeded SGD over the examples' canonical text."""
    empty = classifier.NgramModel(settings.max_order, settings.buckets, 0.0, (), settings.threshold)
    data = [(empty.features(canonical_text(text)), label) for text, label in examples]
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
                weights[b] -= rate * error * v
            bias -= rate * error
    # Round through the file's integer form, so the model measured here is the model shipped.
    return classifier.NgramModel(
        settings.max_order,
        settings.buckets,
        round(bias * settings.scale) / settings.scale,
        tuple(round(w * settings.scale) / settings.scale for w in weights),
        settings.threshold,
    )


def sweep(model: classifier.NgramModel, examples: Sequence[tuple[str, int]]) -> list[str]:
    """Lines of (threshold, recall / false alarms of the classifier alone, and of rules + classifier)."""
    rows = [
        (model.probability(canonical_text(text)), assess(text, learned=False).is_risky, label)
        for text, label in examples
    ]
    positives = sum(label for *_, label in rows) or 1
    negatives = (len(rows) - sum(label for *_, label in rows)) or 1
    lines = ["threshold | alone recall | alone false alarms | rules+clf recall | rules+clf false alarms"]
    for threshold in [t / 100 for t in range(50, 100, 5)]:
        alone = [(p >= threshold, label) for p, _, label in rows]
        both = [(p >= threshold or rule, label) for p, rule, label in rows]
        lines.append(
            f"{threshold:.2f} | {_rate(alone, 1) / positives:.1%} | {_rate(alone, 0) / negatives:.1%} | "
            f"{_rate(both, 1) / positives:.1%} | {_rate(both, 0) / negatives:.1%}"
        )
    return lines


def _rate(pairs: list[tuple[bool, int]], label: int) -> int:
    return sum(flag for flag, y in pairs if y == label)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="*", help="labelled tuning JSONL files (default: tune, tune2, tune3, classifier_extra)"
    )
    p.add_argument(
        "--validate", default=str(DEFAULT_VALIDATE), help="blind file for the threshold sweep ('' for none)"
    )
    p.add_argument("--out", default=str(classifier.MODEL_PATH), help="model file to write")
    p.add_argument(
        "--threshold", type=float, default=Settings.threshold, help="probability that counts as risky"
    )


def train_main(args: argparse.Namespace) -> int:
    """Train, write the model file, print its size and SHA-256 and (with --validate) the sweep."""
    paths = [Path(f) for f in args.files] or list(DEFAULT_TRAIN)
    settings = Settings(threshold=args.threshold)
    try:
        if not 0.0 < settings.threshold < 1.0:
            raise ValueError(f"--threshold: expected a probability in (0, 1), got {settings.threshold}")
        examples = [example for path in paths for example in load_examples(path)]
    except (OSError, ValueError) as e:
        print(f"error: {e}")
        return 2
    model = train(examples, settings)
    provenance = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in paths}
    text = model.to_json(settings.scale, provenance)
    out = Path(args.out)
    atomic_write_text(out, text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    print(f"wrote {out} ({len(text.encode('utf-8'))} bytes, sha256 {digest}) from {len(examples)} examples")
    if args.validate:
        validation = load_examples(Path(args.validate))
        print(f"\nblind validation on {args.validate} ({len(validation)} messages):")
        print("\n".join(sweep(model, validation)))
    return 0
