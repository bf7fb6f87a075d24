"""Deployment records: what this toolkit deployed where.

One JSON file per chain, ``<root>/<chain id>/<genesis hash>.json``: a fresh local chain has a
new genesis hash, so it never picks up a stale address. Updates hold a lock and replace the
file atomically; a record is written only after its transaction was mined.

The file is read into :class:`ChainRecord` (pydantic), checked as it is read, and written
back in the same JSON form. Fields a newer toolkit wrote are kept (``extra="allow"``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from .._fs import atomic_write_json, file_lock
from ..exceptions import ArtifactError
from ..settings import settings
from .node import Chain


def default_root() -> Path:
    """``$ZKML_DEPLOYMENTS``, else ``./deployments``."""
    return settings().deployments


class Entry(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContractEntry(Entry):
    """A contract this toolkit deployed (``tx`` None: it was found deployed already)."""

    address: str
    tx: str | None = None
    gas_used: int = 0
    deployer: str | None = None


class VerifierEntry(ContractEntry):
    """A circuit's verifier, under the circuit's key (:func:`.deploy.record_key`)."""

    chain_id: int
    genesis_hash: str
    artifact_digest: str
    kind: str
    runtime_size: int
    vka_digest: str | None = None
    register_tx: str | None = None
    register_gas: int | None = None
    model_sha256: str
    vk_sha256: str
    dev_srs: bool
    deployed_at: str


class OracleEntry(ContractEntry):
    allow_dev_srs: bool = False


class RegistryEntry(ContractEntry):
    """The attestation registry, over the recorded oracle."""

    oracle: str


class InputEntry(Entry):
    name: str
    size: int
    scale: int


class ModelEntry(Entry):
    """A model registered on the recorded oracle, and the build directory it came from."""

    model_id: str
    build_dir: str
    artifact_digest: str
    verifier: str
    visibility: dict[str, str]
    inputs: list[InputEntry]
    output_scale: int
    output_sizes: list[int]


class FeedEntry(Entry):
    """A feed adapter of one model output (under its address)."""

    feed: str
    tx: str | None = None
    gas_used: int = 0
    model_id: str
    output: int
    decimals: int
    description: str


class EvaluatorEntry(Entry):
    model_id: str
    evaluator_dir: str


class ChainRecord(Entry):
    """One chain's deployment record."""

    chain_id: int
    genesis_hash: str
    #: By circuit key (artifact digest, ``/reusable`` for a reusable verifier).
    verifiers: dict[str, VerifierEntry] = Field(default_factory=dict)
    #: Shared reusable verifiers, by the keccak256 of their runtime code.
    reusable_verifiers: dict[str, ContractEntry] = Field(default_factory=dict)
    oracle: OracleEntry | None = None
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    feeds: dict[str, FeedEntry] = Field(default_factory=dict)
    attestations: RegistryEntry | None = None
    evaluators: dict[str, EvaluatorEntry] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _as_before(self, handler: Any) -> dict[str, Any]:
        # The file holds the sections something was recorded in (and the verifier maps).
        d: dict[str, Any] = handler(self)
        keep = {"chain_id", "genesis_hash", "verifiers", "reusable_verifiers"}
        return {k: v for k, v in d.items() if k in keep or v not in (None, {})}


class DeploymentStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def path(self, chain: Chain) -> Path:
        return self.root / str(chain.chain_id) / f"{chain.genesis_hash}.json"

    def load(self, chain: Chain) -> ChainRecord:
        path = self.path(chain)
        if not path.is_file():
            return ChainRecord(chain_id=chain.chain_id, genesis_hash=chain.genesis_hash)
        try:
            return ChainRecord.model_validate(json.loads(path.read_text()))
        except ValueError as e:  # not JSON, or not a record (ValidationError)
            detail = str(e).splitlines()[0]
            if isinstance(e, ValidationError):
                first = e.errors()[0]
                detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            raise ArtifactError(f"{path} is corrupt ({detail}): restore it from backup") from None

    def update(self, chain: Chain, change: Callable[[ChainRecord], None]) -> ChainRecord:
        """Read, change and atomically rewrite the chain's record under a lock."""
        with file_lock(self.path(chain).parent / ".lock"):
            record = self.load(chain)
            change(record)
            atomic_write_json(self.path(chain), record.model_dump(mode="json"))
            return record
