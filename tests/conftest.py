"""Shared fixtures: circuits are built once per test session, with real ezkl.

The dev SRS cache points at a session folder, so the suite never depends on (or writes to)
the user's own cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Ape keeps accounts and caches in APE_DATA_FOLDER (default ~/.ape): the suite gets its own,
# set before anything imports ape (removed in pytest_unconfigure).
os.environ["APE_DATA_FOLDER"] = tempfile.mkdtemp(prefix="zkml-ape-")

from zkml_oracle import field
from zkml_oracle.apps.examples import write_credit_mlp
from zkml_oracle.chain import LocalNode, contracts
from zkml_oracle.circuit import BuildOptions
from zkml_oracle.prover import prove
from zkml_oracle.types import BuildResult, ProofResult, Visibility

if TYPE_CHECKING:  # registered as a plugin below (importing it first skips assert rewriting)
    from tests.oracle_helpers import Env, Feed  # imports zkml_oracle.testing: in the fixtures
    from zkml_oracle.testing import ModelFactory

# The suite's circuits come from the plugin's model factory, as a user's would: one build per
# distinct model, calibration and options, shared by the suite's fixtures and the plugin tests.
pytest_plugins = ["zkml_oracle.testing"]

REPO = Path(__file__).resolve().parent.parent


def pytest_unconfigure(config: pytest.Config) -> None:
    """The suite's Ape folder goes with the run (each xdist worker has its own)."""
    shutil.rmtree(os.environ["APE_DATA_FOLDER"], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("zkml-cache")
    old = os.environ.get("ZKML_ORACLE_CACHE")
    os.environ["ZKML_ORACLE_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("ZKML_ORACLE_CACHE", None)
    else:
        os.environ["ZKML_ORACLE_CACHE"] = old


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled credit MLP: model.onnx, calibration.json (20 rows), input.json."""
    return write_credit_mlp(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="session")
def built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """Public inputs and outputs, fixed params, dev SRS."""
    return zkml_model_factory(example["model"], example["calibration"])


@pytest.fixture(scope="session")
def proof(
    built: BuildResult, example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> ProofResult:
    return prove(
        built.build_dir, example["input"], tmp_path_factory.mktemp("proofs") / "proof.json"
    )


@pytest.fixture(scope="session")
def hashed_built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """Hashed (Poseidon-committed) inputs and params, public outputs."""
    visibility = Visibility("hashed", "hashed", "public")
    return zkml_model_factory(example["model"], example["calibration"], visibility=visibility)


@pytest.fixture(scope="session")
def other_built(
    tmp_path_factory: pytest.TempPathFactory, zkml_model_factory: ModelFactory
) -> BuildResult:
    """Same shapes as ``built`` but other weights: another circuit with the same instance count."""
    files = write_credit_mlp(tmp_path_factory.mktemp("other-example"), seed=99)
    return zkml_model_factory(files["model"], files["calibration"])


@pytest.fixture(scope="session")
def other_proof(
    other_built: BuildResult, example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> ProofResult:
    out = tmp_path_factory.mktemp("proofs") / "other.json"
    return prove(other_built.build_dir, example["input"], out)


@pytest.fixture(scope="session")
def reusable_built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """The example circuit for ezkl's reusable verifier."""
    options = BuildOptions(reusable=True)
    return zkml_model_factory(example["model"], example["calibration"], options=options)


#: Slots per proof of the batched test circuits.
BATCH = 4


@pytest.fixture(scope="session")
def batch_built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """The example model, BATCH inferences per proof, public inputs and outputs."""
    options = BuildOptions(batch=BATCH)
    return zkml_model_factory(example["model"], example["calibration"], options=options)


@pytest.fixture(scope="session")
def batch_hashed_built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """The example model, BATCH inferences per proof, each slot's input Poseidon-committed."""
    options = BuildOptions(visibility=Visibility("hashed", "fixed", "public"), batch=BATCH)
    return zkml_model_factory(example["model"], example["calibration"], options=options)


#: Slots per proof of the privacy tests' batched circuits (2 keeps their builds cheap).
PRIVACY_BATCH = 2


def _privacy_build(
    example: dict[str, Path],
    factory: ModelFactory,
    visibility: Visibility,
    *,
    batch: int = 1,
    bind_requester: bool = False,
) -> BuildResult:
    options = BuildOptions(visibility=visibility, batch=batch, bind_requester=bind_requester)
    return factory(example["model"], example["calibration"], options=options)


@pytest.fixture(scope="session")
def private_weights_built(
    example: dict[str, Path], zkml_model_factory: ModelFactory
) -> BuildResult:
    """Public inputs, hashed (private, committed) params: ezkl puts the params hash first."""
    vis = Visibility("public", "hashed", "public")
    return _privacy_build(example, zkml_model_factory, vis)


@pytest.fixture(scope="session")
def private_weights_batch_built(
    example: dict[str, Path], zkml_model_factory: ModelFactory
) -> BuildResult:
    """As ``private_weights_built``, PRIVACY_BATCH inferences per proof."""
    vis = Visibility("public", "hashed", "public")
    return _privacy_build(example, zkml_model_factory, vis, batch=PRIVACY_BATCH)


@pytest.fixture(scope="session")
def bound_built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """Hashed inputs salted and bound to the requester, fixed params."""
    vis = Visibility("hashed", "fixed", "public")
    return _privacy_build(example, zkml_model_factory, vis, bind_requester=True)


@pytest.fixture(scope="session")
def bound_batch_built(example: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    """Salted requester-bound inputs and hashed params, PRIVACY_BATCH inferences per proof."""
    vis = Visibility("hashed", "hashed", "public")
    return _privacy_build(
        example, zkml_model_factory, vis, batch=PRIVACY_BATCH, bind_requester=True
    )


def calibration_rows(example: dict[str, Path]) -> list[list[float]]:
    """The example's calibration samples, one list of 4 features each."""
    flat = json.loads(example["calibration"].read_text())["input_data"][0]
    return [flat[i : i + 4] for i in range(0, len(flat), 4)]


def prove_rows(build_result: BuildResult, rows: list[list[float]], out: Path) -> ProofResult:
    """Prove ``rows`` (one list of the model's 4 features per sample; 1..N of them for a
    batched build, unused slots padded) with real ezkl."""
    inputs = out.with_name(out.stem + ".input.json")
    write_json(inputs, {"input_data": [[v for row in rows for v in row]]})
    return prove(build_result.build_dir, inputs, out)


@pytest.fixture(scope="session")
def anvil() -> Iterator[LocalNode]:
    """A real Anvil (local dev chain, id 31337) on a free port, for the whole session."""
    node = LocalNode.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def remote_anvil() -> Iterator[LocalNode]:
    """A second Anvil with Sepolia's chain id, passed by URL as a user passes a testnet's.

    It mines a block a second like a live network: Ape waits for Sepolia's 2 confirmations."""
    node = LocalNode.start(chain_id=11155111, extra_args=("--block-time", "1"))
    yield node
    node.stop()


def run_cli(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real console script, in a child process, as a user runs it."""
    exe = Path(sys.executable).parent / "zkml-oracle"
    return subprocess.run(
        [str(exe), *map(str, args)],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def tampered(proof_path: Path, dest: Path, edit: str) -> Path:
    """A copy of an ezkl proof file with one edit: its proof ``bytes``, its last ``output``
    instance, or its first ``input`` instance."""
    p = json.loads(proof_path.read_text())
    if edit == "bytes":
        raw = bytearray(bytes.fromhex(p["hex_proof"][2:]))
        raw[200] ^= 0x01
        p["hex_proof"] = "0x" + raw.hex()
        p["proof"] = list(raw)
    elif edit == "output":
        out = field.felt_from_ezkl_hex(p["instances"][0][-1])
        p["instances"][0][-1] = field.felt_to_ezkl_hex((out + 1) % field.FIELD_MODULUS)
    elif edit == "input":
        p["instances"][0][0] = field.felt_to_ezkl_hex(field.encode(0.25, 13))
    return write_json(dest, p)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes, to assert nothing was touched."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def copy_build(result: BuildResult, dest: Path) -> Path:
    shutil.copytree(result.build_dir, dest)
    return dest


# --- the oracle contracts on a real Anvil (helpers: tests/oracle_helpers.py) ---


@pytest.fixture(scope="module")
def oracle_env(
    anvil: LocalNode,
    built: BuildResult,
    proof: ProofResult,
    other_built: BuildResult,
    other_proof: ProofResult,
) -> Env:
    """The oracle, a FieldEncoding harness, a test consumer and a mock verifier, with the
    session's two credit-MLP circuits registered: deployed once per module that uses it
    (tests/test_oracle.py, tests/test_oracle_hardening.py)."""
    from tests.oracle_helpers import (
        Env,
        deploy,
        deploy_build_verifier,
        inputs_of,
        model_config,
        model_id,
        outputs_of,
        proof_data,
        send,
        web3_of,
    )

    web3 = web3_of(anvil.url)
    admin, requester, relayer, stranger = web3.eth.accounts[:4]
    oracle = deploy(web3, contracts.oracle(), admin, admin, False)
    verifier = deploy_build_verifier(web3, built, admin)
    other_verifier = deploy_build_verifier(web3, other_built, admin)
    config = model_config(built, verifier)
    other_config = model_config(other_built, other_verifier)
    for c in (config, other_config):
        send(web3, oracle.functions.registerModel(c), admin)
    good = proof_data(built, proof.proof_path)
    assert good.instances == proof.instances
    e = Env(
        url=anvil.url,
        web3=web3,
        admin=admin,
        requester=requester,
        relayer=relayer,
        stranger=stranger,
        oracle=oracle,
        harness=deploy(web3, contracts.contract("FieldEncodingHarness"), admin),
        consumer=deploy(web3, contracts.contract("TestConsumer"), admin, oracle.address),
        mock_verifier=deploy(web3, contracts.contract("MockVerifier"), admin),
        config=config,
        model=model_id(config),
        other_config=other_config,
        other_model=model_id(other_config),
        good=good,
        other=proof_data(other_built, other_proof.proof_path),
        outputs=outputs_of(built, good.instances),
        inputs=inputs_of(built, good.instances),
    )
    return e


@pytest.fixture(autouse=True)
def _oracle_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Chain state is restored after every test that touches ``oracle_env``."""
    if "oracle_env" not in request.fixturenames:
        yield
        return
    env: Env = request.getfixturevalue("oracle_env")
    from zkml_oracle.testing import chain_snapshot

    with chain_snapshot(env.url):
        yield


@pytest.fixture
def env(oracle_env: Env) -> Env:
    """``oracle_env`` under the name its tests use (a module may define its own ``env``)."""
    return oracle_env


@pytest.fixture(scope="module")
def feed(
    anvil: LocalNode,
    built: BuildResult,
    proof: ProofResult,
    tmp_path_factory: pytest.TempPathFactory,
) -> Feed:
    """An oracle with the session's credit MLP registered, one ZkmlFeedAdapter per output and
    two verified rounds of different inputs (not yet submitted): once per module using it."""
    from tests.oracle_helpers import (
        DECIMALS,
        UNBOUND,
        Feed,
        deploy,
        deploy_build_verifier,
        model_config,
        model_id,
        outputs_of,
        proof_data,
        send,
        web3_of,
    )

    folder = tmp_path_factory.mktemp("feed")
    second_input = folder / "input.json"
    second_input.write_text(json.dumps({"input_data": [[0.8, -0.3, 1.2, -1.1]]}))
    second = prove(built.build_dir, second_input, folder / "proof.json")
    rounds = [proof_data(built, proof.proof_path), proof_data(built, second.proof_path)]
    web3 = web3_of(anvil.url)
    admin = web3.eth.accounts[0]
    oracle = deploy(web3, contracts.oracle(), admin, admin, False)
    config = model_config(built, deploy_build_verifier(web3, built, admin))
    send(web3, oracle.functions.registerModel(config), admin)
    model = model_id(config)
    feeds = [
        deploy(
            web3,
            contracts.feed_adapter(),
            admin,
            oracle.address,
            model,
            i,
            DECIMALS,
            f"out{i}",
            UNBOUND,
        )
        for i in range(config[6])
    ]
    outputs = [outputs_of(built, r.instances) for r in rounds]
    assert outputs[0] != outputs[1]
    return Feed(anvil.url, web3, admin, oracle, model, config[7], feeds, rounds, outputs)
