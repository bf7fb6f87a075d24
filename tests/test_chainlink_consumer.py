"""ZkmlFeedAdapter read by Chainlink's own, unmodified consumer contract.

``FeedConsumer`` (``src/v0.8/tests/FeedConsumer.sol`` of the published npm package
``@chainlink/contracts`` 1.2.0) is compiled straight from ``node_modules`` with py-solc-x:
the compiler reads it and its import (Chainlink's ``AggregatorV2V3Interface``) from the
package itself, nothing is copied into the repository. Deployed against the adapter on a
real Anvil, with two rounds of real verified proofs pushed through the oracle, every V2 and
V3 getter is read through it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import solcx

from tests.oracle_helpers import (
    DECIMALS,
    Feed,
    advance,
    call_reverts,
    deploy,
    to_answer,
)
from zkml_oracle.chain import contracts
from zkml_oracle.circuit.verifier import CompiledContract
from zkml_oracle.testing import chain_snapshot
from zkml_oracle.toolchain import ensure_solc

CHAINLINK = contracts.PROJECT_ROOT / "node_modules" / "@chainlink" / "contracts"
CHAINLINK_VERSION = "1.2.0"
FEED_CONSUMER = "src/v0.8/tests/FeedConsumer.sol"
INTERFACE = "src/v0.8/shared/interfaces/AggregatorV2V3Interface.sol"


@functools.cache
def _compiled() -> dict[str, Any]:
    """solc's output for Chainlink's FeedConsumer, compiled from the installed package."""
    package = json.loads((CHAINLINK / "package.json").read_text())
    assert (package["name"], package["version"]) == ("@chainlink/contracts", CHAINLINK_VERSION)
    std = {
        "language": "Solidity",
        "sources": {FEED_CONSUMER: {"content": (CHAINLINK / FEED_CONSUMER).read_text()}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "evm.deployedBytecode.immutableReferences",
                    ]
                }
            },
        },
    }
    out = solcx.compile_standard(
        std,
        solc_binary=ensure_solc(),
        base_path=str(CHAINLINK),
        allow_paths=[str(CHAINLINK)],
    )
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    assert not errors, errors
    # The import was resolved inside the package (the callback read it from base_path).
    assert INTERFACE in out["sources"]
    assert all(
        src.startswith("src/v0.8/shared/interfaces/") or src == FEED_CONSUMER
        for src in out["sources"]
    )
    return dict(out["contracts"][FEED_CONSUMER]["FeedConsumer"])


def feed_consumer() -> CompiledContract:
    """Chainlink's FeedConsumer, as published."""
    c = _compiled()
    return CompiledContract(
        name="FeedConsumer",
        abi=c["abi"],
        bytecode=bytes.fromhex(c["evm"]["bytecode"]["object"]),
        runtime=bytes.fromhex(c["evm"]["deployedBytecode"]["object"]),
    )


@dataclass(repr=False)
class Setup(Feed):
    consumers: list[Any]  # Chainlink's FeedConsumer on each adapter


@pytest.fixture(scope="module")
def setup(feed: Feed) -> Setup:
    """The feed adapter module's oracle, adapters and two verified rounds, each adapter read
    through its own FeedConsumer."""
    consumer = feed_consumer()
    consumers = [deploy(feed.web3, consumer, feed.admin, a.address) for a in feed.feeds]
    return Setup(**vars(feed), consumers=consumers)


@pytest.fixture(autouse=True)
def _isolated(setup: Setup) -> Iterator[None]:
    with chain_snapshot(setup.url):
        yield


def test_the_consumer_is_chainlinks_and_points_at_the_adapter(setup: Setup) -> None:
    for adapter, consumer in zip(setup.feeds, setup.consumers, strict=True):
        assert consumer.functions.AGGREGATOR().call() == adapter.address
    # The deployed code is exactly what solc made of the package's file, but for the
    # immutable (the aggregator's address) the constructor writes in.
    refs = [
        r
        for rs in _compiled()["evm"]["deployedBytecode"]["immutableReferences"].values()
        for r in rs
    ]
    assert refs
    for consumer in setup.consumers:
        code = bytearray(setup.web3.eth.get_code(consumer.address))
        runtime = bytearray(feed_consumer().runtime)
        assert len(code) == len(runtime)
        for ref in refs:
            start, end = ref["start"], ref["start"] + ref["length"]
            assert int.from_bytes(code[start:end], "big") == int(
                consumer.functions.AGGREGATOR().call(), 16
            )
            code[start:end] = runtime[start:end] = bytes(ref["length"])
        assert code == runtime


def test_metadata_through_the_consumer(setup: Setup) -> None:
    for i, consumer in enumerate(setup.consumers):
        f = consumer.functions
        assert f.decimals().call() == DECIMALS
        assert f.description().call() == f"out{i}"
        assert f.version().call() == 1


def test_a_fresh_feed_through_the_consumer(setup: Setup) -> None:
    f = setup.consumers[0].functions
    assert call_reverts(f.latestRoundData()) == ("ZkmlOracleNoResult", (setup.model,))
    assert call_reverts(f.getRoundData(1)) == ("ZkmlOracleUnknownRound", (setup.model, 1))
    assert [f.latestAnswer().call(), f.latestTimestamp().call(), f.latestRound().call()] == [
        0,
        0,
        0,
    ]
    assert [f.getAnswer(1).call(), f.getTimestamp(1).call()] == [0, 0]


def test_two_verified_rounds_through_the_consumer(setup: Setup) -> None:
    t1 = setup.submit(setup.rounds[0])
    advance(setup.url, 60)
    t2 = setup.submit(setup.rounds[1])
    assert t2 > t1
    for i, consumer in enumerate(setup.consumers):
        f = consumer.functions
        a1 = to_answer(setup.outputs[0][i], setup.scale, DECIMALS)
        a2 = to_answer(setup.outputs[1][i], setup.scale, DECIMALS)
        # V3
        r1 = f.getRoundData(1).call()
        r2 = f.getRoundData(2).call()
        assert r1 == [1, a1, t1, t1, 1]
        assert r2 == [2, a2, t2, t2, 2]
        assert f.latestRoundData().call() == r2
        for round_id, _, started_at, updated_at, answered_in in (r1, r2):
            assert answered_in == round_id and started_at == updated_at > 0
        assert r2[3] > r1[3]  # updatedAt strictly increases
        assert r2[0] == r1[0] + 1  # consecutive round ids
        for unknown in (0, 3, 2**80 - 1):
            got = call_reverts(f.getRoundData(unknown))
            assert got == ("ZkmlOracleUnknownRound", (setup.model, unknown))
        # V2
        assert f.latestAnswer().call() == a2
        assert f.latestTimestamp().call() == t2
        assert f.latestRound().call() == 2
        assert [f.getAnswer(r).call() for r in (0, 1, 2, 3)] == [0, a1, a2, 0]
        assert [f.getTimestamp(r).call() for r in (0, 1, 2, 3)] == [0, t1, t2, 0]
        # The answer is the verified output at 8 decimals, as the adapter documents.
        real = setup.outputs[1][i] / 2**setup.scale
        assert abs(a2 / 10**DECIMALS - real) < 10**-DECIMALS
