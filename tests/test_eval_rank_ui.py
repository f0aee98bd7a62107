"""The human ranking page: its logic (RankApp, SQLite store) and the real page driven in headless Chromium.

The eval folder comes from tests/eval_sample.py (the real scoring code on hand-written completions).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from empathy_ray.eval.human import CRITERIA
from empathy_ray.eval.rank_ui import STORE_NAME, RankApp, find_eval_dir, make_server
from empathy_ray.eval.ranking import Ranking
from tests.eval_sample import ANSWERS, write_sample_eval


@pytest.fixture()
def eval_dir(tmp_path) -> Path:
    return write_sample_eval(tmp_path / "run" / "eval")


def _ranks(app: RankApp, reviewer: str, post_id: str, by_system: dict[str, int]) -> dict:
    label = {s: "ABC"[i] for i, s in enumerate(app.order(reviewer, post_id))}
    one = {label[s]: r for s, r in by_system.items()}
    return {key: dict(one) for key, _ in CRITERIA}


def test_find_eval_dir_accepts_the_run_folder(eval_dir):
    assert find_eval_dir(eval_dir.parent) == eval_dir == find_eval_dir(eval_dir)
    with pytest.raises(FileNotFoundError, match="run `empathy-ray eval` first"):
        find_eval_dir(eval_dir.parent.parent)


def test_submissions_are_stored_mapped_and_replaced(eval_dir):
    app = RankApp(eval_dir)
    post = app.next_post("dr.li")
    assert post["post_id"] == "p0" and [a["label"] for a in post["answers"]] == ["A", "B", "C"]
    shown = {a["answer"] for a in post["answers"]}
    assert shown == set(ANSWERS.values()) and "sft" not in json.dumps(post)  # anonymised
    # ties allowed: 1, 1, 2 becomes the competition ranks 1, 1, 3
    app.submit(
        {
            "reviewer": "dr.li",
            "post_id": "p0",
            "ranks": _ranks(app, "dr.li", "p0", {"rl": 1, "sft": 1, "base": 2}),
        }
    )
    app.submit(
        {
            "reviewer": "dr.li",
            "post_id": "p0",
            "ranks": _ranks(app, "dr.li", "p0", {"rl": 1, "sft": 2, "base": 3}),
        }
    )
    tables = app.submit(
        {
            "reviewer": "dr.wang",
            "post_id": "p0",
            "ranks": _ranks(app, "dr.wang", "p0", {"rl": 2, "sft": 1, "base": 3}),
        }
    )
    # a new store object on the same file sees what was committed; dr.li's second ranking replaced the first
    again = RankApp(eval_dir)
    assert again.store.rankings("overall") == [
        Ranking("p0", {"rl": 1, "sft": 2, "base": 3}, "human:dr.li"),
        Ranking("p0", {"rl": 2, "sft": 1, "base": 3}, "human:dr.wang"),
    ]
    human = tables["human"]["overall"]
    assert human["counts"] == {"posts": 1, "judged": 2, "failed": 0, "ties": 0}
    assert human["systems"]["rl"]["win@1"] == 0.5 and human["systems"]["base"]["mean_rank"] == 3.0
    assert tables["automatic"]["systems"]["rl"]["win@1"] == 1.0  # RM judge: rl scored highest everywhere
    assert app.next_post("dr.li")["post_id"] == "p1" and app.next_post("dr.li")["ranked"] == 1


@pytest.mark.parametrize(
    "change, error",
    [
        ({"reviewer": "dr li"}, "reviewer id"),
        ({"post_id": "nope"}, "unknown post_id"),
        ({"ranks": {}}, "rank every answer"),
        ({"ranks": {key: {"A": 1, "B": 2, "C": 4} for key, _ in CRITERIA}}, "whole numbers 1..3"),
        ({"ranks": {key: {"A": 1, "B": True, "C": 3} for key, _ in CRITERIA}}, "whole numbers 1..3"),
    ],
)
def test_bad_submissions_are_rejected_and_nothing_is_stored(eval_dir, change, error):
    app = RankApp(eval_dir)
    payload = {
        "reviewer": "dr.li",
        "post_id": "p0",
        "ranks": _ranks(app, "dr.li", "p0", {"rl": 1, "sft": 2, "base": 3}),
    }
    with pytest.raises(ValueError, match=error):
        app.submit(payload | change)
    assert app.store.rankings("overall") == []


def test_answer_order_is_per_reviewer_and_post(eval_dir):
    app = RankApp(eval_dir)
    orders = {tuple(app.order(r, p)) for r in ("a", "b", "c", "d") for p in ("p0", "p1", "p2")}
    assert len(orders) > 1  # not one fixed order for everybody
    assert app.order("a", "p0") == RankApp(eval_dir).order("a", "p0")  # stable across restarts


@pytest.fixture()
def page_url(eval_dir):
    server = make_server(eval_dir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_rank_page_in_headless_chromium(eval_dir, page_url):
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "no `chromium` on PATH: `make test` installs Debian's chromium (or: apt-get install chromium)"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page()
        page.goto(page_url)

        def cell(system: str, col: str):
            return page.locator(f'#results-table tr[data-system="{system}"] td[data-col="{col}"]')

        expect(cell("rl", "auto-win@1")).to_have_text("100.0%")  # the RM judge's, there from the start
        expect(cell("base", "auto-win@2")).to_have_text("0.0%")
        expect(cell("rl", "human-win@1")).to_have_text("-")  # no human ranking yet

        page.fill("#reviewer", "dr.li")
        page.click("#start")
        cards = page.locator(".answer")
        expect(cards).to_have_count(3)
        expect(page.locator("#post")).to_contain_text("第0个帖子")
        # which letter holds which answer (the page shows no system names)
        label_of = {}
        for i in range(3):
            text = cards.nth(i).locator(".text").inner_text()
            label_of[next(s for s, a in ANSWERS.items() if a == text)] = cards.nth(i).get_attribute(
                "data-label"
            )
        assert "sft" not in page.locator("#answers").inner_text()
        # CoE layers are collapsed until opened
        sft_card = page.locator(f'.answer[data-label="{label_of["sft"]}"]')
        expect(sft_card.locator(".layer").first).to_be_hidden()
        sft_card.locator("summary").click()
        expect(sft_card.locator(".layer").first).to_contain_text("焦虑不安")

        wanted = {"sft": 1, "rl": 2, "base": 3}
        for system, rank in wanted.items():
            for key, _ in CRITERIA:
                page.select_option(
                    f'select[data-criterion="{key}"][data-label="{label_of[system]}"]', str(rank)
                )
        page.click("#submit")
        expect(page.locator("#status")).to_have_text("已保存 Saved")
        expect(page.locator("#progress")).to_contain_text("1 / 3")
        expect(cell("sft", "human-win@1")).to_have_text("100.0%")
        expect(cell("rl", "human-win@2")).to_have_text("100.0%")
        expect(cell("base", "human-win@2")).to_have_text("0.0%")
        expect(cell("sft", "human-mean-rank")).to_have_text("1.00")
        expect(cell("rl", "human-mean-rank")).to_have_text("2.00")
        expect(cell("base", "human-suggestion")).to_have_text("3.00")
        expect(cell("sft", "auto-mean-rank")).to_have_text("2.00")  # the judge's table is unchanged
        expect(page.locator("#counts")).to_contain_text("1 reviewer(s), 1 ranking(s) of 1 post(s)")
        browser.close()

    stored = RankApp(eval_dir).store
    for key, _ in CRITERIA:
        assert stored.rankings(key) == [Ranking("p0", wanted, "human:dr.li")]
    assert (eval_dir / STORE_NAME).is_file()
