"""How many requests the relayer proves at once, from the load (issue 16).

A batched circuit proves up to its capacity in one proof, and its proving time and
verification gas do not depend on how many slots are filled: a full batch divides the fixed
cost by the most requests, a partial one only adds latency savings. So the relayer sends a
batch as soon as it is full; short of that, it waits for more requests only while waiting
can still fill it within the latency budget (``max_wait`` from the oldest request). The
arrival rate is read from the queue itself: under load the batch fills and is sent full; at
a trickle the expected fill time exceeds the budget and what waits is sent at once, instead
of idling until the deadline for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchDecision:
    """``size`` requests to prove now (0: wait until ``wait_until``)."""

    size: int
    wait_until: float | None = None


def arrival_rate(seen_at: list[float], now: float) -> float:
    """Requests per second over the queue's span (0 with fewer than two; infinite when
    they all arrived at once)."""
    if len(seen_at) < 2:
        return 0.0
    span = max(now, max(seen_at)) - min(seen_at)
    return (len(seen_at) - 1) / span if span > 0 else float("inf")


def decide(seen_at: list[float], capacity: int, max_wait: float, now: float) -> BatchDecision:
    """The batch to prove now for a queue whose requests were seen at ``seen_at`` (oldest
    first): full batches at once; otherwise wait only if the observed arrival rate can fill
    the batch before the oldest request has waited ``max_wait``."""
    queued = len(seen_at)
    if queued == 0:
        return BatchDecision(0)
    if queued >= capacity:
        return BatchDecision(capacity)
    due = seen_at[0] + max_wait
    if now >= due:
        return BatchDecision(queued)
    if queued < 2:
        return BatchDecision(0, wait_until=due)  # no rate to go by yet
    rate = arrival_rate(seen_at, now)
    if (capacity - queued) / rate > due - now:
        return BatchDecision(queued)  # waiting would not fill it: send what is there
    return BatchDecision(0, wait_until=due)
