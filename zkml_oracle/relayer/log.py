"""The relayer's log: one JSON object a line on stderr, by event name (never a key or a
private input). Apart from the loop so that the proving backends can log without importing it
(and, through it, the chain client)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

log = logging.getLogger("zkml_oracle.relayer")


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured log record (the formatter writes it as a JSON line). Never a key."""
    log.log(level, event, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(doc, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the relayer's own logger."""
    if not any(getattr(h, "_zkml_relayer", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._zkml_relayer = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
