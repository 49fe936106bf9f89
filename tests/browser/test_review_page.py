"""``nerstream review`` in a real browser: Debian's Chromium, headless, driven by Playwright.

The page is opened, a wrong span is removed with the keyboard, the right one is added by
selecting its text with the mouse and pressing a type key, and the task is saved; the
corrections JSONL must then read back through ``training.corpora`` as the corrected record.
Reload, a second reviewer and a server restart check that nothing is lost and no task is
handed to two people at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.tags import Span
from tests.conftest import REPO_ROOT, free_port
from training.corpora import Example, read_jsonl

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TASKS = [
    {
        "record_id": "news-1",
        "source": "news",
        "text": "张三在北京大学工作",
        "entities": [
            {"type": "PER", "start": 0, "end": 2, "score": 0.97},
            {"type": "LOC", "start": 3, "end": 5, "score": 0.41},
        ],
        "reason": "LOW_ENTITY_SCORE",
        "model": {"name": "zh-cnn-crf", "version": "2.0.0"},
    },
    {
        "record_id": "news-2",
        "source": "news",
        "text": "李四去了上海",
        "entities": [{"type": "PER", "start": 0, "end": 2, "score": 0.95}],
        "reason": "RANDOM_SAMPLE",
        "model": {"name": "zh-cnn-crf", "version": "2.0.0"},
    },
]


class ReviewServer:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "state"
        self.corrections = tmp_path / "corrections.jsonl"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        command = [
            sys.executable,
            "-m",
            "streams.cli",
            "review",
            "--state-dir",
            str(self.state),
            "--port",
            str(self.port),
            "--output",
            str(self.corrections),
            *extra,
        ]
        with (self.tmp_path / "review.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise AssertionError(f"review app not up\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def log(self) -> str:
        return (self.tmp_path / "review.log").read_text(errors="replace")

    def api(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReviewServer]:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in TASKS), "utf-8")
    review = ReviewServer(tmp_path)
    review.start("--tasks", str(tasks))
    try:
        yield review
    finally:
        review.stop()


def test_correct_a_span_with_mouse_and_keyboard_then_save(server: ReviewServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is missing: apt-get install chromium"
    # Generous: the machine may be loaded several times over.
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/?reviewer=alice")
            marks = page.locator("mark.ent")
            expect(marks).to_have_count(2)
            expect(page.locator("#progress")).to_have_text("0 / 2 reviewed")
            expect(page.locator("#meta")).to_contain_text("news-1")

            # Remove the wrong LOC span: click it, press x.
            page.locator("mark.LOC").click()
            page.keyboard.press("x")
            expect(marks).to_have_count(1)
            # Select 北京大学 (characters 3-6) with the mouse, press o for ORG.
            first = page.locator('span.ch[data-i="3"]').bounding_box()
            last = page.locator('span.ch[data-i="6"]').bounding_box()
            assert first is not None and last is not None
            page.mouse.move(first["x"] + 1, first["y"] + first["height"] / 2)
            page.mouse.down()
            page.mouse.move(last["x"] + last["width"] - 1, last["y"] + last["height"] / 2, steps=5)
            page.mouse.up()
            page.keyboard.press("o")
            expect(page.locator("mark.ORG")).to_have_text("北京大学")
            expect(page.locator("#status")).to_have_text("draft saved")

            page.keyboard.press("Enter")
            expect(page.locator("#meta")).to_contain_text("news-2")
            expect(page.locator("#progress")).to_have_text("1 / 2 reviewed")

            # A reload gives alice back the task she holds ...
            page.reload()
            expect(page.locator("#meta")).to_contain_text("news-2")
            # ... and bob, meanwhile, gets nothing: news-1 is done, news-2 is alice's.
            other = browser.new_page()
            other.goto(f"{server.url}/?reviewer=bob")
            expect(other.locator("#status")).to_contain_text("reviewed or taken by others")
        finally:
            browser.close()

    assert read_jsonl(server.corrections) == [
        Example("张三在北京大学工作", (Span(0, 2, "PER"), Span(3, 7, "ORG")))
    ]
    line = json.loads(server.corrections.read_text("utf-8"))
    assert (line["id"], line["reviewer"], line["model"]) == ("news-1", "alice", "zh-cnn-crf 2.0.0")

    # A restart keeps every decision; leases start afresh, so carol gets the open task.
    server.stop()
    server.start()
    body = server.api("/api/next?reviewer=carol")
    assert body["progress"] == {"done": 1, "total": 2}
    assert body["task"]["id"] == "news-2"
