"""Judges: RM scores to ranks, the ranking-reply parser, and the endpoint judge against a real local
HTTP server (stdlib, in a thread) that answers well, malformed, slowly, with errors, or only on retry."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from empathy_ray.eval.judge import (
    RANKING_PROMPT,
    EndpointJudge,
    MalformedReply,
    endpoint_rankings,
    parse_ranking,
    rm_rankings,
)
from empathy_ray.eval.ranking import summarise

ANSWERS = {"long": "好" * 30, "mid": "好" * 20, "short": "好" * 10}


def test_rm_rankings_ties_share_the_rank():
    scores = {"a": [1.0, 0.5], "b": [1.0, 0.7], "c": [0.2, 0.9]}
    r0, r1 = rm_rankings(["p0", "p1"], scores, "rm:x")
    assert dict(r0.ranks) == {"a": 1, "b": 1, "c": 3} and r0.has_tie
    assert dict(r1.ranks) == {"c": 1, "b": 2, "a": 3}
    assert r0.judge == "rm:x"


def test_parse_ranking_accepts_fences_prose_and_ties():
    reply = 'Here you go:\n```json\n{"ranking": ["C", ["A", "D"], "B"]}\n```'
    assert parse_ranking(reply, ["A", "B", "C", "D"]) == {"C": 1, "A": 2, "D": 2, "B": 4}


@pytest.mark.parametrize(
    "reply, why",
    [
        ("B is best", "no JSON object"),
        ('{"order": ["A", "B"]}', "reply is not"),
        ('{"ranking": "AB"}', "must be a list"),
        ('{"ranking": ["A", "A"]}', "unknown or repeated"),
        ('{"ranking": ["A", "Z"]}', "unknown or repeated"),
        ('{"ranking": ["A"]}', "leaves out"),
    ],
)
def test_parse_ranking_rejects_incomplete_replies(reply, why):
    with pytest.raises(MalformedReply, match=why):
        parse_ranking(reply, ["A", "B"])


class _Judge(BaseHTTPRequestHandler):
    """Path /<mode>/v1/chat/completions picks the behaviour; 'good' ranks the longest reply first."""

    calls: dict[str, int] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        mode = self.path.split("/")[1]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Judge.calls[mode] = _Judge.calls.get(mode, 0) + 1
        if mode == "slow":
            time.sleep(1.0)
        if mode == "error":
            self.send_error(500, "overloaded")
            return
        if mode == "flaky" and _Judge.calls[mode] % 2 == 1:
            self._send(b"<html>gateway hiccup</html>")  # not a chat completion at all
            return
        content = "I like B." if mode == "malformed" else self._rank(body["messages"][1]["content"])
        reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        self._send(json.dumps(reply).encode())

    @staticmethod
    def _rank(prompt: str) -> str:
        blocks = dict(re.findall(r"### ([A-Z])\n(.*?)\n\n", prompt))
        order = sorted(blocks, key=lambda label: -len(blocks[label]))
        return "```json\n" + json.dumps({"ranking": order}) + "\n```"

    def _send(self, data: bytes) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except BrokenPipeError:  # the client gave up (the slow case)
            pass


@pytest.fixture(scope="module")
def judge_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _judge(base: str, mode: str) -> EndpointJudge:
    return EndpointJudge(f"{base}/{mode}/v1", "judge-model", timeout_s=0.3, retries=2, seed=0)


def test_good_endpoint_ranks_through_the_shuffle(judge_server):
    judge = _judge(judge_server, "good")
    for post_id in ("p1", "p2", "p3"):  # different shuffles; the labels must map back to the systems
        r = judge.rank(post_id, "我最近很焦虑", ANSWERS)
        assert dict(r.ranks) == {"long": 1, "mid": 2, "short": 3}
        assert r.judge == f"endpoint:judge-model@{judge_server}/good/v1" and not r.failed


@pytest.mark.parametrize(
    "mode, error", [("malformed", "MalformedReply"), ("slow", "TimeoutError"), ("error", "HTTP 500")]
)
def test_endpoint_failures_are_retried_then_recorded(judge_server, mode, error):
    before = _Judge.calls.get(mode, 0)
    r = _judge(judge_server, mode).rank("p1", "我最近很焦虑", ANSWERS)
    assert r.failed and not r.ranks
    assert "3 attempts failed" in r.error and error in r.error
    assert _Judge.calls[mode] - before == 3  # 1 try + judge_retries=2, then it stops


def test_a_retry_recovers_and_failures_never_count_as_wins(judge_server):
    flaky = _judge(judge_server, "flaky")
    rows = [
        {"post_id": f"p{i}", "post": "我很累", "systems": {s: {"answer": a} for s, a in ANSWERS.items()}}
        for i in (1, 2)
    ]
    rankings = endpoint_rankings(flaky, rows)
    assert [dict(r.ranks) for r in rankings] == [{"long": 1, "mid": 2, "short": 3}] * 2
    failed = _judge(judge_server, "malformed").rank("p2", "我很累", ANSWERS)
    summary = summarise([*rankings, failed], k_max=3, n_resamples=50)
    # p2 has two judges: flaky's success and malformed's failure; the failure counts only as a failure
    assert summary["counts"] == {"posts": 2, "judged": 2, "failed": 1, "ties": 0}
    assert summary["systems"]["long"]["win@1"] == 1.0 and summary["systems"]["short"]["win@1"] == 0.0
    assert summary["systems"]["short"]["mean_rank"] == 3.0


def test_prompt_names_every_criterion():
    for word in ("fluency", "recognition", "comforting", "suggestion", "safety", '"ranking"'):
        assert word in RANKING_PROMPT


def test_eval_output_with_the_endpoint_judge(judge_server, tmp_path):
    """Through the eval's own scoring: the good endpoint's Win@K, and a failing one reported as failures."""
    from empathy_ray.config import load_config
    from empathy_ray.eval.run import score_answers, write_outputs
    from tests.eval_sample import POSTS

    completions = {s: [f"<answer>{a}</answer>"] * len(POSTS) for s, a in ANSWERS.items()}
    for mode, judged in (("good", len(POSTS)), ("malformed", 0)):
        overrides = ["eval.judge=endpoint", f"eval.judge_url={judge_server}/{mode}/v1", "eval.judge_model=m"]
        overrides += ["eval.judge_timeout_s=2", "eval.judge_retries=1", "eval.bootstrap=20"]
        cfg = load_config(None, overrides)
        result, rows, rankings = score_answers(cfg, POSTS, completions, rm_scores=None)
        write_outputs(tmp_path / mode, result, rows, rankings)
        judge = result["judge"]
        assert judge["kind"] == "endpoint" and judge["summary"]["counts"]["judged"] == judged
        assert judge["summary"]["counts"]["failed"] == len(POSTS) - judged
        assert len(judge["failures"]) == len(POSTS) - judged
        if judged:  # the good endpoint ranks the longest reply first on every post
            assert judge["summary"]["systems"]["long"]["win@1"] == 1.0
        md = (tmp_path / mode / "eval.md").read_text(encoding="utf-8")
        assert f"endpoint:m@{judge_server}/{mode}/v1" in md
    assert result["metrics"]["long"]["rm_score"] is None  # no reward model given: not measured, not 0
    assert "No successful judgements" in md and f"failed: {len(POSTS)}" in md
    assert all("2 attempts failed" in f["error"] for f in judge["failures"])
