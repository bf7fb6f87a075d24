"""Step timing, and progress on stderr (never on stdout, which carries the result).

Long steps (dev SRS, key generation, deploy) are told whether or not stderr is a terminal, so
a CI log or a supervisor sees where a command is: one line per step, or with ``--json`` one
JSON event a line (``{"event": "progress", "message": ..., "ts": ...}``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator

Reporter = Callable[[str], None]


def progress_reporter(json_events: bool = False) -> Reporter:
    """Progress lines on stderr; ``json_events``: one JSON object a line instead."""

    def report(line: str) -> None:
        if json_events:
            event = {"event": "progress", "message": line.strip(), "ts": round(time.time(), 3)}
            line = json.dumps(event, ensure_ascii=False)
        print(line, file=sys.stderr, flush=True)

    return report


def announce_after() -> float:
    """A step is announced once it has run this long (``$ZKML_PROGRESS_AFTER``, 10 s) and its
    end told: the long ones (dev SRS, keys, proving, deploying) show where a command is, while
    quick steps, and a refusal of bad input (one line on stderr), print nothing before their
    result, even on a loaded machine. 0 announces every step."""
    from .settings import settings

    return settings().progress_after


@contextlib.contextmanager
def announce(report: Reporter | None, label: str, after: float | None = None) -> Iterator[bool]:
    """Say ``· label …`` if the block is still running after ``after`` seconds (default
    :func:`announce_after`); yields whether a reporter is listening."""
    if report is None:
        yield False
        return
    after = announce_after() if after is None else after
    if after <= 0:
        report(f"· {label} …")
        yield True
        return
    timer = threading.Timer(after, report, args=(f"· {label} …",))
    timer.daemon = True
    timer.start()
    try:
        yield True
    finally:
        timer.cancel()


class Steps:
    """Times named steps and reports the long ones as they start and end."""

    def __init__(self, report: Reporter | None = None) -> None:
        self._report = report
        self.timings: dict[str, float] = {}

    def say(self, line: str) -> None:
        if self._report:
            self._report(line)

    @contextlib.contextmanager
    def step(self, name: str, label: str) -> Iterator[None]:
        start = time.perf_counter()
        after = announce_after()
        with announce(self._report, label, after):
            yield
        elapsed = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        if elapsed >= after:
            self.say(f"  ✓ {label} ({elapsed:.1f} s)")
