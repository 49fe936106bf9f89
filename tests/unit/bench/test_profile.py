"""The py-spy summary used by the worker benchmark (pure: collapsed stacks in, shares out)."""

from __future__ import annotations

from bench.profile import summarize

COLLAPSED = """\
thread (101): nerstream-infer_0;run (threading.py:10);predict (models/runtime.py:300) 60
thread (101): nerstream-infer_0;run (threading.py:10);write_datum (schemas/codecs.py:64) 20
thread (7): MainThread;select (selectors.py:468) 20
not a stack line
"""


def test_threads_busy_share_and_top_self_functions() -> None:
    summary = summarize(COLLAPSED, seconds=1.0, rate=100)
    assert summary["samples"] == 100
    assert summary["thread_busy_share"] == {"nerstream-infer": 0.8, "MainThread": 0.2}
    assert summary["top_self"][0] == {"function": "predict (runtime.py)", "share_of_samples": 0.6}
    assert [row["function"] for row in summary["top_self"]][1:] == [
        "write_datum (codecs.py)",
        "select (selectors.py)",
    ]
