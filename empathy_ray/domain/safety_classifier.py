"""A learned second opinion beside the crisis rules: logistic regression on hashed character n-grams.

Why: rules tuned on one set of phrasings carry poorly to the next (each new blind tuning set scored
52-64 % recall before the rules were changed for it). A classifier trained on all the tuning phrasings
picks up the wording around a crisis (a date and "用不着了", "活着好累", "want to disappear") that no
single rule names. It can only RAISE the rules' verdict (none -> low), never lower it, so every rule
stays auditable and nothing the rules catch can be lost.

Features: the text as the rules see it (safety_text.normalise: traditional -> simplified, pinyin and
Latin spellings written back, English glossed into Chinese; idioms masked), framed by "^" and "$", cut
into character n-grams of length 1..max_order, each hashed (CRC-32, stable across processes) into one of
`buckets` weights; every n-gram present counts once and the vector is scaled to unit length, so long
posts are not louder than short ones. The score is the logistic of bias + sum of weights.

The weights live in safety_model.json beside this module (integers, weight x scale), written by
`empathy-ray safety train-classifier` (eval/safety_training.py) from the tuning sets only, never from the
frozen test part. Pure Python and stdlib: no model server, no heavy dependency in the domain layer.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MODEL_PATH = Path(__file__).with_name("safety_model.json")
FORMAT = "empathy-ray-safety-ngram-lr/1"

# The learned opinion is on wherever the rules run (server guard, RL reward term, `safety eval`), and
# deliberately not a per-deployment switch: the three must judge the same text the same way, the reward
# has no serve config to read, and a crisis guard that one recipe can weaken is not a floor. To measure
# or debug the rules alone, call `safety.assess(text, learned=False)`; to retrain, see eval/safety_training.py.
ENABLED = True


@dataclass(frozen=True)
class NgramModel:
    """Hashed n-gram logistic regression. `weights[i]` belongs to every n-gram whose hash % buckets == i."""

    max_order: int
    buckets: int
    bias: float
    weights: tuple[float, ...]
    threshold: float  # probability at or above which the text counts as risky

    def features(self, text: str) -> dict[int, float]:
        """Bucket -> value of the unit-length vector of the n-grams present in `text` (already normalised)."""
        framed = f"^{text}$"
        present = {
            zlib.crc32(framed[i : i + n].encode("utf-8")) % self.buckets
            for n in range(1, self.max_order + 1)
            for i in range(len(framed) - n + 1)
        }
        value = 1.0 / math.sqrt(len(present))
        return dict.fromkeys(present, value)

    def probability(self, text: str) -> float:
        """P(risk) for a normalised text."""
        z = self.bias + sum(self.weights[b] * v for b, v in self.features(text).items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def is_risky(self, text: str) -> bool:
        return self.probability(text) >= self.threshold

    def to_json(self, scale: int, provenance: dict[str, object]) -> str:
        """Deterministic text of the model file: integer weights, sorted keys, no float noise."""
        payload = {
            "format": FORMAT,
            "max_order": self.max_order,
            "buckets": self.buckets,
            "scale": scale,
            "threshold": self.threshold,
            "bias": round(self.bias * scale),
            "weights": [round(w * scale) for w in self.weights],
            "trained_on": provenance,
        }
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


class ModelFileError(ValueError):
    """The model file is missing or malformed; the message names the file and the field."""


def parse_model(text: str, where: str) -> NgramModel:
    """An NgramModel from the text of a model file (see NgramModel.to_json)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(
            f"{where}: not valid JSON ({e}); regenerate it with `empathy-ray safety train-classifier`"
        ) from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(f"{where}: field 'format': expected {FORMAT!r}; regenerate the file")
    for name in ("max_order", "buckets", "scale", "bias"):
        if not isinstance(data.get(name), int) or (name != "bias" and data[name] <= 0):
            raise ModelFileError(
                f"{where}: field {name!r}: expected a positive integer, got {data.get(name)!r}"
            )
    weights = data.get("weights")
    if not isinstance(weights, list) or len(weights) != data["buckets"]:
        raise ModelFileError(f"{where}: field 'weights': expected {data['buckets']} integers")
    threshold = data.get("threshold")
    if not isinstance(threshold, float) or not 0.0 < threshold < 1.0:
        raise ModelFileError(
            f"{where}: field 'threshold': expected a probability in (0, 1), got {threshold!r}"
        )
    scale = data["scale"]
    return NgramModel(
        data["max_order"], data["buckets"], data["bias"] / scale, tuple(w / scale for w in weights), threshold
    )


@cache
def shipped_model() -> NgramModel:
    """The model shipped in the package, loaded once per process."""
    if not MODEL_PATH.is_file():
        raise ModelFileError(
            f"{MODEL_PATH}: the crisis classifier's weights are missing from the package; "
            "regenerate them with `empathy-ray safety train-classifier`"
        )
    return parse_model(MODEL_PATH.read_text(encoding="utf-8"), str(MODEL_PATH))
