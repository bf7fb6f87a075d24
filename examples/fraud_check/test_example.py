"""Fraud check end to end: a GuardedTreasury pays only when the verified fraud score of that
very payment's features, asked of the oracle by a FraudGuard, is at or below 0.5.

Run with the plugin: ``pytest examples/fraud_check/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness, committed

from .model import write_model

ETHER = 10**18
FEE = 10**15
PAID, BLOCKED = 2, 3  # GuardedTreasury.PaymentState


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


def guarded_treasury(zkml: OracleHarness) -> tuple[Any, Any]:
    """FraudGuard (output 0, blocks above 0.5) → treasury holding 1 ether."""
    guard = zkml.deploy(
        "FraudGuard", zkml.oracle.address, zkml.model_id, 0, zkml.to_fixed(0.5), zkml.admin
    )
    treasury = zkml.deploy("GuardedTreasury", guard.address, zkml.admin)
    zkml.fund(treasury.address, ETHER)
    return guard, treasury


def request_payment(zkml: OracleHarness, treasury: Any, to: str, payment: Path) -> int:
    """The treasury asks to pay 0.1 ether to ``to``, screened on ``payment``'s features."""
    fn = treasury.functions.requestPayment(
        to, ETHER // 10, zkml.input_felts(payment), zkml.now() + HOUR
    )
    receipt = zkml.transact(fn, zkml.admin, FEE)
    (requested,) = zkml.events(treasury, "PaymentRequested", receipt)
    return int(requested.args.requestId)


def test_an_ordinary_payment_goes_through(zkml: OracleHarness, files: dict[str, Path]) -> None:
    shop = zkml.accounts[3]
    with zkml.snapshot():
        _, treasury = guarded_treasury(zkml)
        rid = request_payment(zkml, treasury, shop, files["legit"])
        proof = zkml.prove(files["legit"])
        assert proof.values[0] <= 0.5
        result = zkml.fulfill(rid, proof)
        assert result.callback_succeeded
        (paid,) = zkml.events(treasury, "Paid", result.receipt)
        assert (paid.args.to, paid.args.amount, paid.args.score) == (
            shop,
            ETHER // 10,
            proof.outputs[0],
        )
        assert treasury.functions.payment(rid).call()[1] == PAID
        zkml.transact(treasury.functions.withdraw(), shop)
        assert zkml.balance(treasury.address) == ETHER - ETHER // 10


def test_a_suspicious_payment_is_blocked(zkml: OracleHarness, files: dict[str, Path]) -> None:
    shop = zkml.accounts[3]
    with zkml.snapshot():
        _, treasury = guarded_treasury(zkml)
        rid = request_payment(zkml, treasury, shop, files["fraud"])
        # An ordinary payment's genuine proof does not answer this payment's request.
        legit = zkml.prove(files["legit"])
        fn = zkml.oracle.functions.fulfill(committed(zkml.oracle, rid), *legit.calldata)
        got = zkml.reverts(fn, zkml.accounts[-1])
        assert got == ("ZkmlOracleInputMismatch", (rid,))
        proof = zkml.prove(files["fraud"])
        assert proof.values[0] > 0.5
        result = zkml.fulfill(rid, proof)
        (blocked,) = zkml.events(treasury, "Blocked", result.receipt)
        assert (blocked.args.requestId, blocked.args.score) == (rid, proof.outputs[0])
        assert treasury.functions.payment(rid).call()[1] == BLOCKED
        assert zkml.balance(treasury.address) == ETHER
