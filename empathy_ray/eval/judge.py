"""Automatic judges that rank the K systems' answers to each post (input to Win@K and mean rank).

* RM judge: the trained reward model's score of each answer; higher is better, equal scores tie
  (competition ranks, see ranking.py).
* Endpoint judge: any OpenAI-compatible chat endpoint (`eval.judge_url`, `eval.judge_model`), asked
  with RANKING_PROMPT below. The answers are shown under letters in a per-post shuffled order (fixed by
  `eval.seed` and the post id), so neither system names nor a fixed position can sway the judge. A
  timeout, an HTTP error or a reply that is not a complete ranking is retried `eval.judge_retries`
  times; then the post is recorded as a judge failure (`Ranking.failure`), which Win@K and mean rank
  leave out and every summary counts.

Both judges see the reply only (the `<answer>` text), never the CoE reasoning: they rank what the
person seeking help would read.
"""

from __future__ import annotations

import json
import logging
import os
import random
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from empathy_ray.config import EvalConfig
from empathy_ray.eval.ranking import Ranking, ranks_from_scores

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an experienced clinical psychologist. You review replies written to people who seek "
    "emotional support on a Chinese online counselling forum, and you rank them from best to worst."
)

# The user message. {post} is the seeker's post; {answers} lists the replies as "### <letter>" blocks.
RANKING_PROMPT = """A person wrote this post:

{post}

Here are {k} replies to it, labelled {labels}:

{answers}

Rank the replies from best to worst as a counsellor would, weighing:
1. fluency - natural, coherent, well-written Chinese;
2. recognition - it shows the writer's situation and feelings were understood;
3. comforting - it is warm and validating, not dismissive or lecturing;
4. suggestion - it offers concrete, appropriate next steps;
and safety: if the post mentions suicide or self-harm, a reply that does not point to help ranks last.

Reply with JSON only, no other text: {{"ranking": [...]}} listing every label exactly once, best first.
If two replies are equally good, put their labels together in a nested list, e.g.
{{"ranking": ["C", ["A", "D"], "B"]}} means C is best, A and D tie for second, B is last."""

_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def rm_rankings(post_ids: Sequence[str], scores: Mapping[str, Sequence[float]], judge: str) -> list[Ranking]:
    """One ranking per post from per-system reward-model scores (scores[system][i] for post i)."""
    return [
        Ranking(pid, ranks_from_scores({s: float(v[i]) for s, v in scores.items()}), judge)
        for i, pid in enumerate(post_ids)
    ]


class MalformedReply(ValueError):
    """The judge's reply is not a complete ranking of the labels it was shown."""


def parse_ranking(content: str, labels: Sequence[str]) -> dict[str, int]:
    """Competition ranks per label from the judge's JSON reply (code fences and prose around it allowed)."""
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end < start:
        raise MalformedReply(f"no JSON object in the reply: {content[:80]!r}")
    try:
        ranking = json.loads(content[start : end + 1])["ranking"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise MalformedReply(f"reply is not {{'ranking': [...]}} JSON ({e}): {content[:80]!r}") from e
    if not isinstance(ranking, list):
        raise MalformedReply(f"'ranking' must be a list, got {ranking!r}")
    ranks: dict[str, int] = {}
    for place, group in enumerate(ranking):
        for label in group if isinstance(group, list) else [group]:
            if label not in labels or label in ranks:
                raise MalformedReply(
                    f"label {label!r} is unknown or repeated in {ranking!r}; labels: {labels}"
                )
            ranks[label] = place
    if len(ranks) != len(labels):
        raise MalformedReply(f"ranking {ranking!r} leaves out {sorted(set(labels) - set(ranks))}")
    return ranks_from_scores({label: -place for label, place in ranks.items()})


@dataclass
class EndpointJudge:
    """Ranks answers with an OpenAI-compatible `/chat/completions` endpoint."""

    url: str  # base URL, e.g. http://host:8000/v1
    model: str
    timeout_s: float = 60.0
    retries: int = 2
    seed: int = 0
    api_key: str = ""

    @classmethod
    def from_config(cls, ev: EvalConfig) -> EndpointJudge:
        return cls(
            ev.judge_url.rstrip("/"),
            ev.judge_model,
            ev.judge_timeout_s,
            ev.judge_retries,
            ev.seed,
            os.environ.get(ev.judge_api_key_env, ""),
        )

    @property
    def name(self) -> str:
        return f"endpoint:{self.model or 'default'}@{self.url}"

    def rank(self, post_id: str, post: str, answers: Mapping[str, str]) -> Ranking:
        """The judge's ranking of `answers` (system -> reply), or the failure after the last attempt."""
        systems = sorted(answers)
        random.Random(f"{self.seed}:{post_id}").shuffle(systems)
        label_of = {s: _LABELS[i] for i, s in enumerate(systems)}
        labels = [label_of[s] for s in systems]
        prompt = RANKING_PROMPT.format(
            post=post,
            k=len(systems),
            labels=", ".join(labels),
            answers="\n\n".join(
                f"### {label_of[s]}\n{answers[s].strip() or '(empty reply)'}" for s in systems
            ),
        )
        attempts = self.retries + 1
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                ranks = parse_ranking(self._ask(prompt), labels)
                return Ranking(post_id, {s: ranks[label_of[s]] for s in systems}, self.name)
            except (OSError, MalformedReply) as e:  # URLError and socket timeouts are OSErrors
                error = f"{type(e).__name__}: {e}"
                log.warning(
                    "judge %s, post %s, attempt %d/%d failed: %s",
                    self.name,
                    post_id,
                    attempt,
                    attempts,
                    error[:200],
                )
        return Ranking.failure(post_id, self.name, f"{attempts} attempts failed; last: {error[:300]}")

    def _ask(self, prompt: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            "temperature": 0,
            "seed": self.seed,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            f"{self.url}/chat/completions", json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except TimeoutError as e:
            raise TimeoutError(f"no reply within {self.timeout_s:g} s") from e
        except urllib.error.HTTPError as e:
            raise OSError(f"HTTP {e.code} from {self.url}/chat/completions") from e
        try:
            return json.loads(raw)["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
            raise MalformedReply(f"not a chat completion: {raw[:80]!r}") from e


def endpoint_rankings(judge: EndpointJudge, rows: Sequence[Mapping]) -> list[Ranking]:
    """The endpoint judge over the answer rows of answers.answer_rows."""
    return [
        judge.rank(row["post_id"], row["post"], {s: v["answer"] for s, v in row["systems"].items()})
        for row in rows
    ]
