"""Recurrent layers exported from PyTorch (an LSTM and a GRU, fixed sequence length) build,
prove and verify, and the LSTM's verifier deploys on a chain that enforces EIP-170.

The fixtures are committed .onnx files made by scripts/export_recurrent.py (torch is not
needed to run these tests). With ezkl's Freivalds check on, which its defaults turn on for the
recurrent matmuls, this LSTM's verifier was 28,778 bytes, past EIP-170's 24,576; the build
leaves it off unless asked (BuildOptions.freivalds), and the verifier is 17,005 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from zkml_oracle.chain import ChainOptions, LocalNode, connect, sender
from zkml_oracle.chain.deploy import deploy_verifier, verify_onchain
from zkml_oracle.chain.deployments import DeploymentStore
from zkml_oracle.circuit import BuildOptions, build
from zkml_oracle.circuit.model import Runner
from zkml_oracle.circuit.model import load as load_model
from zkml_oracle.circuit.verifier import EIP170_LIMIT
from zkml_oracle.prover import prove, verify
from zkml_oracle.types import BuildResult, ProofResult

FIXTURES = REPO / "tests" / "fixtures"
SHAPE = (1, 6, 4)  # batch, sequence, features (scripts/export_recurrent.py)

pytestmark = pytest.mark.slow


def _samples(n: int, seed: int) -> list[float]:
    return np.random.default_rng(seed).normal(size=(n, *SHAPE)).reshape(-1).tolist()


def _build(name: str, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    work = tmp_path_factory.mktemp(name)
    calibration = work / "calibration.json"
    calibration.write_text(json.dumps({"input_data": [_samples(8, 0)]}))
    options = BuildOptions(dev_srs=True)
    return build(FIXTURES / f"{name}.onnx", calibration, work / "build", options)


@pytest.fixture(scope="session")
def lstm(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return _build("lstm", tmp_path_factory)


@pytest.fixture(scope="session")
def gru(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    return _build("gru", tmp_path_factory)


@pytest.fixture(scope="module")
def proven(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], tuple[BuildResult, ProofResult]]:
    """``proven(name)``: the model's build and one proof of it (made once per module)."""
    made: dict[str, tuple[BuildResult, ProofResult]] = {}

    def get(name: str) -> tuple[BuildResult, ProofResult]:
        if name not in made:
            recurrent: BuildResult = request.getfixturevalue(name)
            work = tmp_path_factory.mktemp(f"{name}-proof")
            data = work / "input.json"
            data.write_text(json.dumps({"input_data": [_samples(1, 1)]}))
            made[name] = recurrent, prove(recurrent.build_dir, data, work / "proof.json")
        return made[name]

    return get


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_a_recurrent_model_is_proven_and_matches_onnxruntime(
    name: str, proven: Callable[[str], tuple[BuildResult, ProofResult]]
) -> None:
    recurrent, proof = proven(name)
    assert verify(recurrent.build_dir, proof.proof_path).valid
    [reference] = Runner(load_model(FIXTURES / f"{name}.onnx")).run([_samples(1, 1)])
    assert abs(proof.outputs[0][0] - float(reference.reshape(-1)[0])) <= 0.01
    verifier = recurrent.manifest.verifier
    assert verifier is not None and verifier.runtime_size <= EIP170_LIMIT


def test_the_lstm_verifier_deploys_under_eip170_and_verifies_onchain(
    proven: Callable[[str], tuple[BuildResult, ProofResult]], anvil: LocalNode, tmp_path: Path
) -> None:
    lstm, proof = proven("lstm")
    store = DeploymentStore(tmp_path / "deployments")
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        deployed = deploy_verifier(
            chain, lstm.build_dir, sender(chain, None), allow_dev_srs=True, store=store
        )
        assert deployed.kind == "standalone"
        result = verify_onchain(chain, lstm.build_dir, proof.proof_path, store=store)
    assert result.valid, result.reason
