"""`empathy-ray rank-ui --eval DIR`: a page on 127.0.0.1 where clinicians rank an eval run's answers.

The reviewer sees one post and its K answers under letters, in an order shuffled per reviewer and post
by a secret kept in the store (so no one can learn which letter is which system, and no system always
sits first). They rank the answers overall and on the four criteria and submit; the server maps letters
back to systems, stores the ranking (human.py) and answers with the updated tables: Win@K and mean
rank from the reviewers beside the automatic judge's from eval.json.

Plain `http.server` on purpose: four JSON routes and one static page need no framework. Posts and
answers are sensitive, so the server logs none of them (request lines go to DEBUG only).
"""

from __future__ import annotations

import json
import logging
import random
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from empathy_ray.domain.coe import LAYER_TITLES
from empathy_ray.eval.human import CRITERIA, RankingStore, check_reviewer, human_summaries
from empathy_ray.eval.ranking import ranks_from_scores

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("rank_ui.html")
STORE_NAME = "human_rankings.sqlite"
_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def find_eval_dir(path: Path) -> Path:
    """`path` itself when it holds eval.json, else its eval/ folder (a run folder was given)."""
    for candidate in (path, path / "eval"):
        if (candidate / "eval.json").is_file() and (candidate / "answers.jsonl").is_file():
            return candidate
    raise FileNotFoundError(
        f"--eval {path}: no eval.json + answers.jsonl there or in {path / 'eval'}; run `empathy-ray eval` first"
    )


class RankApp:
    """The page's logic, independent of HTTP."""

    def __init__(self, eval_dir: Path) -> None:
        self.dir = eval_dir
        self.result = json.loads((eval_dir / "eval.json").read_text(encoding="utf-8"))
        lines = (eval_dir / "answers.jsonl").read_text(encoding="utf-8").splitlines()
        self.rows = {row["post_id"]: row for row in map(json.loads, filter(None, lines))}
        self.systems = sorted(self.result["metrics"])
        self.store = RankingStore(eval_dir / STORE_NAME)
        self._salt = self.store.salt

    def order(self, reviewer: str, post_id: str) -> list[str]:
        """The systems in the order this reviewer sees them for this post (letter i = order[i])."""
        systems = list(self.systems)
        random.Random(f"{self._salt}:{reviewer}:{post_id}").shuffle(systems)
        return systems

    def next_post(self, reviewer: str) -> dict[str, Any]:
        """The first post this reviewer has not ranked yet, anonymised."""
        check_reviewer(reviewer)
        done = self.store.ranked_posts(reviewer)
        todo = [pid for pid in self.rows if pid not in done]
        base = {"total": len(self.rows), "ranked": len(self.rows) - len(todo)}
        if not todo:
            return {**base, "done": True}
        row = self.rows[todo[0]]
        answers = []
        for label, system in zip(_LABELS, self.order(reviewer, row["post_id"]), strict=False):
            sys_row = row["systems"][system]
            layers = [
                {"name": name, "title": LAYER_TITLES[name][0], "text": text}
                for name, text in sys_row["layers"].items()
            ]
            answers.append({"label": label, "answer": sys_row["answer"], "layers": layers})
        return {**base, "done": False, "post_id": row["post_id"], "post": row["post"], "answers": answers}

    def submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Store a submission {reviewer, post_id, ranks: {criterion: {letter: rank}}}; the new tables."""
        reviewer = check_reviewer(payload.get("reviewer", ""))
        post_id = payload.get("post_id")
        if post_id not in self.rows:
            raise ValueError(f"unknown post_id {post_id!r}")
        order = self.order(reviewer, post_id)
        labels = {_LABELS[i]: system for i, system in enumerate(order)}
        given = payload.get("ranks")
        if not isinstance(given, dict):
            raise ValueError("ranks must be {criterion: {letter: rank}}")
        ranks: dict[str, dict[str, int]] = {}
        for key, title in CRITERIA:
            by_label = given.get(key)
            if not isinstance(by_label, dict) or set(by_label) != set(labels):
                raise ValueError(f"{title}: rank every answer ({', '.join(labels)}) once")
            bad = [
                v
                for v in by_label.values()
                if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= len(labels)
            ]
            if bad:
                raise ValueError(f"{title}: ranks must be whole numbers 1..{len(labels)}, got {bad}")
            # equal numbers are a tie; gaps are closed into competition ranks (1, 1, 2 -> 1, 1, 3)
            ranks[key] = ranks_from_scores({labels[lab]: -r for lab, r in by_label.items()})
        self.store.add(reviewer, post_id, ranks)
        log.info("rank-ui: stored a ranking (reviewer %s, post %s)", reviewer, post_id)
        return self.tables()

    def tables(self) -> dict[str, Any]:
        judge = self.result.get("judge")
        auto = judge["summary"] if judge else None
        n_resamples = auto["n_resamples"] if auto else 1000
        return {
            "systems": self.systems,
            "criteria": [list(c) for c in CRITERIA],
            "automatic": auto,
            "human": human_summaries(self.store, len(self.systems), n_resamples),
        }


class _Handler(BaseHTTPRequestHandler):
    app: RankApp  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("rank-ui %s", format % args)

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        try:
            if url.path == "/":
                data = PAGE.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif url.path == "/api/post":
                self._json(200, self.app.next_post(parse_qs(url.query).get("reviewer", [""])[0]))
            elif url.path == "/api/tables":
                self._json(200, self.app.tables())
            else:
                self._json(404, {"error": f"no route {url.path}"})
        except ValueError as e:
            self._json(400, {"error": str(e)})

    def do_POST(self) -> None:
        if urlparse(self.path).path != "/api/rank":
            self._json(404, {"error": f"no route {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 100_000:
                raise ValueError("request too large")
            self._json(200, self.app.submit(json.loads(self.rfile.read(length) or b"{}")))
        except (ValueError, json.JSONDecodeError) as e:
            self._json(400, {"error": str(e)})


def make_server(eval_dir: Path, port: int = 0) -> ThreadingHTTPServer:
    """The HTTP server on 127.0.0.1 (port 0: any free port), not yet serving."""
    handler = type("RankHandler", (_Handler,), {"app": RankApp(eval_dir)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def serve(eval_dir: Path, port: int = 8765) -> None:
    server = make_server(eval_dir, port)
    print(
        f"rank-ui: http://127.0.0.1:{server.server_address[1]}/  (rankings: {eval_dir / STORE_NAME}); Ctrl-C stops"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
