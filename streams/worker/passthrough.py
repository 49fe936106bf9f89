"""The first slice: a Faust worker that copies every record of one topic to another, unchanged.

It proves the whole stack (settings -> Faust app -> aiokafka -> broker -> committed offsets)
before any model is involved. Keys and values travel as raw bytes.
"""

from __future__ import annotations

import faust

from streams.settings import Settings
from streams.worker.app import create_app, raw_topic, run_app


def create_passthrough_app(settings: Settings, source: str, sink: str) -> faust.App:
    """A Faust app with one agent copying ``source`` to ``sink`` (raw key and value bytes)."""
    app = create_app(settings)
    source_topic = raw_topic(app, source)
    sink_topic = raw_topic(app, sink)

    @app.agent(source_topic, name="passthrough")
    async def passthrough(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            # Buffered, not awaited per record: Faust flushes the producer before every offset
            # commit, so a source offset is never committed ahead of its copy's delivery.
            await sink_topic.send(key=event.key, value=event.value)

    return app


def run_passthrough(settings: Settings, source: str, sink: str) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT, then stop cleanly."""
    run_app(create_passthrough_app(settings, source, sink))
