"""Merging concurrent requests into model calls, on the event loop; the model runs on one
inference thread so the loop keeps answering meanwhile. The rules are :mod:`.coalesce`'s.

Texts go through :func:`streams.worker.pipeline.infer`, the worker's path from predictions to
entity spans: the same offsets, the same checks, and a failed call retried text by text so that
only the text that fails gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from schemas.codecs import EntitySpan
from streams.serve.coalesce import dispatch_delay, requests_for_call, split
from streams.serve.metrics import ServeMetrics
from streams.worker.batching import AdaptiveBatcher
from streams.worker.pipeline import InferenceError, Predict, infer

logger = logging.getLogger(__name__)

#: Per text: its entity spans, or why the model could not tag it.
TextResult = list[EntitySpan] | InferenceError


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
        predict: Predict,
        batcher: AdaptiveBatcher,
        window_s: float,
        metrics: ServeMetrics,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.predict = predict
        self.batcher = batcher
        self.window_s = window_s
        self.metrics = metrics
        self.clock = clock
        self.stats = DispatchStats()
        self._waiting: deque[_Waiting] = deque()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One thread: calls are serialized; the model's own intra-op threads (model.threads)
        # do the parallel work.
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="nerstream-infer")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nerstream-dispatch")

    async def stop(self) -> None:
        """Cancel the loop (after the server stopped taking requests) and free the thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for waiting in self._waiting:
            waiting.result.cancel()
        self._inference.shutdown(wait=True)

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
            loop = asyncio.get_running_loop()
            started = self.clock()
            results, _ = await loop.run_in_executor(self._inference, infer, texts, self.predict)
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
