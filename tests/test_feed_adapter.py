"""ZkmlFeedAdapter: Chainlink's AggregatorV2V3Interface over a verified push feed, on Anvil."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.oracle_helpers import (
    DECIMALS,
    UNBOUND,
    Feed,
    advance,
    call_reverts,
    deploy,
    input_hash,
    inputs_of,
    model_id,
    send,
    to_answer,
    tx_reverts,
)
from zkml_oracle import field
from zkml_oracle.chain import contracts
from zkml_oracle.testing import chain_snapshot
from zkml_oracle.types import BuildResult


@pytest.fixture(autouse=True)
def _isolated(feed: Feed) -> Iterator[None]:
    with chain_snapshot(feed.url):
        yield


def test_metadata(feed: Feed) -> None:
    for i, adapter in enumerate(feed.feeds):
        f = adapter.functions
        assert f.decimals().call() == DECIMALS
        assert f.description().call() == f"out{i}"
        assert f.version().call() == 1
        assert f.outputIndex().call() == i
        assert f.outputScale().call() == feed.scale
        assert f.modelId().call() == feed.model
        assert f.oracle().call() == feed.oracle.address


def test_a_fresh_feed(feed: Feed) -> None:
    """No round yet: V3 getters revert (Chainlink's "No data present"), V2 getters return 0."""
    f = feed.feeds[0].functions
    assert call_reverts(f.latestRoundData()) == ("ZkmlOracleNoResult", (feed.model,))
    assert call_reverts(f.getRoundData(1)) == ("ZkmlOracleUnknownRound", (feed.model, 1))
    assert f.latestAnswer().call() == 0
    assert f.latestTimestamp().call() == 0
    assert f.latestRound().call() == 0
    assert f.getAnswer(1).call() == 0
    assert f.getTimestamp(1).call() == 0


def test_rounds_follow_chainlinks_conventions(feed: Feed) -> None:
    t1 = feed.submit(feed.rounds[0])
    advance(feed.url, 60)
    t2 = feed.submit(feed.rounds[1])
    assert t2 > t1
    for i, adapter in enumerate(feed.feeds):
        f = adapter.functions
        a1 = to_answer(feed.outputs[0][i], feed.scale)
        a2 = to_answer(feed.outputs[1][i], feed.scale)
        assert f.latestRoundData().call() == [2, a2, t2, t2, 2]
        assert f.getRoundData(1).call() == [1, a1, t1, t1, 1]
        assert f.getRoundData(2).call() == [2, a2, t2, t2, 2]
        assert call_reverts(f.getRoundData(3)) == ("ZkmlOracleUnknownRound", (feed.model, 3))
        assert call_reverts(f.getRoundData(0)) == ("ZkmlOracleUnknownRound", (feed.model, 0))
        # V2
        assert f.latestAnswer().call() == a2
        assert f.latestTimestamp().call() == t2
        assert f.latestRound().call() == 2
        assert [f.getAnswer(r).call() for r in (0, 1, 2, 3, 2**80)] == [0, a1, a2, 0, 0]
        assert [f.getTimestamp(r).call() for r in (0, 1, 2, 3, 2**80)] == [0, t1, t2, 0, 0]


def test_the_answer_is_the_output_at_the_feeds_decimals(feed: Feed, built: BuildResult) -> None:
    """The real value the proof carries, at 8 decimals (truncated toward zero)."""
    feed.submit(feed.rounds[0])
    for i, adapter in enumerate(feed.feeds):
        answer = adapter.functions.latestAnswer().call()
        real = feed.outputs[0][i] / 2**feed.scale
        assert answer == int(real * 10**DECIMALS)  # int() truncates toward zero too
        assert abs(answer / 10**DECIMALS - real) < 10**-DECIMALS


FIXTURE_CHECK = HealthCheck.function_scoped_fixture


@settings(max_examples=80, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(q=st.integers(min_value=-(2**120), max_value=2**120))
@example(q=0)
@example(q=1)
@example(q=-1)
@example(q=4096)
@example(q=-4097)
@example(q=field.MAX_SIGNED)
@example(q=-field.MAX_SIGNED)
def test_the_conversion_matches_its_documentation(feed: Feed, q: int) -> None:
    expected = to_answer(q, feed.scale)
    to_answer_fn = feed.feeds[0].functions.toAnswer(q)
    if abs(expected) < 2**255:
        assert to_answer_fn.call() == expected
    else:  # q * 10**8 / 2**13 past int256 (outputs near the field's half): saturated
        assert to_answer_fn.call() == (2**255 - 1 if q > 0 else -(2**255 - 1))


def test_an_adapter_needs_a_registered_model_and_an_existing_output(feed: Feed) -> None:
    factory = feed.web3.eth.contract(
        abi=contracts.feed_adapter().abi, bytecode=contracts.feed_adapter().bytecode
    )
    oracle = feed.oracle.address
    n = len(feed.feeds)
    got = tx_reverts(factory.constructor(oracle, feed.model, n, 8, "x", UNBOUND), feed.admin)
    assert got == ("ZkmlFeedAdapterOutputOutOfRange", (n, n))
    got = tx_reverts(factory.constructor(oracle, feed.model, 0, 77, "x", UNBOUND), feed.admin)
    assert got == ("ZkmlFeedAdapterInvalidDecimals", (77,))
    unknown = b"\x07" * 32
    got = tx_reverts(factory.constructor(oracle, unknown, 0, 8, "x", UNBOUND), feed.admin)
    assert got == ("ZkmlOracleUnknownModel", (unknown,))


def test_zero_decimals_and_a_negative_output(feed: Feed, tmp_path: Path) -> None:
    adapter = feed.adapter(0, "n")
    feed.submit(feed.rounds[0])
    q = feed.outputs[0][0]
    assert adapter.functions.latestAnswer().call() == to_answer(q, feed.scale, 0)
    assert adapter.functions.toAnswer(-(2**feed.scale) - 1).call() == -1  # toward zero


# --- issue 14: feeds that answer one question, values that never brick a view ---


def test_a_bound_feed_answers_only_its_input(feed: Feed, built: BuildResult) -> None:
    """Row 1: bound to an input, a feed is not moved by a round for another input."""
    mine = input_hash(inputs_of(built, feed.rounds[0].instances))
    adapter = feed.adapter(DECIMALS, "bound", input_hash=mine)
    f = adapter.functions
    assert f.inputHash().call() == mine
    assert call_reverts(f.latestRoundData()) == ("ZkmlOracleNoResult", (feed.model,))
    t1 = feed.submit(feed.rounds[0])
    advance(feed.url, 1)
    feed.submit(feed.rounds[1])  # another input's round: the latest of the model
    answer = to_answer(feed.outputs[0][0], feed.scale)
    assert tuple(f.latestRoundData().call()) == (1, answer, t1, t1, 1)
    assert (f.latestRound().call(), f.latestAnswer().call()) == (1, answer)
    assert feed.feeds[0].functions.latestRound().call() == 2  # the unbound feed moved
    assert call_reverts(f.getRoundData(2)) == ("ZkmlFeedAdapterRoundNotForInput", (2, mine))
    assert (f.getAnswer(2).call(), f.getTimestamp(2).call()) == (0, 0)
    assert (f.getAnswer(1).call(), f.getTimestamp(1).call()) == (answer, t1)


def test_an_answer_too_large_for_an_int256_saturates(feed: Feed) -> None:
    """Row 7: a valid output whose answer overflows never makes a view revert."""
    mock = deploy(feed.web3, contracts.contract("MockVerifier"), feed.admin)
    # One public input, one output at scale 0 (a stand-in verifier: no proof needed here).
    config = (
        mock.address,
        b"\x01" * 32,
        2,
        0,
        1,
        1,
        1,
        0,
        False,
        True,
        1,
        0,
        0,
        b"\0" * 32,
        0,
        False,
    )
    send(feed.web3, feed.oracle.functions.registerModel(config), feed.admin)
    model = model_id(config)
    adapter = feed.adapter(76, "big", model=model)
    f = adapter.functions
    top = 2**255 - 1
    for round_, q in ((1, 10**10), (2, -(10**10))):
        felt = field.int_to_felt(q)
        send(feed.web3, feed.oracle.functions.submitResult(model, b"", [7, felt]), feed.admin)
        assert f.latestRoundData().call()[1] == (top if q > 0 else -top)
        assert f.getRoundData(round_).call()[1] == (top if q > 0 else -top)
        assert f.latestAnswer().call() == (top if q > 0 else -top)
        advance(feed.url, 1)
    assert f.getRoundData(1).call()[1] == top
    # Just below the bound, the exact answer.
    assert f.toAnswer(5).call() == 5 * 10**76
    assert f.toAnswer(-(2**255)).call() == -top
