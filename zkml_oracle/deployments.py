"""Deployment records: what this toolkit deployed where.

One JSON file per chain, ``<root>/<chain id>/<genesis hash>.json``: a fresh local chain has a
new genesis hash, so it never picks up a stale address. Updates hold a lock and replace the
file atomically; a record is written only after its transaction was mined.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._fs import atomic_write_json, file_lock
from .chain import Chain
from .exceptions import ArtifactError

DEFAULT_ROOT = Path("deployments")


def default_root() -> Path:
    env = os.environ.get("ZKML_ORACLE_DEPLOYMENTS")
    return Path(env) if env else DEFAULT_ROOT


class DeploymentStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def path(self, chain: Chain) -> Path:
        return self.root / str(chain.chain_id) / f"{chain.genesis_hash}.json"

    def load(self, chain: Chain) -> dict[str, Any]:
        path = self.path(chain)
        if not path.is_file():
            return self._empty(chain)
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except ValueError as e:
            raise ArtifactError(f"{path} is corrupt ({e}): restore it from backup") from None
        return record

    def update(self, chain: Chain, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read, change and atomically rewrite the chain's record under a lock."""
        with file_lock(self.path(chain).parent / ".lock"):
            record = self.load(chain)
            change(record)
            atomic_write_json(self.path(chain), record)
            return record

    @staticmethod
    def _empty(chain: Chain) -> dict[str, Any]:
        return {
            "chain_id": chain.chain_id,
            "genesis_hash": chain.genesis_hash,
            "verifiers": {},
            "reusable_verifiers": {},
        }
