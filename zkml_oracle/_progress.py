"""Step timing, and progress lines for a person at a terminal (never on stdout)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

Reporter = Callable[[str], None]


def terminal_reporter() -> Reporter | None:
    """Progress on stderr when it is a terminal; None (silent) otherwise."""
    if not sys.stderr.isatty():
        return None

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return report


class Steps:
    """Times named steps and reports them as they start and end."""

    def __init__(self, report: Reporter | None = None) -> None:
        self._report = report
        self.timings: dict[str, float] = {}

    def say(self, line: str) -> None:
        if self._report:
            self._report(line)

    @contextlib.contextmanager
    def step(self, name: str, label: str) -> Iterator[None]:
        self.say(f"· {label} …")
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        self.say(f"  ✓ {label} ({elapsed:.1f} s)")
