"""zk-KYC end to end: KycGate admits an address on a verified "pass" of an identity check whose
features never go on-chain (hashed input visibility: only a Poseidon commitment of them, a
random salt and the applicant's address does), and a copied commitment admits no one.

Run with the plugin: ``pytest examples/zk_kyc/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zkml_oracle import field
from zkml_oracle.chain.oracle import input_felts, proof_calldata
from zkml_oracle.circuit import BuildOptions
from zkml_oracle.circuit.commitment import Binding
from zkml_oracle.prover import prove
from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness, committed
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
    options = BuildOptions(visibility=Visibility(input="hashed"), bind_requester=True)
    built = zkml_model_factory(files["model"], files["calibration"], options=options)
    return zkml_oracle_deployment(built)


def argmax(values: list[int]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def applicant_proof(
    zkml: OracleHarness, input_file: Path, binding: Binding, out: Path
) -> tuple[int, bytes, list[int], list[int]]:
    """What the applicant computes off-chain: their commitment and a proof bound to them."""
    sample = json.loads(input_file.read_text())["input_data"]
    (commitment,) = input_felts(zkml.build.manifest, sample, binding)
    result = prove(zkml.build.build_dir, input_file, out, bindings=[binding])
    proof, instances = proof_calldata(result.proof_path)
    seg = zkml.build.manifest.layout.outputs
    outputs = [field.felt_to_int(f) for f in instances[seg.offset : seg.end]]
    return commitment, proof, instances, outputs


def request(zkml: OracleHarness, gate: Any, applicant: str, commitment: int) -> tuple[int, Any]:
    """The applicant asks the oracle, with the gate as the callback."""
    gas = gate.functions.CALLBACK_GAS_LIMIT().call()
    fn = zkml.oracle.functions.requestInference(
        zkml.model_id, [commitment], gate.address, gas, zkml.now() + HOUR
    )
    receipt = zkml.transact(fn, applicant, FEE)
    (request_id,) = zkml.requests_in(receipt)
    return request_id, receipt


def test_a_passing_applicant_is_admitted_privately(
    zkml: OracleHarness, files: dict[str, Path], tmp_path: Path
) -> None:
    alice = zkml.accounts[1]
    with zkml.snapshot():
        gate = zkml.deploy("KycGate", zkml.oracle.address, zkml.model_id, PASS)
        commitment, proof, instances, outputs = applicant_proof(
            zkml, files["pass"], Binding.new(alice), tmp_path / "pass.json"
        )
        assert argmax(outputs) == PASS
        request_id, receipt = request(zkml, gate, alice, commitment)
        # Only the commitment is on-chain, never the features.
        tx_input = bytes(zkml.web3.eth.get_transaction(receipt.transactionHash)["input"])
        assert commitment.to_bytes(32, "big") in tx_input
        features = json.loads(files["pass"].read_text())["input_data"][0]
        scale = zkml.build.manifest.inputs[0].scale
        for value in features:
            assert field.encode(value, scale).to_bytes(32, "big") not in tx_input
        fn = zkml.oracle.functions.fulfill(committed(zkml.oracle, request_id), proof, instances)
        done = zkml.transact(fn, zkml.accounts[-1])
        (admitted,) = zkml.events(gate, "Admitted", done)
        assert (admitted.args.account, admitted.args.requestId) == (alice, request_id)
        assert gate.functions.isAdmitted(alice).call() is True


def test_a_copied_commitment_admits_nobody_else(
    zkml: OracleHarness, files: dict[str, Path], tmp_path: Path
) -> None:
    alice, mallory = zkml.accounts[1], zkml.accounts[3]
    with zkml.snapshot():
        gate = zkml.deploy("KycGate", zkml.oracle.address, zkml.model_id, PASS)
        commitment, proof, instances, _ = applicant_proof(
            zkml, files["pass"], Binding.new(alice), tmp_path / "pass.json"
        )
        mine, _ = request(zkml, gate, alice, commitment)
        theirs, _ = request(zkml, gate, mallory, commitment)
        got = zkml.reverts(
            zkml.oracle.functions.fulfill(committed(zkml.oracle, theirs), proof, instances), mallory
        )
        assert got == ("ZkmlOracleRequesterMismatch", (theirs, int(alice, 16)))
        zkml.transact(
            zkml.oracle.functions.fulfill(committed(zkml.oracle, mine), proof, instances),
            zkml.accounts[-1],
        )
        assert gate.functions.isAdmitted(alice).call() is True
        assert gate.functions.isAdmitted(mallory).call() is False


def test_a_failing_applicant_is_refused(
    zkml: OracleHarness, files: dict[str, Path], tmp_path: Path
) -> None:
    bob = zkml.accounts[2]
    with zkml.snapshot():
        gate = zkml.deploy("KycGate", zkml.oracle.address, zkml.model_id, PASS)
        commitment, proof, instances, outputs = applicant_proof(
            zkml, files["fail"], Binding.new(bob), tmp_path / "fail.json"
        )
        assert argmax(outputs) != PASS
        request_id, _ = request(zkml, gate, bob, commitment)
        # Someone else's passing proof does not match bob's commitment.
        _, other, other_instances, _ = applicant_proof(
            zkml, files["pass"], Binding.new(bob), tmp_path / "other.json"
        )
        got = zkml.reverts(
            zkml.oracle.functions.fulfill(
                committed(zkml.oracle, request_id), other, other_instances
            ),
            bob,
        )
        assert got == ("ZkmlOracleInputMismatch", (request_id,))
        fn = zkml.oracle.functions.fulfill(committed(zkml.oracle, request_id), proof, instances)
        done = zkml.transact(fn, zkml.accounts[-1])
        (refused,) = zkml.events(gate, "Refused", done)
        assert (refused.args.applicant, refused.args.verifiedClass) == (bob, argmax(outputs))
        assert gate.functions.isAdmitted(bob).call() is False
