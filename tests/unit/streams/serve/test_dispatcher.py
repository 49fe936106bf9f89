"""streams.serve.dispatcher with a stand-in model: concurrent requests merged into one call and
answered in order; a text the model fails on fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.codecs import EntitySpan
from streams.serve.dispatcher import Dispatcher
from streams.serve.inference import TextResult, ThreadInference
from streams.serve.metrics import ServeMetrics
from streams.worker.batching import AdaptiveBatcher, BatchLimits
from streams.worker.pipeline import InferenceError


@dataclass(frozen=True)
class Found:
    type: str
    start: int
    end: int
    score: float


class FakeModel:
    """Tags each "X" as an entity; raises on a text containing "boom"; records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def predict(self, texts: list[str]) -> Sequence[Sequence[Found]]:
        self.entered.set()
        self.release.wait(10)
        self.calls.append(list(texts))
        if any("boom" in text for text in texts):
            raise RuntimeError("boom")
        return [
            [Found("T", i, i + 1, 0.5) for i, c in enumerate(text) if c == "X"] for text in texts
        ]


def spans(result: TextResult) -> list[EntitySpan]:
    assert not isinstance(result, InferenceError)
    return result


def dispatcher(model: FakeModel, window_s: float, max_batch: int = 256) -> Dispatcher:
    batcher = AdaptiveBatcher(BatchLimits(max_batch=max_batch, latency_target_s=0))
    return Dispatcher(ThreadInference(model.predict), batcher, window_s, ServeMetrics())


def test_requests_within_the_window_share_one_call_and_are_split_back() -> None:
    model = FakeModel()

    async def scenario() -> list[list[TextResult]]:
        serving = dispatcher(model, window_s=0.2)
        serving.start()
        try:
            return list(
                await asyncio.gather(
                    serving.submit(["aX"]), serving.submit(["b", "XX"]), serving.submit(["c"])
                )
            )
        finally:
            await serving.stop()

    first, second, third = asyncio.run(scenario())
    assert model.calls == [["aX", "b", "XX", "c"]]
    assert [(s.text, s.start, s.end) for s in spans(first[0])] == [("X", 1, 2)]
    assert second[0] == []
    assert [(s.start, s.end) for s in spans(second[1])] == [(0, 1), (1, 2)]
    assert third == [[]]


def test_requests_arriving_during_a_call_join_the_next_one() -> None:
    model = FakeModel()

    async def scenario() -> None:
        serving = dispatcher(model, window_s=0.0)
        serving.start()
        try:
            model.release.clear()  # the first call blocks in the model
            first = asyncio.ensure_future(serving.submit(["1"]))
            while not model.entered.is_set():
                await asyncio.sleep(0.01)
            later = [asyncio.ensure_future(serving.submit([str(n)])) for n in range(2, 5)]
            await asyncio.sleep(0.05)
            model.release.set()
            await asyncio.gather(first, *later)
        finally:
            await serving.stop()

    asyncio.run(scenario())
    assert model.calls == [["1"], ["2", "3", "4"]]


def test_a_failing_text_fails_alone() -> None:
    model = FakeModel()

    async def scenario() -> list[list[TextResult]]:
        serving = dispatcher(model, window_s=0.2)
        serving.start()
        try:
            return list(await asyncio.gather(serving.submit(["X"]), serving.submit(["boom"])))
        finally:
            await serving.stop()

    good, bad = asyncio.run(scenario())
    assert len(spans(good[0])) == 1
    assert isinstance(bad[0], InferenceError)
    # The merged call failed, then each text was retried alone.
    assert model.calls == [["X", "boom"], ["X"], ["boom"]]
