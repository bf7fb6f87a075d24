"""Deploy a circuit's verifier through Ape, and check proofs with it on-chain.

The CLI (``zkml-oracle deploy``) and the Ape script (``ape run deploy``) both call
:func:`deploy_verifier`; only how they connect and pick the signer differs.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .. import _ezkl
from .._fs import temp_path_beside
from ..circuit.verifier import CompiledContract, read_vka
from ..exceptions import DevSrsError as DevSrsError  # defined there, importable here too
from ..exceptions import InputError
from ..prover import checked_manifest, read_proof
from ..types import Manifest
from .deployments import ContractEntry, DeploymentStore, VerifierEntry
from .node import Chain, ChainError


class VerifierDeployment(BaseModel):
    """A verifier deployed (or found deployed: ``reused``) for a build."""

    model_config = ConfigDict(frozen=True)

    chain_id: int
    genesis_hash: str
    artifact_digest: str
    kind: str
    address: str
    tx: str | None
    gas_used: int
    deployer: str | None
    runtime_size: int
    reused: bool
    vka_digest: str | None = None
    register_tx: str | None = None
    register_gas: int | None = None

    @classmethod
    def from_record(cls, record: VerifierEntry, *, reused: bool) -> VerifierDeployment:
        return cls.model_validate({**record.model_dump(), "reused": reused})


@dataclass(frozen=True)
class OnchainVerification:
    valid: bool
    reason: str | None
    gas: int | None
    calldata_bytes: int
    verifier: str
    chain_id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_dev_srs(manifest: Manifest, chain: Chain, allow_dev_srs: bool) -> None:
    """Protocol guarantee 7: a dev SRS reaches a non-dev chain only when asked explicitly."""
    if manifest.dev_srs and not chain.is_local_dev and not allow_dev_srs:
        raise DevSrsError(
            f"this circuit was built with a dev SRS (test-only: its proofs can be forged) and "
            f"{chain.describe()} is not a local dev chain: rebuild with --srs CEREMONY_FILE, or "
            "pass --allow-dev-srs for a test network where forgeable proofs are acceptable"
        )


def _keccak(data: bytes) -> str:
    from eth_utils.crypto import keccak

    return "0x" + keccak(data).hex()


def _has_code(chain: Chain, address: str) -> bool:
    return len(chain.web3.eth.get_code(address)) > 0


def _ensure_funds(chain: Chain, account: Any, tx: dict[str, Any], what: str) -> None:
    web3 = chain.web3
    try:
        gas = web3.eth.estimate_gas({"from": account.address, **tx})
    except Exception as e:
        raise ChainError(f"{what} would fail on {chain.describe()}: {e}") from None
    need = gas * web3.eth.gas_price
    balance = web3.eth.get_balance(account.address)
    if balance < need:
        raise ChainError(
            f"account {account.address} holds {balance / 1e18:.6f} ETH but {what} needs about "
            f"{need / 1e18:.6f} ETH on {chain.describe()}: fund it or use another --account"
        )


def deploy_contract(
    chain: Chain, account: Any, contract: CompiledContract, *args: Any
) -> tuple[str, str, int]:
    """Deploy through Ape with constructor ``args``; returns (address, tx hash, gas used)."""
    from ape.contracts import ContractContainer
    from ape.exceptions import ApeException
    from ethpm_types import ContractType

    factory = chain.web3.eth.contract(abi=contract.abi, bytecode=contract.bytecode)
    creation = factory.constructor(*args).data_in_transaction
    _ensure_funds(chain, account, {"data": creation}, f"deploying {contract.name}")
    contract_type = ContractType.model_validate(
        {
            "contractName": contract.name,
            "abi": contract.abi,
            "deploymentBytecode": {"bytecode": "0x" + contract.bytecode.hex()},
            "runtimeBytecode": {"bytecode": "0x" + contract.runtime.hex()},
        }
    )
    try:
        instance = account.deploy(ContractContainer(contract_type), *args)
    except ApeException as e:
        raise ChainError(f"deploying {contract.name} failed: {e}") from None
    tx = instance.creation_metadata.txn_hash
    receipt = chain.provider.get_receipt(tx)
    return str(instance.address), str(tx), int(receipt.gas_used)


def _register_vka(
    chain: Chain, account: Any, verifier: str, contract: CompiledContract, words: list[bytes]
) -> tuple[str, int]:
    from ape.contracts import ContractInstance
    from ape.exceptions import ApeException
    from ethpm_types import ContractType

    contract_type = ContractType.model_validate(
        {"contractName": contract.name, "abi": contract.abi}
    )
    instance = ContractInstance(verifier, contract_type)
    try:
        receipt = instance.registerVka(words, sender=account)
    except ApeException as e:
        raise ChainError(f"registering the key artifact on {verifier} failed: {e}") from None
    return str(receipt.txn_hash), int(receipt.gas_used)


def deploy_verifier(
    chain: Chain,
    build_dir: Path,
    account: Any,
    *,
    allow_dev_srs: bool = False,
    store: DeploymentStore | None = None,
    manifest: Manifest | None = None,
) -> VerifierDeployment:
    """Deploy (or find already deployed) the verifier of the circuit in ``build_dir``
    (``manifest``: its manifest, as :func:`~zkml_oracle.prover.checked_manifest` read it)."""
    manifest = manifest or checked_manifest(Path(build_dir))
    check_dev_srs(manifest, chain, allow_dev_srs)
    return _deploy_verifier(chain, Path(build_dir), manifest, account, store or DeploymentStore())


def _deploy_verifier(
    chain: Chain, build_dir: Path, manifest: Manifest, account: Any, store: DeploymentStore
) -> VerifierDeployment:
    info = manifest.verifier
    if info is None:
        raise InputError(f"{build_dir} has no verifier: rebuild with this version of zkml-oracle")
    digest = manifest.artifact_digest
    existing = store.load(chain).verifiers.get(record_key(manifest))
    if existing and _has_code(chain, existing.address):
        return VerifierDeployment.from_record(existing, reused=True)
    warning = info.size_warning()
    if warning:
        raise ChainError(warning)
    contract = CompiledContract.load(manifest.artifact("verifier", build_dir))
    deployer = str(account.address)
    extra: dict[str, Any] = {}
    if info.kind == "standalone":
        address, tx, gas = deploy_contract(chain, account, contract)
    else:
        code_hash = _keccak(contract.runtime)
        shared = store.load(chain).reusable_verifiers.get(code_hash)
        if shared and _has_code(chain, shared.address):
            address, tx, gas = shared.address, None, 0
        else:
            address, tx, gas = deploy_contract(chain, account, contract)
            entry = ContractEntry(address=address, tx=tx, gas_used=gas, deployer=deployer)
            store.update(chain, lambda r: r.reusable_verifiers.__setitem__(code_hash, entry))
        words = read_vka(manifest.artifact("vka", build_dir))
        register_tx, register_gas = _register_vka(chain, account, address, contract, words)
        extra = {
            "vka_digest": _keccak(b"".join(words)),
            "register_tx": register_tx,
            "register_gas": register_gas,
        }
    deployment = VerifierDeployment(
        chain_id=chain.chain_id,
        genesis_hash=chain.genesis_hash,
        artifact_digest=digest,
        kind=info.kind,
        address=address,
        tx=tx,
        gas_used=gas,
        deployer=deployer,
        runtime_size=info.runtime_size,
        reused=False,
        **extra,
    )
    record = VerifierEntry(
        **deployment.model_dump(exclude={"reused"}),
        model_sha256=manifest.model_sha256,
        vk_sha256=manifest.vk_sha256,
        dev_srs=manifest.dev_srs,
        deployed_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    store.update(chain, lambda r: r.verifiers.__setitem__(record_key(manifest), record))
    return deployment


def record_key(manifest: Manifest) -> str:
    """A verifier's key in the deployment record: its circuit's artifact digest, and its kind
    when not standalone (builds reproduce, so a reusable and a standalone build of one model
    share the digest but not the verifier)."""
    kind = manifest.verifier.kind if manifest.verifier else "standalone"
    digest = manifest.artifact_digest
    return digest if kind == "standalone" else f"{digest}/{kind}"


def recorded_verifier(chain: Chain, manifest: Manifest, store: DeploymentStore) -> VerifierEntry:
    record = store.load(chain).verifiers.get(record_key(manifest))
    if record is None:
        raise ChainError(
            f"no verifier for this circuit is recorded on {chain.describe()}: run "
            "`zkml-oracle deploy DIR` with the same chain options first"
        )
    if not _has_code(chain, record.address):
        raise ChainError(
            f"the verifier recorded at {record.address} has no code on {chain.describe()} "
            "(was the chain reset?): deploy it again with `zkml-oracle deploy DIR`"
        )
    return record


def recorded_model_id(chain: Chain, manifest: Manifest, store: DeploymentStore) -> str:
    """The model id (lower-case hex) a build has on this chain: its config with the verifier
    recorded for it. The one place a build's model id is derived from the chain record."""
    from ..calldata import ModelConfig

    verifier = recorded_verifier(chain, manifest, store).address
    return ModelConfig.from_manifest(manifest, verifier).model_id.lower()


def calldata(manifest: Manifest, build_dir: Path, proof_path: Path) -> bytes:
    """The verifyProof calldata ezkl encodes for this proof (with the VKA when reusable)."""
    import ezkl

    vka = None
    if manifest.verifier and manifest.verifier.kind == "reusable":
        vka = str(manifest.artifact("vka", build_dir))
    with temp_path_beside(Path(proof_path), ".calldata") as out:
        data = _ezkl.call(
            ezkl.encode_evm_calldata,
            str(proof_path),
            str(out),
            vka_path=vka,
            error=lambda m: InputError(
                f"cannot encode {proof_path} as calldata ({m}): pass a "
                "proof.json from `zkml-oracle prove`"
            ),
        )
    return bytes(data)


def verify_onchain(
    chain: Chain, build_dir: Path, proof_path: Path, *, store: DeploymentStore | None = None
) -> OnchainVerification:
    """Ask the deployed verifier about a proof (eth_call), and what a transaction would cost."""
    from web3.exceptions import ContractLogicError, Web3RPCError

    build_dir = Path(build_dir)
    manifest = checked_manifest(build_dir)
    read_proof(Path(proof_path))
    record = recorded_verifier(chain, manifest, store or DeploymentStore())
    data = calldata(manifest, build_dir, Path(proof_path))
    tx = {"to": record.address, "data": "0x" + data.hex()}
    try:
        result = bytes(chain.web3.eth.call(tx))
    except (ContractLogicError, Web3RPCError) as e:
        return OnchainVerification(
            False, f"the verifier reverted: {e}", None, len(data), record.address, chain.chain_id
        )
    valid = len(result) >= 32 and int.from_bytes(result[:32], "big") == 1
    gas = int(chain.web3.eth.estimate_gas(tx)) if valid else None
    reason = None if valid else "the verifier returned false"
    return OnchainVerification(valid, reason, gas, len(data), record.address, chain.chain_id)
