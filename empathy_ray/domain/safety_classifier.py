"""A learned second opinion beside the crisis rules: logistic regression on hashed character n-grams.

Why: rules tuned on one set of phrasings carry poorly to the next (each new blind tuning set scored
52-64 % recall before the rules were changed for it). A classifier trained on all the tuning phrasings
picks up the wording around a crisis (a date and "用不着了", "活着好累", "want to disappear") that no
single rule names. It can only RAISE the rules' verdict (none -> low), never lower it, so every rule
stays auditable and nothing the rules catch can be lost.

Features: the text as the rules see it (safety_text.normalise: traditional -> simplified, pinyin and
Latin spellings written back, English glossed into Chinese; idioms masked), framed by "^" and "$", cut
into character n-grams of length 1..max_order; plus, per sentence, a token for every concept of CONCEPTS
found in it (a means, a chosen time, a handing-over, a farewell word, a negation, a story frame, ...) and
one for every pair of them. The concept tokens let a combination learned from one wording ("攒了安眠药" +
"周末") carry to another ("存够了药" + "过完生日"), which character n-grams alone cannot (measured by
leave-one-file-out validation: eval/safety_training.py, `--cross-validate`). Every feature is hashed
(CRC-32, stable across processes) into one of `buckets` weights; each present counts once and the vector
is scaled to unit length, so long posts are not louder than short ones. The score is the logistic of
bias + sum of weights.

The weights live in safety_model.json beside this module (integers, weight x scale), written by
`empathy-ray safety train-classifier` (eval/safety_training.py) from the tuning sets only, never from the
frozen test part. Pure Python and stdlib: no model server, no heavy dependency in the domain layer.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from empathy_ray.domain.safety_output_concepts import answer_tokens

MODEL_PATH = Path(__file__).with_name("safety_model.json")
OUTPUT_MODEL_PATH = Path(__file__).with_name("safety_output_model.json")  # kind "answer": the output check's
FORMAT = "empathy-ray-safety-ngram-lr/2"

# The learned opinion is on wherever the rules run (server guard, RL reward term, `safety eval`), and
# deliberately not a per-deployment switch: the three must judge the same text the same way, the reward
# has no serve config to read, and a crisis guard that one recipe can weaken is not a floor. To measure
# or debug the rules alone, call `safety.assess(text, learned=False)`; to retrain, see eval/safety_training.py.
ENABLED = True


# Concepts a crisis-line worker listens for, and the frames that usually make the same words harmless.
# Our own short lists over the normalised text (English arrives glossed into Chinese); they only make
# features, the rules (safety_lexicon.py and its neighbours) stay the judges of record.
CONCEPTS: tuple[tuple[str, str], ...] = (
    (
        "die",
        r"自杀|轻生|寻死|想死|去死|一死|了结|了断|一了百了|解脱|离开这个世界|结束(自己|生命|这一切|一切)|不在了|消失",
    ),
    (
        "no_life",
        r"不想活|活不下去|活着(没|好累|太累|有什么)|撑不(下去|住)|熬不(下去|住)|没意义|没意思|受够|累了|不想醒",
    ),
    (
        "means",
        r"安眠药|农药|百草枯|药片|药|刀片|刀|绳|炭|煤气|楼顶|天台|顶楼|窗台|阳台|桥|铁轨|轨道|悬崖|水库|江|河|海|车流|跳",
    ),
    ("acquire", r"攒|存够|存了|囤|买好|买了|备好|准备好|找好|选好|查了|查过|搜了|剂量|多少片|够了"),
    (
        "time",
        r"今晚|今天晚上|明天|明晚|后天|周末|下周|下个月|月底|生日|过完|那天|凌晨|半夜|天亮|天黑|等.{0,6}完",
    ),
    ("final", r"最后|再见|永别|告别|道别|遗书|遗言|后事|用不上|用不着|不用再|不会再|别找我|保重|对不起"),
    ("handover", r"送给|送人|送走|托付|留给|转给|交给|过户|还清|密码|存折|收拾好|整理好|安排好|交代"),
    ("attempt", r"上次|那次|抢救|洗胃|急诊|醒来|没死成|没成功|未遂|被救|送医|缝针"),
    ("harm", r"割|划|伤口|流血|血|疤|烫|撞墙|打自己|掐自己|咬自己|惩罚自己"),
    ("burden", r"拖累|负担|添麻烦|没有我|多余|没用的人|废物|不配"),
    ("negation", r"不|没|别|从来|并不|从没"),
    ("other", r"朋友|同学|同事|他|她|儿子|女儿|妈|爸|室友|弟|妹|哥|姐"),
    ("story", r"新闻|小说|电影|电视剧|剧里|游戏|报道|角色|主角|歌词|作业|论文|课上"),
    ("question", r"吗|\?|怎么|如何|请问|问我|问他|问她"),
    ("past", r"以前|当年|年前|那时候|现在(好|挺好|很好)|走出来|康复|已经好了"),
    ("moving", r"搬家|出国|移民|留学|离职|辞职|毕业|回老家|退休|出差|旅行"),
    ("grief", r"去世|过世|葬礼|忌日|离世|追悼"),
)
_CONCEPT = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in CONCEPTS))
_SENTENCE = re.compile(r"[.!?;。\n]")


def concept_tokens(text: str) -> set[str]:
    """Per sentence, "\0name" for every concept found and "\0a+b" for every pair of them."""
    tokens: set[str] = set()
    for sentence in _SENTENCE.split(text):
        found = sorted({m.lastgroup or "" for m in _CONCEPT.finditer(sentence)})
        tokens.update(f"\0{name}" for name in found)
        tokens.update(f"\0{a}+{b}" for a, b in itertools.combinations(found, 2))
    return tokens


@dataclass(frozen=True)
class NgramModel:
    """Hashed n-gram logistic regression. `weights[i]` belongs to every feature whose hash % buckets == i."""

    max_order: int
    buckets: int
    bias: float
    weights: tuple[float, ...]
    threshold: float  # probability at or above which the text counts as risky
    # "message": a user's text (features with concept_tokens); "answer": a model's reply (answer_tokens)
    kind: str = "message"

    def features(self, text: str) -> dict[int, float]:
        """Bucket -> value of the unit-length vector of the features present in `text` (already normalised)."""
        framed = f"^{text}$"
        grams = {framed[i : i + n] for n in range(1, self.max_order + 1) for i in range(len(framed) - n + 1)}
        tokens = concept_tokens(text) if self.kind == "message" else answer_tokens(text)
        present = {zlib.crc32(g.encode("utf-8")) % self.buckets for g in grams | tokens}
        value = 1.0 / math.sqrt(len(present))
        return dict.fromkeys(present, value)

    def probability(self, text: str) -> float:
        """P(risk) for a normalised text."""
        return self.score(self.features(text))

    def score(self, features: dict[int, float]) -> float:
        """P(risk) for features already computed (training scores each text many times)."""
        z = self.bias + sum(self.weights[b] * v for b, v in features.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def is_risky(self, text: str) -> bool:
        return self.probability(text) >= self.threshold

    def to_json(self, scale: int, provenance: dict[str, object]) -> str:
        """Deterministic text of the model file: integer weights, sorted keys, no float noise."""
        payload = {
            "format": FORMAT,
            **({"kind": self.kind} if self.kind != "message" else {}),
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
    kind = data.get("kind", "message")
    if kind not in ("message", "answer"):
        raise ModelFileError(f"{where}: field 'kind': expected 'message' or 'answer', got {kind!r}")
    scale = data["scale"]
    return NgramModel(
        data["max_order"],
        data["buckets"],
        data["bias"] / scale,
        tuple(w / scale for w in weights),
        threshold,
        kind,
    )


def _load(path: Path, option: str) -> NgramModel:
    if not path.is_file():
        raise ModelFileError(
            f"{path}: the classifier's weights are missing from the package; "
            f"regenerate them with `empathy-ray safety train-classifier{option}`"
        )
    return parse_model(path.read_text(encoding="utf-8"), str(path))


@cache
def shipped_model() -> NgramModel:
    """The crisis classifier for users' messages shipped in the package, loaded once per process."""
    return _load(MODEL_PATH, "")


@cache
def shipped_output_model() -> NgramModel:
    """The learned output check for model replies (kind "answer"), loaded once per process."""
    return _load(OUTPUT_MODEL_PATH, " --answers")
