"""The attestation registry from Python: publish a test set's commitment, register an
evaluator for an oracle model, record an evaluation, read a model's card.

``ZkmlAttestations`` is deployed once per chain next to the oracle (recorded in the chain's
deployment record under ``attestations``); evaluators and test sets are recorded there too.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..apps.evaluation import METRIC_CODES, METRICS, Commitment, Evaluation, Evaluator
from ..exceptions import InputError
from ..types import Manifest
from .deploy import check_dev_srs, deploy_contract, deploy_verifier
from .deployments import DeploymentStore, EvaluatorEntry, RegistryEntry
from .node import Chain
from .oracle import Oracle, OracleRefused, model_record, oracle_address, proof_calldata

REGISTRY = "ZkmlAttestations"
EVALUATOR_CONFIG_TYPES = "(address,bytes32,bytes32,bytes32,bytes32,uint32,uint8,int64,bool)"


class Registry(Oracle):
    """A deployed ZkmlAttestations (transactions through Ape, reads through web3)."""

    label = "the attestation registry"

    def __init__(self, chain: Chain, address: str) -> None:
        from .contracts import contract

        self._bind(
            chain,
            address,
            contract(REGISTRY),
            "run `zkml-oracle attest` (it deploys one) or check --deployments",
        )


def _b32(hex_or_int: str | int) -> bytes:
    if isinstance(hex_or_int, int):
        return hex_or_int.to_bytes(32, "big")
    return bytes.fromhex(hex_or_int.removeprefix("0x").rjust(64, "0"))


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def registry(
    chain: Chain, account: Any, store: DeploymentStore, *, allow_dev_srs: bool = False
) -> Registry:
    """The chain's registry, deployed (over the recorded oracle) when there is none yet."""
    from .contracts import contract

    entry = store.load(chain).attestations
    if entry and chain.web3.eth.get_code(entry.address):
        return Registry(chain, entry.address)
    oracle = oracle_address(store, chain)
    address, tx, gas = deploy_contract(
        chain, account, contract(REGISTRY), oracle, account.address, allow_dev_srs
    )
    record = RegistryEntry(
        address=address, tx=tx, gas_used=gas, oracle=oracle, deployer=str(account.address)
    )
    store.update(chain, lambda r: setattr(r, "attestations", record))
    return Registry(chain, address)


def existing_registry(chain: Chain, store: DeploymentStore) -> Registry:
    entry = store.load(chain).attestations
    if not entry:
        raise InputError(
            f"no attestation registry recorded on {chain.describe()}: publish a test set or "
            "attest first (same chain options, same --deployments)"
        )
    return Registry(chain, entry.address)


# --- test sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedTestSet:
    test_set_id: str
    owner: str
    samples: int
    chunks: int
    published_at: int
    published_block: int
    gas_used: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def publish_testset(
    chain: Chain, account: Any, commitment: Commitment, store: DeploymentStore
) -> PublishedTestSet:
    """Publish a test set's commitment as its owner (``account``); a no-op when published."""
    reg = registry(chain, account, store)
    gas = None
    if not _published(reg, commitment.test_set_id):
        receipt = reg.send(
            "publishTestSet",
            [_b32(h) for h in commitment.chunk_hashes],
            commitment.samples,
            sender=account,
        )
        gas = int(receipt.gas_used)
    return _test_set(reg, commitment.test_set_id, gas)


def _published(reg: Registry, test_set_id: str) -> bool:
    try:
        reg.call("getTestSet", _b32(test_set_id))
    except OracleRefused:
        return False
    return True


def _test_set(reg: Registry, test_set_id: str, gas: int | None = None) -> PublishedTestSet:
    owner, samples, chunks, at, block = reg.call("getTestSet", _b32(test_set_id))
    return PublishedTestSet(test_set_id, owner, samples, chunks, at, block, gas)


# --- evaluators -------------------------------------------------------------------------------


def evaluator_config(evaluator: Evaluator, model: Manifest, verifier: str) -> tuple[Any, ...]:
    """IZkmlAttestations.EvaluatorConfig of an evaluator for the model built as ``model``."""
    spec = evaluator.spec
    if spec.model_sha256 != model.model_sha256:
        raise InputError(
            "the evaluator evaluates another model file than the one registered under this "
            "model id: build the evaluator from the same ONNX file"
        )
    return (
        verifier,
        bytes.fromhex(evaluator.manifest.artifact_digest),
        bytes.fromhex(model.model_sha256),
        bytes.fromhex(model.settings_sha256),
        bytes.fromhex(model.vk_sha256),
        spec.chunk,
        METRIC_CODES[spec.metric],
        spec.parameter_units,
        evaluator.manifest.dev_srs,
    )


def evaluator_id(model_id: str, config: tuple[Any, ...]) -> str:
    """keccak256(abi.encode(modelId, config)), as the registry computes it."""
    from eth_abi import encode  # type: ignore[attr-defined]
    from eth_utils.crypto import keccak

    return _hex(keccak(encode(["bytes32", EVALUATOR_CONFIG_TYPES], [_b32(model_id), config])))


def register_evaluator(
    chain: Chain,
    account: Any,
    evaluator_dir: Path,
    model_id: str,
    store: DeploymentStore,
    *,
    allow_dev_srs: bool = False,
) -> tuple[Registry, str, dict[str, int]]:
    """Deploy the evaluator's verifier and register it for ``model_id`` (each reused when
    present); returns the registry, the evaluator id and the gas spent."""
    evaluator = Evaluator.open(Path(evaluator_dir))
    check_dev_srs(evaluator.manifest, chain, allow_dev_srs)
    model = Manifest.load(Path(model_record(store, chain, model_id).build_dir))
    reg = registry(chain, account, store, allow_dev_srs=allow_dev_srs)
    verifier = deploy_verifier(
        chain, evaluator.build_dir, account, allow_dev_srs=allow_dev_srs, store=store
    )
    config = evaluator_config(evaluator, model, verifier.address)
    eid = evaluator_id(model_id, config)
    gas = {"verifier": verifier.gas_used, "register": 0}
    try:
        reg.call("getEvaluator", _b32(eid))
    except OracleRefused:
        receipt = reg.send("registerEvaluator", _b32(model_id), config, sender=account)
        gas["register"] = int(receipt.gas_used)
    entry = EvaluatorEntry(model_id=model_id, evaluator_dir=str(Path(evaluator_dir).resolve()))
    store.update(chain, lambda r: r.evaluators.__setitem__(eid, entry))
    return reg, eid, gas


# --- attesting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attestation:
    """IZkmlAttestations.Attestation, decoded."""

    model_id: str
    test_set_id: str
    evaluator_id: str
    metric: str
    parameter: float
    samples: int
    correct: int
    attested_at: int
    attested_block: int
    test_set_owner: str
    test_set_published_at: int
    committed_in_advance: bool

    @property
    def accuracy_bps(self) -> int:
        return self.correct * 10_000 // self.samples

    @classmethod
    def from_tuple(cls, t: Any) -> Attestation:
        return cls(
            model_id=_hex(t[0]),
            test_set_id=_hex(t[1]),
            evaluator_id=_hex(t[2]),
            metric=METRICS[int(t[3])],
            parameter=int(t[4]) / 1_000_000,
            samples=int(t[5]),
            correct=int(t[6]),
            attested_at=int(t[7]),
            attested_block=int(t[8]),
            test_set_owner=str(t[9]),
            test_set_published_at=int(t[10]),
            committed_in_advance=bool(t[11]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy_bps": self.accuracy_bps}


@dataclass(frozen=True)
class AttestResult:
    attestation: Attestation | None  # None while chunks are still missing
    evaluator_id: str
    registry: str
    chunk_gas: dict[int, int]  # gas of each chunk submitted now
    setup_gas: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "attestation": self.attestation.to_dict() if self.attestation else None,
            "evaluator_id": self.evaluator_id,
            "registry": self.registry,
            "chunk_gas": {str(k): v for k, v in self.chunk_gas.items()},
            "setup_gas": self.setup_gas,
        }


def attest(
    chain: Chain,
    account: Any,
    evaluation: Evaluation,
    model_id: str,
    store: DeploymentStore,
    *,
    allow_dev_srs: bool = False,
) -> AttestResult:
    """Record ``evaluation`` for ``model_id``: register its evaluator (once), then submit every
    chunk the registry has not verified yet. The test set must have been published."""
    reg, eid, setup_gas = register_evaluator(
        chain, account, evaluation.evaluator_dir, model_id, store, allow_dev_srs=allow_dev_srs
    )
    tsid = evaluation.commitment.test_set_id
    if not _published(reg, tsid):
        raise InputError(
            f"test set {tsid} is not published on {chain.describe()}: its owner publishes it "
            "with `zkml-oracle commit-testset ... --publish` (before the evaluation, so a "
            "reader can tell it was not picked afterwards)"
        )
    recorded = attestation_of(reg, model_id, tsid)
    if recorded is not None:
        return AttestResult(recorded, eid, reg.address, {}, setup_gas)
    done = int(reg.call("progress", _b32(eid), _b32(tsid))[0])
    gas: dict[int, int] = {}
    for chunk in evaluation.chunks:
        if done >> chunk.index & 1:
            continue
        proof, instances = proof_calldata(chunk.proof_path)
        receipt = reg.send(
            "submitChunk", _b32(eid), _b32(tsid), chunk.index, proof, instances, sender=account
        )
        gas[chunk.index] = int(receipt.gas_used)
    return AttestResult(attestation_of(reg, model_id, tsid), eid, reg.address, gas, setup_gas)


def attestation_of(reg: Registry, model_id: str, test_set_id: str) -> Attestation | None:
    try:
        return Attestation.from_tuple(reg.call("attestationOf", _b32(model_id), _b32(test_set_id)))
    except OracleRefused:
        return None


# --- the model card ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard:
    """Every attestation of a model, with what a reader needs to weigh each one."""

    model_id: str
    registry: str
    model_registered_at: int
    attestations: tuple[Attestation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "registry": self.registry,
            "model_registered_at": self.model_registered_at,
            "attestations": [a.to_dict() for a in self.attestations],
        }

    def render(self) -> str:
        lines = [
            f"model {self.model_id}",
            f"  registered on the oracle at {_when(self.model_registered_at)}",
        ]
        if not self.attestations:
            lines.append("  no attestations: its accuracy is unverified")
        for i, a in enumerate(self.attestations):
            param = f" {a.parameter:g}" if a.metric != "argmax" else ""
            origin = (
                "published before the model was registered"
                if a.committed_in_advance
                else "published after the model was registered (could have been picked for it)"
            )
            lines += [
                f"  [{i}] accuracy {a.accuracy_bps / 100:.2f}% ({a.correct}/{a.samples}, "
                f"metric {a.metric}{param})",
                f"      test set {a.test_set_id}",
                f"      owner {a.test_set_owner}, {origin}",
                f"      attested at block {a.attested_block} ({_when(a.attested_at)})",
            ]
        return "\n".join(lines)


def _when(ts: int) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds")


def card(chain: Chain, model_id: str, store: DeploymentStore) -> ModelCard:
    """Every attestation the registry holds for ``model_id``."""
    reg = existing_registry(chain, store)
    oracle = Oracle(chain, oracle_address(store, chain))
    try:
        registered_at = int(oracle.call("getModel", _b32(model_id))[2])
    except OracleRefused:
        raise InputError(f"no model {model_id} on the oracle at {oracle.address}") from None
    count = int(reg.call("attestationCount", _b32(model_id)))
    items = tuple(
        Attestation.from_tuple(reg.call("getAttestation", _b32(model_id), i)) for i in range(count)
    )
    return ModelCard(model_id, reg.address, registered_at, items)
