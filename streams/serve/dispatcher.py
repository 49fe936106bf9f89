"""Merging concurrent requests into model calls, on the event loop, by :mod:`.coalesce`'s
rules; each call runs off the loop (:mod:`.inference`), so the loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from streams.serve.coalesce import dispatch_delay, requests_for_call, split
from streams.serve.inference import TextResult, ThreadInference
from streams.serve.metrics import ServeMetrics
from streams.worker.batching import AdaptiveBatcher

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Waiting:
    texts: list[str]
    arrival: float
    result: asyncio.Future[list[TextResult]]


@dataclass
class DispatchStats:
    """Counters for progress lines."""

    calls: int = 0
    texts: int = 0
    requests: int = 0


class Dispatcher:
    """Takes requests (lists of texts), answers each with its texts' results."""

    def __init__(
        self,
        inference: ThreadInference,
        batcher: AdaptiveBatcher,
        window_s: float,
        metrics: ServeMetrics,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.inference = inference
        self.batcher = batcher
        self.window_s = window_s
        self.metrics = metrics
        self.clock = clock
        self.stats = DispatchStats()
        self._waiting: deque[_Waiting] = deque()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nerstream-dispatch")

    async def stop(self) -> None:
        """Cancel the loop (after the server stopped taking requests) and close the model."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for waiting in self._waiting:
            waiting.result.cancel()
        self.inference.close()

    async def submit(self, texts: list[str]) -> list[TextResult]:
        """The results of ``texts``, in order, once a model call that took them is done."""
        future: asyncio.Future[list[TextResult]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(texts, self.clock(), future))
        self._changed.set()
        return await future

    async def _run(self) -> None:
        while True:
            try:
                await self._next_call()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not leave every later request hanging
                logger.exception("the request dispatcher failed; failing its call's requests")

    async def _next_call(self) -> None:
        while not self._waiting:
            self._changed.clear()
            await self._changed.wait()
        limits = self.batcher.limits
        delay = dispatch_delay(
            self.clock(),
            self._waiting[0].arrival,
            self.window_s,
            sum(len(waiting.texts) for waiting in self._waiting),
            limits.max_batch,
        )
        if delay > 0:
            self._changed.clear()
            # More requests may fill the batch before the window ends: re-check on each.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)
            return
        count = requests_for_call([waiting.texts for waiting in self._waiting], self.batcher)
        call = [self._waiting.popleft() for _ in range(count)]
        try:
            texts = [text for waiting in call for text in waiting.texts]
            units = self.batcher.units([len(text) for text in texts])
            started = self.clock()
            results = await self.inference.run(texts)
            seconds = self.clock() - started
        except asyncio.CancelledError:
            for waiting in call:
                waiting.result.cancel()
            raise
        except Exception as exc:
            for waiting in call:
                if not waiting.result.done():
                    waiting.result.set_exception(exc)
            raise
        self.batcher.observe(units, seconds)
        self.metrics.batch_size.observe(len(texts))
        self.metrics.batch_requests.observe(len(call))
        self.metrics.inference_seconds.observe(seconds)
        self.stats.calls += 1
        self.stats.texts += len(texts)
        self.stats.requests += len(call)
        parts = split(results, [len(waiting.texts) for waiting in call])
        for waiting, part in zip(call, parts, strict=True):
            if not waiting.result.done():  # its client may have gone
                waiting.result.set_result(part)
