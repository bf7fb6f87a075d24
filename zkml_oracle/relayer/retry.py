"""The relayer's retry policy, apart from the loop: capped exponential backoff.

Two things back off: the whole turn while the RPC endpoint fails (``rpc``: 0.25 s, doubling,
at most ``backoff_cap``), and sending while the node refuses our transactions for a reason
about the relayer itself (``pause``: 2 s, doubling, at most ``pause_cap``). A request's own
failures are counted in the journal (``attempts``), not here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """``base * 2**failures`` seconds, at most ``cap``; ``failures`` since the last success."""

    base: float
    cap: float
    failures: int = 0

    def delay(self) -> float:
        return float(min(self.cap, self.base * 2 ** min(self.failures, 32)))

    def failed(self) -> float:
        """Count a failure; the delay before the next try."""
        self.failures += 1
        return self.delay()

    def succeeded(self) -> int:
        """Reset; how many failures there had been."""
        failures, self.failures = self.failures, 0
        return failures
