"""JSON log lines for the worker (``worker.log_format=json``), one object per record.

Log calls pass their facts as ``extra={"topic": ..., "partition": ..., "offset": ...}``; the
text format shows them in the message, the JSON format as fields. Record text never reaches a
log call in the first place (it may be medical data).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

#: Extra fields copied into JSON log lines when a log call sets them.
FIELDS = ("topic", "partition", "offset", "offsets", "error_code", "worker_id", "records")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use_json_logs() -> None:
    """Switch every root handler to JSON lines."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
