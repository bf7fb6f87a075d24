"""Credit scoring end to end: CreditGrant pays a grant only on a verified score above 0.5.

Run with the plugin: ``pytest examples/credit_scoring/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness, committed

from .model import write_model

ETHER = 10**18
FEE = 10**15
THRESHOLD = 0.5
GRANTED, SCORE_TOO_LOW = 0, 1


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model(tmp_path_factory.mktemp("credit"))


@pytest.fixture(scope="module")
def zkml(
    files: dict[str, Path],
    zkml_model_factory: ModelFactory,
    zkml_oracle_deployment: OracleDeployer,
) -> OracleHarness:
    return zkml_oracle_deployment(zkml_model_factory(files["model"], files["calibration"]))


def grant_pool(zkml: OracleHarness) -> Any:
    """A CreditGrant of 1 ether per approved applicant, funded with 2 ether."""
    pool = zkml.deploy(
        "CreditGrant",
        zkml.oracle.address,
        zkml.model_id,
        0,  # the score is output 0
        zkml.to_fixed(THRESHOLD),
        ETHER,
        HOUR,
        zkml.admin,
        zkml.admin,  # the data provider attesting applicants' features
    )
    zkml.fund(pool.address, 2 * ETHER)
    return pool


def apply(zkml: OracleHarness, pool: Any, applicant: str, input_file: Path) -> int:
    args = zkml.attest_credit_features(pool.address, applicant, input_file)
    fn = pool.functions.applyForGrant(*args)
    (request_id,) = zkml.requests_in(zkml.transact(fn, applicant, FEE))
    return request_id


def test_a_good_applicant_is_granted_and_claims(
    zkml: OracleHarness, files: dict[str, Path]
) -> None:
    alice = zkml.accounts[1]
    with zkml.snapshot():
        pool = grant_pool(zkml)
        proof = zkml.prove(files["good"])
        assert proof.values[0] > THRESHOLD
        request_id = apply(zkml, pool, alice, files["good"])
        done = zkml.fulfill(request_id, proof)
        assert done.callback_succeeded
        assert done.outputs == proof.outputs
        (decided,) = zkml.events(pool, "GrantDecided", done.receipt)
        assert (decided.args.score, decided.args.decision) == (proof.outputs[0], GRANTED)
        before = zkml.balance(alice)
        receipt = zkml.transact(pool.functions.claim(), alice)
        cost = receipt.gasUsed * receipt.effectiveGasPrice
        assert zkml.balance(alice) - before + cost == ETHER


def test_a_bad_applicant_is_refused(zkml: OracleHarness, files: dict[str, Path]) -> None:
    bob = zkml.accounts[2]
    with zkml.snapshot():
        pool = grant_pool(zkml)
        proof = zkml.prove(files["bad"])
        assert proof.values[0] <= THRESHOLD
        request_id = apply(zkml, pool, bob, files["bad"])
        # A valid proof of another applicant's features cannot answer bob's request.
        got = zkml.reverts(
            zkml.oracle.functions.fulfill(
                committed(zkml.oracle, request_id), *zkml.prove(files["good"]).calldata
            ),
            zkml.accounts[-1],
        )
        assert got == ("ZkmlOracleInputMismatch", (request_id,))
        done = zkml.fulfill(request_id, proof)
        (decided,) = zkml.events(pool, "GrantDecided", done.receipt)
        assert decided.args.decision == SCORE_TOO_LOW
        assert pool.functions.granted(bob).call() is False
        got = zkml.reverts(pool.functions.claim(), bob)
        assert got == ("CreditGrantNothingToClaim", (bob,))
