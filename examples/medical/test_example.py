"""Medical diagnosis end to end: a patient's clinical features stay private (salted,
requester-bound commitment; the features travel sealed to the relayer's key), a real relayer
process decrypts, checks, proves and fulfils, and an insurer's contract pre-authorises or
refers on the verified risk class alone.

Run with the plugin: ``pytest examples/medical/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zkml_oracle import field
from zkml_oracle.chain.oracle import input_felts
from zkml_oracle.circuit import BuildOptions
from zkml_oracle.circuit.commitment import Binding
from zkml_oracle.circuit.private_inputs import RelayerKey, seal
from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness
from zkml_oracle.types import Visibility

from .model import LOW_RISK, write_model

FEE = 10**15
PREAUTHORISED, REFERRED = 1, 2


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model(tmp_path_factory.mktemp("medical"))


@pytest.fixture(scope="module")
def zkml(
    files: dict[str, Path],
    zkml_model_factory: ModelFactory,
    zkml_oracle_deployment: OracleDeployer,
) -> OracleHarness:
    options = BuildOptions(visibility=Visibility(input="hashed"), bind_requester=True)
    built = zkml_model_factory(files["model"], files["calibration"], options=options)
    return zkml_oracle_deployment(built)


def diagnose_through_the_relayer(
    zkml: OracleHarness,
    zkml_oracle_deployment: OracleDeployer,
    patient_file: Path,
    work: Path,
) -> tuple[int, str]:
    """The patient seals their features to the relayer and asks; the relayer serves the
    request (``relay --once``). Returns the patient's decision and the relayer's output."""
    key = RelayerKey.load_or_create(work / "relayer.key")  # the relayer's published key
    insurer = zkml.deploy("InsurerPreauth", zkml.oracle.address, zkml.model_id, LOW_RISK)
    patient = zkml.accounts[1]
    sample = json.loads(patient_file.read_text())["input_data"]
    binding = Binding.new(patient)
    commitment = input_felts(zkml.build.manifest, sample, binding)
    fn = zkml.oracle.functions.requestPrivateInference(
        zkml.model_id,
        commitment,
        insurer.address,
        insurer.functions.CALLBACK_GAS_LIMIT().call(),
        zkml.now() + HOUR,
        seal(key.public_key, sample, binding),
    )
    receipt = zkml.transact(fn, patient, FEE)
    # On-chain: the commitment and the ciphertext, never the features.
    tx_input = bytes(zkml.web3.eth.get_transaction(receipt.transactionHash)["input"])
    for value in sample[0]:
        felt = field.encode(value, zkml.build.manifest.inputs[0].scale)
        assert felt.to_bytes(32, "big") not in tx_input
    relay = subprocess.run(
        [
            str(Path(sys.executable).parent / "zkml-oracle"), "relay", "--once",
            "--model", str(zkml.build.build_dir), "--rpc-url", zkml.url,
            "--deployments", str(zkml_oracle_deployment.store.root),
            "--db", str(work / "relayer.sqlite"), "--encryption-key", str(work / "relayer.key"),
        ],
        capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = relay.stdout + relay.stderr
    assert relay.returncode == 0, output
    for value in sample[0]:
        assert repr(value) not in output  # the relayer logs no plaintext
    return int(insurer.functions.decisionOf(patient).call()), output


@pytest.mark.parametrize(
    ("patient", "expected"), [("low_risk", PREAUTHORISED), ("high_risk", REFERRED)]
)
def test_the_insurer_decides_on_the_private_diagnosis(
    patient: str,
    expected: int,
    zkml: OracleHarness,
    zkml_oracle_deployment: OracleDeployer,
    files: dict[str, Path],
    tmp_path: Path,
) -> None:
    """A low-risk patient is pre-authorised, a high-risk one referred."""
    with zkml.snapshot():
        decision, output = diagnose_through_the_relayer(
            zkml, zkml_oracle_deployment, files[patient], tmp_path
        )
        assert decision == expected, output
