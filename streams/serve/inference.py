"""Where the model runs for ``nerstream serve``: off the event loop, one call at a time.

Texts go through :func:`streams.worker.pipeline.infer`, the worker's path from predictions to
entity spans: the same offsets, the same checks, and a failed call retried text by text so that
only the text that fails gets the error.

The model runs on one thread of the server's process: ONNX Runtime releases the GIL while it
computes, and the model's own intra-op threads (``model.threads``) do the parallel work. (A child
process for the model, which would share no GIL with the event loop, was measured against this
in interleaved load tests and was no faster: what it saves in GIL hand-offs it pays in pickling
and pipes. See the README, "HTTP API".)
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from schemas.codecs import EntitySpan
from streams.worker.pipeline import InferenceError, Predict, infer

#: Per text: its entity spans, or why the model could not tag it.
TextResult = list[EntitySpan] | InferenceError


class ThreadInference:
    """The model on one thread of this process, one call at a time."""

    def __init__(self, predict: Predict) -> None:
        self.predict = predict
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="nerstream-infer")

    async def run(self, texts: list[str]) -> list[TextResult]:
        loop = asyncio.get_running_loop()
        results, _ = await loop.run_in_executor(self._pool, infer, texts, self.predict)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True)
