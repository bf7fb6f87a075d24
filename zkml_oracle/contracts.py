"""The project's hand-written contracts (``contracts/``), compiled through Ape, as typed artifacts.

Compilation runs Ape in-process (``ape.managers.project.LocalProject.load_contracts``, with the
ape-solidity plugin and the solc that :func:`zkml_oracle.toolchain.ensure_solc` registers), so
it is the same build as ``ape compile``: ``ape-config.yaml`` pins solc 0.8.20, the optimizer,
and OpenZeppelin Contracts as a *local* Ape dependency on ``node_modules/@openzeppelin/contracts``
(nothing is downloaded). Ape caches in ``.build/`` and ``contracts/.cache/`` of the checkout,
and keeps its copy of the dependency under ``APE_DATA_FOLDER`` (default ``~/.ape``); within a
process the artifacts are compiled once (:func:`load_contracts` is cached).

Generated verifiers are not here: each circuit's build directory holds its own
(``verifier/Verifier.json``, see :mod:`zkml_oracle.verifier`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .exceptions import ToolchainError, ZkmlOracleError
from .reverts import ContractError, describe
from .verifier import CompiledContract

#: The checkout this package is installed from (editable installs): it holds ``contracts/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The contracts the toolkit deploys itself.
ORACLE = "ZkmlOracle"
FEED_ADAPTER = "ZkmlFeedAdapter"

#: Sources built on OpenZeppelin 5.4's Governor (``pragma ^0.8.24``), compiled apart with
#: this solc (npm alias ``solc-0.8.24``) through the same WebAssembly front; Ape skips them
#: (``compile: exclude`` in ape-config.yaml).
GOVERNOR_SOURCES = Path("contracts") / "governance" / "governor"
GOVERNOR_SOLC = "0.8.24"


class ContractsError(ZkmlOracleError):
    """The project's contracts cannot be found or do not compile."""


def _root(root: Path | None) -> Path:
    root = Path(root or PROJECT_ROOT).resolve()
    if not (root / "ape-config.yaml").is_file() or not (root / "contracts").is_dir():
        raise ContractsError(
            f"{root} holds no ape-config.yaml and contracts/: run from a zkml-oracle checkout "
            "(the contracts are not part of the installed package)"
        )
    oz = root / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    if not oz.is_file():
        raise ToolchainError(
            f"OpenZeppelin Contracts are missing ({oz}): run `make setup` in the checkout "
            "(it runs `npm install`)"
        )
    return root


def _bytes(code: Any) -> bytes:
    text = str(getattr(code, "bytecode", None) or "")
    if "__" in text:
        raise ContractsError(f"unlinked library placeholder in bytecode ({text[:20]}…)")
    return bytes.fromhex(text.removeprefix("0x"))


def _artifact(contract_type: Any) -> CompiledContract:
    abi = [entry.model_dump(mode="json", by_alias=True) for entry in contract_type.abi]
    return CompiledContract(
        name=str(contract_type.name),
        abi=abi,
        bytecode=_bytes(contract_type.deployment_bytecode),
        runtime=_bytes(contract_type.runtime_bytecode),
    )


@functools.cache
def _compile(root: Path) -> dict[str, CompiledContract]:
    from ape.exceptions import ApeException
    from ape.managers.project import LocalProject

    from .toolchain import ensure_solc

    ensure_solc()  # py-solc-x (and so ape-solidity) would otherwise try to download solc
    try:
        project = LocalProject(root)
        containers = project.load_contracts()
    except ApeException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ContractsError(f"compiling {root / 'contracts'} failed: {first}") from None
    return {name: _artifact(c.contract_type) for name, c in sorted(containers.items())}


def _governor_input(root: Path) -> dict[str, Any]:
    sources = sorted((root / GOVERNOR_SOURCES).glob("*.sol"))
    return {
        "language": "Solidity",
        "sources": {str(p.relative_to(root)): {"content": p.read_text()} for p in sources},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",  # OpenZeppelin 5.4 uses mcopy
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


@functools.cache
def _compile_governor(root: Path) -> dict[str, CompiledContract]:
    from .toolchain import find_node

    standard_json = _governor_input(root)
    solcjs = root / "node_modules" / f"solc-{GOVERNOR_SOLC}"
    if not (solcjs / "package.json").is_file():
        raise ToolchainError(f"solc {GOVERNOR_SOLC} is missing ({solcjs}): run `make setup`")
    # The output depends only on the sources (OpenZeppelin is pinned) and the compiler: cached
    # by their hash, so a test session compiles the Governor once, not per process.
    key = hashlib.sha256(json.dumps(standard_json, sort_keys=True).encode()).hexdigest()[:16]
    cache = root / ".build" / f"governor-{GOVERNOR_SOLC}-{key}.json"
    if cache.is_file():
        output = json.loads(cache.read_text())
    else:
        node = find_node().require()
        front = Path(__file__).resolve().parent / "_solc_front.cjs"
        proc = subprocess.run(
            [
                *(str(node), str(front), "--standard-json"),
                *("--base-path", str(root), "--include-path", str(root / "node_modules")),
            ],
            input=json.dumps(standard_json),
            capture_output=True,
            text=True,
            env={**os.environ, "ZKML_SOLCJS": str(solcjs)},
            check=False,
        )
        if proc.returncode != 0:
            raise ContractsError(f"solc {GOVERNOR_SOLC} failed: {proc.stderr.strip()[:300]}")
        output = json.loads(proc.stdout)
        errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
        if errors:
            first = errors[0].get("formattedMessage", errors[0].get("message", "")).strip()
            raise ContractsError(f"compiling {root / GOVERNOR_SOURCES} failed: {first}")
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(output))
        tmp.replace(cache)
    out: dict[str, CompiledContract] = {}
    for source, entries in output.get("contracts", {}).items():
        if not source.startswith(str(GOVERNOR_SOURCES)):
            continue  # OpenZeppelin's own and the project's: not deployed from here
        for name, c in entries.items():
            out[name] = CompiledContract(
                name=name,
                abi=c["abi"],
                bytecode=bytes.fromhex(c["evm"]["bytecode"]["object"]),
                runtime=bytes.fromhex(c["evm"]["deployedBytecode"]["object"]),
            )
    return out


def governor_contracts(root: Path | None = None) -> dict[str, CompiledContract]:
    """The contracts of ``contracts/governance/governor/`` (OpenZeppelin Governor based,
    solc 0.8.24), by name."""
    return dict(_compile_governor(_root(root)))


def governor_error_abi(root: Path | None = None) -> list[dict[str, Any]]:
    """The custom errors of the Governor-based contracts (OpenZeppelin's Governor errors):
    ``error_decoder().add(governor_error_abi())`` to decode their reverts too."""
    return [e for c in governor_contracts(root).values() for e in c.abi if e.get("type") == "error"]


def load_contracts(root: Path | None = None) -> dict[str, CompiledContract]:
    """Every contract of the project by name (interfaces included: they have no bytecode)."""
    return dict(_compile(_root(root)))


def contract(name: str, root: Path | None = None) -> CompiledContract:
    """One compiled contract, e.g. ``contract("ZkmlOracle")``."""
    contracts = _compile(_root(root))
    try:
        return contracts[name]
    except KeyError:
        known = ", ".join(n for n, c in contracts.items() if c.bytecode)
        raise ContractsError(f"no contract named {name!r} in contracts/: one of {known}") from None


def oracle(root: Path | None = None) -> CompiledContract:
    """``ZkmlOracle``: registry, request/fulfil and push feed."""
    return contract(ORACLE, root)


def feed_adapter(root: Path | None = None) -> CompiledContract:
    """``ZkmlFeedAdapter``: Chainlink's AggregatorV2V3Interface over one output of a feed."""
    return contract(FEED_ADAPTER, root)


def error_abi(root: Path | None = None) -> list[dict[str, Any]]:
    """Every custom error declared in the project (and its OpenZeppelin imports), once each:
    what a client needs to decode any revert of these contracts."""
    seen: dict[str, dict[str, Any]] = {}
    for c in _compile(_root(root)).values():
        for entry in c.abi:
            if entry.get("type") == "error":
                types = ",".join(canonical_type(i) for i in entry.get("inputs", []))
                seen.setdefault(f"{entry['name']}({types})", entry)
    return list(seen.values())


def canonical_type(param: dict[str, Any]) -> str:
    """An ABI parameter's type as it appears in a signature (tuples spelled out)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert payload web3 attached to an exception, if any."""
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):  # some providers nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return None


class ErrorDecoder:
    """Custom errors by selector: the project's own (``error_abi``), Solidity's ``Error`` and
    ``Panic``, and any ABI added later (a consumer contract's)."""

    def __init__(self, abi: Sequence[dict[str, Any]] | None = None) -> None:
        self._table: dict[bytes, tuple[dict[str, Any], list[str]]] = {}
        self.add(error_abi() if abi is None else abi)
        self.add(
            [
                {"type": "error", "name": "Error", "inputs": [{"type": "string"}]},
                {"type": "error", "name": "Panic", "inputs": [{"type": "uint256"}]},
            ]
        )

    def add(self, abi: Sequence[dict[str, Any]]) -> None:
        from eth_utils.crypto import keccak

        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = [canonical_type(i) for i in entry.get("inputs", [])]
            selector = keccak(f"{entry['name']}({','.join(types)})".encode())[:4]
            self._table.setdefault(selector, (dict(entry), types))

    def known(self, data: bytes) -> bool:
        return data[:4] in self._table

    def decode(self, data: bytes) -> tuple[str, tuple[Any, ...]]:
        """A revert payload as (error name, decoded arguments; addresses checksummed)."""
        error = self.describe(data)
        return error.name, error.values

    def describe(self, data: bytes) -> ContractError:
        """A revert payload as a readable :class:`~zkml_oracle.reverts.ContractError`."""
        from eth_abi import decode  # type: ignore[attr-defined]
        from eth_utils.address import to_checksum_address

        if len(data) < 4:
            return ContractError("<empty revert>")
        known = self._table.get(data[:4])
        if known is None:
            unknown = {"name": f"<unknown error 0x{data[:4].hex()}>", "inputs": [{"type": "bytes"}]}
            return describe(unknown, [data[4:]])
        entry, types = known
        values = decode(types, data[4:])
        return describe(
            entry,
            [
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, values, strict=True)
            ],
        )

    def from_exception(self, exc: BaseException) -> tuple[str, tuple[Any, ...]]:
        data = revert_data(exc)
        return self.decode(data) if data is not None else ("<revert>", (str(exc),))


@functools.cache
def error_decoder() -> ErrorDecoder:
    """The decoder for every error of the project's contracts (compiled once)."""
    return ErrorDecoder()
