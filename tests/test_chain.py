"""Deploying verifiers and verifying on a real Anvil (zkml_oracle.chain, .deploy, .deployments)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, snapshot, write_json
from zkml_oracle import field
from zkml_oracle.chain import (
    ChainError,
    ChainOptions,
    LocalNode,
    connect,
    free_port,
    local_chain_url,
    rpc,
    sender,
)
from zkml_oracle.chain.deploy import DevSrsError, deploy_verifier, verify_onchain
from zkml_oracle.chain.deployments import DeploymentStore
from zkml_oracle.exceptions import InputError
from zkml_oracle.types import BuildResult, ProofResult

# Anvil's well-known dev key #0: public, only ever used against local chains.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _deployed(anvil: LocalNode, result: BuildResult, store: DeploymentStore):  # type: ignore[no-untyped-def]
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        return deploy_verifier(chain, result.build_dir, sender(chain, None), store=store)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DeploymentStore:
    return DeploymentStore(tmp_path_factory.mktemp("deployments"))


def test_deploy_records_the_verifier(
    anvil: LocalNode, built: BuildResult, store: DeploymentStore
) -> None:
    first = _deployed(anvil, built, store)
    assert first.kind == "standalone" and not first.reused
    # One advice column per region (BuildOptions.columns): ~2.3 M; ezkl's two: 2.95 M.
    assert 1_800_000 < first.gas_used < 2_700_000
    assert first.deployer == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    code = rpc(anvil.url, "eth_getCode", [first.address, "latest"])
    assert (len(code) - 2) // 2 == built.manifest.verifier.runtime_size  # type: ignore[union-attr]
    genesis = rpc(anvil.url, "eth_getBlockByNumber", ["0x0", False])["hash"]
    record = json.loads((store.root / "31337" / f"{genesis}.json").read_text())
    entry = record["verifiers"][built.manifest.artifact_digest]
    assert entry["address"] == first.address and entry["dev_srs"] is True
    again = _deployed(anvil, built, store)
    assert again.reused and again.address == first.address


def test_a_genuine_proof_verifies_onchain(
    anvil: LocalNode, built: BuildResult, proof: ProofResult, store: DeploymentStore
) -> None:
    _deployed(anvil, built, store)
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        result = verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
    assert result.valid and result.reason is None
    # One advice column per region: 2,308 bytes and ≈ 416 k gas (ezkl's two: 3,428 and 547 k).
    assert result.calldata_bytes == 2_308
    assert result.gas is not None and 350_000 < result.gas < 500_000


@pytest.mark.parametrize("edit", ["bytes", "output", "input"])
def test_a_tampered_proof_is_refused_onchain(
    anvil: LocalNode,
    built: BuildResult,
    proof: ProofResult,
    store: DeploymentStore,
    tmp_path: Path,
    edit: str,
) -> None:
    from tests.conftest import tampered

    _deployed(anvil, built, store)
    bad = tampered(proof.proof_path, tmp_path / "bad.json", edit)
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        result = verify_onchain(chain, built.build_dir, bad, store=store)
    assert not result.valid and result.gas is None and result.reason


def test_a_proof_of_another_circuit_is_refused_onchain(
    anvil: LocalNode, built: BuildResult, other_proof: ProofResult, store: DeploymentStore
) -> None:
    _deployed(anvil, built, store)
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        result = verify_onchain(chain, built.build_dir, other_proof.proof_path, store=store)
    assert not result.valid


def test_the_reusable_verifier_path(
    anvil: LocalNode,
    reusable_built: BuildResult,
    example: dict[str, Path],
    store: DeploymentStore,
    tmp_path: Path,
) -> None:
    from tests.conftest import tampered
    from zkml_oracle.prover import prove

    deployed = _deployed(anvil, reusable_built, store)
    assert deployed.kind == "reusable" and deployed.vka_digest
    assert deployed.register_gas is not None and 100_000 < deployed.register_gas < 400_000
    proof = prove(reusable_built.build_dir, example["input"], tmp_path / "p.json")
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        good = verify_onchain(chain, reusable_built.build_dir, proof.proof_path, store=store)
        bad = verify_onchain(
            chain,
            reusable_built.build_dir,
            tampered(proof.proof_path, tmp_path / "b.json", "output"),
            store=store,
        )
    # The proof with the key artifact: 6,372 bytes (the standalone verifier's: 2,308).
    assert good.valid and good.gas is not None and good.calldata_bytes > 5_000
    assert not bad.valid


def test_dev_srs_never_reaches_a_non_dev_chain_by_accident(
    remote_anvil: LocalNode, built: BuildResult, tmp_path: Path
) -> None:
    store = DeploymentStore(tmp_path / "deployments")
    with connect(ChainOptions(rpc_url=remote_anvil.url)) as chain:
        assert chain.chain_id == 11155111 and not chain.is_local_dev
        with pytest.raises(InputError, match="not a local dev chain: pass --account"):
            sender(chain, None)
        with pytest.raises(DevSrsError, match="dev SRS .* --allow-dev-srs"):
            deploy_verifier(chain, built.build_dir, object(), store=store)
    assert not (tmp_path / "deployments").exists()


def test_the_remote_path_with_an_ape_account_and_the_override(
    remote_anvil: LocalNode, built: BuildResult, tmp_path: Path
) -> None:
    from ape_accounts import import_account_from_private_key

    alias = "zkml-remote"
    import_account_from_private_key(alias, "test-passphrase", DEV_KEY)
    env = {f"APE_ACCOUNTS_{alias}_PASSPHRASE": "test-passphrase"}
    args = ["--rpc-url", remote_anvil.url, "--deployments", tmp_path / "d", "--json"]
    refused = run_cli("deploy", built.build_dir, *args, "--account", alias, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "dev SRS" in json.loads(refused.stdout)["error"]
    proc = run_cli("deploy", built.build_dir, *args, "--account", alias, "--allow-dev-srs", env=env)
    assert proc.returncode == 0, proc.stderr
    deployed = json.loads(proc.stdout)
    assert deployed["chain_id"] == 11155111
    assert DEV_KEY[2:] not in proc.stdout + proc.stderr
    assert DEV_KEY[2:] not in "".join(p.read_text() for p in (tmp_path / "d").rglob("*.json"))


def test_unreachable_rpc_is_one_clear_line(built: BuildResult, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_cli("deploy", built.build_dir, "--rpc-url", url, "--deployments", tmp_path / "d")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[0]]
        and f"cannot reach {url}" in proc.stderr
    )
    assert not (tmp_path / "d").exists()


def test_wrong_chain_and_unknown_account_are_refused(
    anvil: LocalNode, built: BuildResult, tmp_path: Path
) -> None:
    wrong = ChainOptions(rpc_url=anvil.url, expect_chain_id=1)
    with pytest.raises(ChainError, match="wrong chain: .* is chain 31337, not 1"), connect(wrong):
        pass
    proc = run_cli(
        "deploy",
        built.build_dir,
        "--rpc-url",
        anvil.url,
        "--account",
        "nobody",
        "--deployments",
        tmp_path / "d",
    )
    assert proc.returncode == 2 and "no Ape account named 'nobody'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_insufficient_funds_leave_no_record(
    anvil: LocalNode, built: BuildResult, tmp_path: Path
) -> None:
    from ape_accounts import import_account_from_private_key
    from eth_account import Account

    alias = "zkml-empty"
    import_account_from_private_key(alias, "pw", Account.create().key.to_0x_hex())
    store = DeploymentStore(tmp_path / "d")
    os.environ[f"APE_ACCOUNTS_{alias}_PASSPHRASE"] = "pw"
    try:
        with connect(ChainOptions(rpc_url=anvil.url)) as chain:
            poor = sender(chain, alias)
            with pytest.raises(
                ChainError, match=r"holds 0\.000000 ETH but deploying Halo2Verifier needs"
            ):
                deploy_verifier(chain, built.build_dir, poor, store=store)
    finally:
        del os.environ[f"APE_ACCOUNTS_{alias}_PASSPHRASE"]
    assert not store.path(chain).exists()


def test_a_verifier_missing_onchain_is_named(
    built: BuildResult, proof: ProofResult, tmp_path: Path
) -> None:
    node = LocalNode.start()
    try:
        store = DeploymentStore(tmp_path / "d")
        deployed = _deployed(node, built, store)
        before = snapshot(store.root)
        rpc(node.url, "anvil_setCode", [deployed.address, "0x"])
        with (
            connect(ChainOptions(rpc_url=node.url)) as chain,
            pytest.raises(ChainError, match="has no code .* deploy it again"),
        ):
            verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
        assert snapshot(store.root) == before
    finally:
        node.stop()


def test_cli_deploy_and_verify_on_the_managed_local_chain(
    built: BuildResult, proof: ProofResult, tmp_path: Path
) -> None:
    """No network given: each command starts the toolkit's Anvil, keeps its state, stops it."""
    deployed = run_cli("deploy", built.build_dir, "--json", cwd=tmp_path)
    assert deployed.returncode == 0, deployed.stderr
    first = json.loads(deployed.stdout)
    checked = run_cli(
        "verify", built.build_dir, proof.proof_path, "--onchain", "--json", cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    result = json.loads(checked.stdout)
    assert result["valid"] and result["verifier"] == first["verifier"] and result["gas"] > 400_000
    again = json.loads(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path).stdout)
    assert again["reused"]["verifier"] and again["genesis_hash"] == first["genesis_hash"]
    bad = _tampered_file(proof, tmp_path)
    refused = run_cli("verify", built.build_dir, bad, "--onchain", cwd=tmp_path)
    assert refused.returncode == 1 and "INVALID" in refused.stdout
    anvils = subprocess.run(["pgrep", "-f", f"anvil.*{tmp_path}"], capture_output=True, text=True)
    assert anvils.stdout == "", "the toolkit stopped the Anvil it started"


def _tampered_file(proof: ProofResult, tmp_path: Path) -> Path:
    p = json.loads(proof.proof_path.read_text())
    out = field.felt_from_ezkl_hex(p["instances"][0][-1])
    p["instances"][0][-1] = field.felt_to_ezkl_hex(out + 1)
    return write_json(tmp_path / "tampered.json", p)


def _block(url: str, tag: str = "latest") -> tuple[int, int, str]:
    b = rpc(url, "eth_getBlockByNumber", [tag, False])
    return int(b["number"], 16), int(b["timestamp"], 16), b["hash"]


def test_the_local_chain_keeps_its_state_and_its_time_moves_forward(tmp_path: Path) -> None:
    """Two commands on the toolkit's own chain: the second sees the first's blocks, and the
    wall-clock seconds between them passed on chain too (Anvil alone resumes at the last
    block's time, so rounds stayed "too soon" and deadlines never came)."""
    state = tmp_path / ".zkml-oracle"
    with local_chain_url(state) as url:
        rpc(url, "evm_mine", [])
        number, mined_at, _ = _block(url)
        genesis = _block(url, "0x0")[2]
    time.sleep(6)
    with local_chain_url(state) as url:
        assert _block(url, "0x0")[2] == genesis and _block(url)[0] == number
        rpc(url, "evm_mine", [])
        # Resuming at the last block's time gives mined_at + 1; the wall clock gives about
        # mined_at + 6 (a block may be a second ahead of it, a loaded start a second behind).
        assert _block(url)[1] >= mined_at + 3
    # Chain time ahead of the wall clock (evm_increaseTime) is kept, never rewound.
    with local_chain_url(state) as url:
        rpc(url, "evm_increaseTime", [3600])
        rpc(url, "evm_mine", [])
        ahead = _block(url)[1]
    with local_chain_url(state) as url:
        rpc(url, "evm_mine", [])
        assert _block(url)[1] > ahead


def test_zkml_oracle_node_is_reused_and_stops_on_sigterm(
    built: BuildResult, tmp_path: Path
) -> None:
    # A command before the node: the node serves the same chain, and saves it on exit.
    with local_chain_url(tmp_path / ".zkml-oracle") as url:
        rpc(url, "evm_mine", [])
        before = _block(url)
    port = free_port()
    exe = Path(sys.executable).parent / "zkml-oracle"
    node = subprocess.Popen(
        [exe, "node", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / ".zkml-oracle" / "node.json").exists():
            assert time.monotonic() < deadline and node.poll() is None
            time.sleep(0.1)
        genesis = rpc(url, "eth_getBlockByNumber", ["0x0", False])["hash"]
        assert _block(url, hex(before[0]))[2] == before[2]  # the earlier command's chain
        deployed = json.loads(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path).stdout)
        assert deployed["genesis_hash"] == genesis
        head = _block(url)
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=20) == 0
    assert not (tmp_path / ".zkml-oracle" / "node.json").exists()
    with pytest.raises(OSError):
        rpc(url, "eth_chainId", timeout=1)
    with local_chain_url(tmp_path / ".zkml-oracle") as after:
        assert _block(after, hex(head[0]))[2] == head[2]  # the node's blocks, for what follows


def test_ape_run_deploy_shares_the_code(
    anvil: LocalNode, built: BuildResult, tmp_path: Path
) -> None:
    ape = Path(sys.executable).parent / "ape"
    proc = subprocess.run(
        [ape, "run", "deploy", str(built.build_dir), "--network", anvil.url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ZKML_ORACLE_DEPLOYMENTS": str(tmp_path / "d")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout[proc.stdout.index("{") : proc.stdout.rindex("}") + 1]
    deployed = json.loads(out)
    assert deployed["kind"] == "standalone" and deployed["chain_id"] == 31337
    assert list((tmp_path / "d" / "31337").glob("0x*.json"))


def test_endpoints_are_redacted_in_messages() -> None:
    from zkml_oracle.chain import redact

    assert redact("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact("https://eth-sepolia.example/v2/SECRETKEY") == "https://eth-sepolia.example/…"
    assert redact("https://user:pw@rpc.example:443/?apikey=SECRET") == "https://rpc.example:443/…"
    assert redact("ethereum:sepolia:node") == "ethereum:sepolia:node"
    with (
        pytest.raises(ChainError) as info,
        connect(ChainOptions(rpc_url=f"http://127.0.0.1:{free_port()}/v2/SECRETKEY")),
    ):
        pass
    assert "SECRETKEY" not in str(info.value)


def test_a_round_after_evm_increase_time_is_checked_against_the_next_block(
    anvil: LocalNode, built: BuildResult, proof: ProofResult, tmp_path: Path
) -> None:
    """On a plain Anvil, a second `submit` after evm_increaseTime goes through: the gas
    estimate runs against the block the transaction lands in, not the latest (whose timestamp
    is the first round's, so it answered ZkmlOracleRoundTooSoon until a block was mined)."""
    from zkml_oracle.chain.oracle import Oracle, deploy_and_register, proof_calldata

    store = DeploymentStore(tmp_path / "d")
    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        account = sender(chain, None)
        deployed = deploy_and_register(chain, built.build_dir, account, store=store)
        oracle = Oracle(chain, deployed.oracle)
        data, instances = proof_calldata(proof.proof_path)
        args = (deployed.model_id, data, instances)
        oracle.send("submitResult", *args, sender=account)
        rpc(anvil.url, "evm_increaseTime", [60])
        oracle.send("submitResult", *args, sender=account)
        latest = oracle.latest_result(deployed.model_id)
        assert latest is not None and latest.round == 2


def test_custom_errors_read_as_hex_and_enum_names_with_the_fix() -> None:
    from eth_abi import encode  # type: ignore[attr-defined]
    from eth_utils.crypto import keccak

    from zkml_oracle.chain.contracts import error_decoder
    from zkml_oracle.chain.reverts import ContractError

    decoder = error_decoder()
    selector = keccak(b"ZkmlOracleRequestNotPending(uint256,uint8)")[:4]
    error = decoder.describe(selector + encode(["uint256", "uint8"], [7, 3]))
    assert isinstance(error, ContractError) and error.values == (7, 3)
    assert str(error).startswith("ZkmlOracleRequestNotPending(requestId=7, status=Cancelled): ")
    selector = keccak(b"ZkmlOracleInvalidProof(bytes32)")[:4]
    error = decoder.describe(selector + b"\xab" * 32)
    assert error.signature == f"ZkmlOracleInvalidProof(modelId=0x{'ab' * 32})"
    assert error.fix and "prove again" in error.fix
