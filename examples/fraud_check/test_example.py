"""Fraud check end to end: a GuardedTreasury pays only while the verified fraud score of the
latest payment, read through a Chainlink-style feed (ZkmlFeedAdapter → FraudGuard), is at or
below 0.5.

Run with the plugin: ``pytest examples/fraud_check/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness

from .model import write_model

ETHER = 10**18
DECIMALS = 8
MAX_SCORE = 50_000_000  # 0.5 at the feed's 8 decimals
BOUND = 10**30  # the sane answer range, generous for a score


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model(tmp_path_factory.mktemp("fraud"))


@pytest.fixture(scope="module")
def zkml(
    files: dict[str, Path],
    zkml_model_factory: ModelFactory,
    zkml_oracle_deployment: OracleDeployer,
) -> OracleHarness:
    return zkml_oracle_deployment(zkml_model_factory(files["model"], files["calibration"]))


def to_answer(output: int, scale: int) -> int:
    """The adapter's answer: output * 10**DECIMALS / 2**scale, rounded toward zero (Solidity)."""
    magnitude: int = abs(output) * 10**DECIMALS // (1 << scale)
    return -magnitude if output < 0 else magnitude


def guarded_treasury(zkml: OracleHarness) -> tuple[Any, Any]:
    """Feed adapter over output 0 → FraudGuard (max score 0.5) → treasury holding 1 ether."""
    feed = zkml.deploy(
        "ZkmlFeedAdapter",
        zkml.oracle.address,
        zkml.model_id,
        0,
        DECIMALS,
        "fraud probability",
        b"\0" * 32,
    )
    guard = zkml.deploy("FraudGuard", feed.address, MAX_SCORE, HOUR, -BOUND, BOUND, zkml.admin)
    treasury = zkml.deploy("GuardedTreasury", guard.address, zkml.admin)
    zkml.fund(treasury.address, ETHER)
    return guard, treasury


def test_an_ordinary_payment_goes_through(zkml: OracleHarness, files: dict[str, Path]) -> None:
    shop = zkml.accounts[3]
    with zkml.snapshot():
        guard, treasury = guarded_treasury(zkml)
        proof = zkml.prove(files["legit"])
        assert proof.values[0] <= 0.5
        pushed = zkml.submit(proof)
        assert pushed.outputs == proof.outputs
        score, _ = guard.functions.fraudScore().call()
        assert score == to_answer(proof.outputs[0], zkml.output_scale)
        before = zkml.balance(shop)
        receipt = zkml.transact(treasury.functions.pay(shop, ETHER // 10), zkml.admin)
        (paid,) = zkml.events(treasury, "Paid", receipt)
        assert (paid.args.to, paid.args.amount, paid.args.score) == (shop, ETHER // 10, score)
        assert zkml.balance(shop) - before == ETHER // 10


def test_a_suspicious_payment_is_blocked(zkml: OracleHarness, files: dict[str, Path]) -> None:
    shop = zkml.accounts[3]
    with zkml.snapshot():
        guard, treasury = guarded_treasury(zkml)
        zkml.submit(zkml.prove(files["legit"]))
        zkml.advance(60)  # one round per block time
        proof = zkml.prove(files["fraud"])
        assert proof.values[0] > 0.5
        assert zkml.submit(proof).round == 2
        score, _ = guard.functions.fraudScore().call()
        assert score > MAX_SCORE
        got = zkml.reverts(treasury.functions.pay(shop, ETHER // 10), zkml.admin)
        assert got == (
            "FraudGuardTransferBlocked",
            (treasury.address, shop, ETHER // 10, score, MAX_SCORE),
        )
        assert zkml.balance(treasury.address) == ETHER
