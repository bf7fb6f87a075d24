"""zk-KYC end to end: KycGate admits an address on a verified "pass" of an identity check whose
features never go on-chain (hashed input visibility: only their Poseidon commitment does).

Run with the plugin: ``pytest examples/zk_kyc/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zkml_oracle import field
from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness
from zkml_oracle.types import Visibility

from .model import write_model

FEE = 10**15
PASS = 1


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model(tmp_path_factory.mktemp("kyc"))


@pytest.fixture(scope="module")
def zkml(
    files: dict[str, Path],
    zkml_model_factory: ModelFactory,
    zkml_oracle_deployment: OracleDeployer,
) -> OracleHarness:
    built = zkml_model_factory(
        files["model"], files["calibration"], visibility=Visibility(input="hashed")
    )
    return zkml_oracle_deployment(built)


def argmax(values: list[int]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def request(zkml: OracleHarness, gate: Any, applicant: str, input_file: Path) -> tuple[int, Any]:
    (commitment,) = zkml.input_felts(input_file)
    receipt = zkml.transact(gate.functions.requestVerification(commitment), applicant, FEE)
    (request_id,) = zkml.requests_in(receipt)
    return request_id, receipt


def test_a_passing_applicant_is_admitted_privately(
    zkml: OracleHarness, files: dict[str, Path]
) -> None:
    alice = zkml.accounts[1]
    with zkml.snapshot():
        gate = zkml.deploy("KycGate", zkml.oracle.address, zkml.model_id, PASS, HOUR)
        proof = zkml.prove(files["pass"])
        assert argmax(proof.outputs) == PASS
        request_id, receipt = request(zkml, gate, alice, files["pass"])
        # Only the commitment is on-chain, never the features.
        tx_input = bytes(zkml.web3.eth.get_transaction(receipt.transactionHash)["input"])
        assert proof.input_felts[0].to_bytes(32, "big") in tx_input
        features = json.loads(files["pass"].read_text())["input_data"][0]
        scale = zkml.build.manifest.inputs[0].scale
        for value in features:
            assert field.encode(value, scale).to_bytes(32, "big") not in tx_input
        done = zkml.fulfill(request_id, proof)
        assert done.callback_succeeded
        (admitted,) = zkml.events(gate, "Admitted", done.receipt)
        assert (admitted.args.account, admitted.args.commitment) == (alice, proof.input_felts[0])
        assert gate.functions.isAdmitted(alice).call() is True


def test_a_failing_applicant_is_refused(zkml: OracleHarness, files: dict[str, Path]) -> None:
    bob = zkml.accounts[2]
    with zkml.snapshot():
        gate = zkml.deploy("KycGate", zkml.oracle.address, zkml.model_id, PASS, HOUR)
        proof = zkml.prove(files["fail"])
        assert argmax(proof.outputs) != PASS
        request_id, _ = request(zkml, gate, bob, files["fail"])
        # Someone else's passing proof does not match bob's commitment.
        other = zkml.prove(files["pass"])
        got = zkml.reverts(zkml.oracle.functions.fulfill(request_id, *other.calldata), bob)
        assert got == ("ZkmlOracleInputMismatch", (request_id,))
        done = zkml.fulfill(request_id, proof)
        (refused,) = zkml.events(gate, "Refused", done.receipt)
        assert (refused.args.applicant, refused.args.verifiedClass) == (bob, argmax(proof.outputs))
        assert gate.functions.isAdmitted(bob).call() is False
