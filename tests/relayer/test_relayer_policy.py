"""The relayer's batch-size policy (zkml_oracle/relayer/policy.py): pure, no chain."""

from __future__ import annotations

from zkml_oracle.relayer.policy import BatchDecision, arrival_rate, decide


def test_a_full_batch_goes_at_once() -> None:
    seen = [100.0 + i for i in range(40)]
    assert decide(seen, capacity=32, max_wait=10, now=140.0) == BatchDecision(32)


def test_under_load_the_relayer_waits_for_the_batch_to_fill() -> None:
    # 10 requests a second, 8 of 32 queued, 5 s of budget left: 2.4 s to fill.
    seen = [100.0 + i / 10 for i in range(8)]
    assert decide(seen, capacity=32, max_wait=6, now=100.8) == BatchDecision(0, 106.0)


def test_at_a_trickle_what_waits_is_sent_at_once() -> None:
    # One request every 2 s: 24 more would take about 50 s, past the 5 s of budget left.
    seen = [100.0 + 2 * i for i in range(8)]
    assert decide(seen, capacity=32, max_wait=20, now=115.0) == BatchDecision(8)


def test_a_lone_request_waits_for_a_rate_then_its_deadline() -> None:
    assert decide([100.0], capacity=8, max_wait=5, now=101.0) == BatchDecision(0, 105.0)
    assert decide([100.0], capacity=8, max_wait=5, now=105.0) == BatchDecision(1)
    assert decide([], capacity=8, max_wait=5, now=105.0) == BatchDecision(0)


def test_arrival_rate() -> None:
    assert arrival_rate([1.0], 5.0) == 0.0
    assert arrival_rate([1.0, 2.0, 3.0], 3.0) == 1.0
    assert arrival_rate([1.0, 1.0], 1.0) == float("inf")
