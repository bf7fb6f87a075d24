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


#: A step is announced once it has run this long (and its end told): the long ones (dev SRS,
#: keys, proving, deploying) show where a command is, while quick steps, and a refusal of bad
#: input (one line on stderr), print nothing before their result, even on a loaded machine.
ANNOUNCE_AFTER = 10.0


@contextlib.contextmanager
def announce(report: Reporter | None, label: str, after: float = ANNOUNCE_AFTER) -> Iterator[bool]:
    """Say ``· label …`` if the block is still running after ``after`` seconds; yields
    nothing useful but lets callers know (``timer.is_alive``) nothing was said yet."""
    if report is None:
        yield False
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
        with announce(self._report, label):
            yield
        elapsed = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        if elapsed >= ANNOUNCE_AFTER:
            self.say(f"  ✓ {label} ({elapsed:.1f} s)")
