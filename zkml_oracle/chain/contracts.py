"""The project's hand-written contracts (``contracts/``) as typed, compiled artifacts.

At run time they come from the package itself: ``zkml_oracle/artifacts/`` holds one JSON file per
contract (ABI, creation and runtime bytecode, solc version and settings, the digest of the
sources they were compiled from) and ``sources.json``, the digest of each source file. So an
installed wheel deploys and relays with no ``contracts/`` folder and no Solidity compiler.
``make artifacts`` (:func:`write_artifacts`) regenerates them; ``tests/test_artifacts.py``
checks that they match ``contracts/`` without recompiling.

In a checkout whose ``contracts/`` no longer match the shipped artifacts (a contract being
edited), and for the test-only contracts of ``contracts/test/`` (never shipped: a
``MockVerifier`` accepts any proof), the contracts are compiled from source through Ape
in-process (``LocalProject.load_contracts``, ape-solidity and the solc that
:func:`zkml_oracle.toolchain.ensure_solc` registers): the same build as ``ape compile``, with
``ape-config.yaml``'s solc 0.8.20, optimizer, and OpenZeppelin Contracts as a *local* Ape
dependency on ``node_modules/@openzeppelin/contracts`` (nothing is downloaded), always in full
(never from Ape's incremental ``.build/`` cache); within a process, once.

Generated verifiers are not here: each circuit's build directory holds its own, compiled at
build time (``verifier/Verifier.json``, see :mod:`zkml_oracle.circuit.verifier`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._fs import atomic_write_bytes
from ..circuit.verifier import CompiledContract
from ..exceptions import ContractsError as ContractsError  # defined there, importable here too
from ..exceptions import ToolchainError
from .reverts import ContractError, describe

#: The checkout this package is installed from (editable installs): it holds ``contracts/``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The compiled contracts shipped inside the package.
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
#: The digest of every source the artifacts were compiled from.
INDEX = "sources.json"
#: Sources under this folder are test doubles: compiled from source, never shipped.
TEST_FOLDER = "contracts/test/"
#: What regenerates the artifacts (named in every staleness message).
REGENERATE = "make artifacts"

#: The contracts the toolkit deploys itself.
ORACLE = "ZkmlOracle"
FEED_ADAPTER = "ZkmlFeedAdapter"

#: Sources built on OpenZeppelin 5.4's Governor (``pragma ^0.8.24``), compiled apart with
#: this solc (npm alias ``solc-0.8.24``) through the same WebAssembly front; Ape skips them
#: (``compile: exclude`` in ape-config.yaml).
GOVERNOR_SOURCES = Path("contracts") / "governance" / "governor"
GOVERNOR_SOLC = "0.8.24"


@dataclass(frozen=True)
class Compiled:
    """One compilation of ``contracts/``: every contract, where it came from and how."""

    contracts: dict[str, CompiledContract]
    source_ids: dict[str, str]
    compiler: dict[str, Any]


def checkout() -> Path | None:
    """The zkml-oracle checkout this package runs from, if it is one (editable install)."""
    root = PROJECT_ROOT
    if (root / "ape-config.yaml").is_file() and (root / "contracts").is_dir():
        return root
    return None


def _root(root: Path | None) -> Path:
    found = Path(root).resolve() if root is not None else checkout()
    if found is None or not (found / "ape-config.yaml").is_file():
        raise ContractsError(
            f"{found or PROJECT_ROOT} holds no ape-config.yaml and contracts/: compiling from "
            "source needs a zkml-oracle checkout (an installed package uses its shipped "
            "artifacts, which hold every contract but the test doubles)"
        )
    if not (found / "contracts").is_dir():
        raise ContractsError(f"{found} has no contracts/ folder: run from a zkml-oracle checkout")
    oz = found / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    if not oz.is_file():
        raise ToolchainError(
            f"OpenZeppelin Contracts are missing ({oz}): run `make setup` in the checkout "
            "(it runs `npm install`)"
        )
    return found


def source_digests(root: Path) -> dict[str, str]:
    """SHA-256 of each shipped contract's source under ``root/contracts`` (test doubles left
    out), and of the compiler configuration in ``ape-config.yaml`` (its ``solidity`` and
    ``dependencies`` sections: comments and network settings do not change a build)."""
    import yaml

    digests: dict[str, str] = {}
    for path in sorted((root / "contracts").rglob("*.sol")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(TEST_FOLDER) or "/.cache/" in rel:
            continue
        digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    config = yaml.safe_load((root / "ape-config.yaml").read_text()) or {}
    relevant = {k: config.get(k) for k in ("solidity", "dependencies")}
    digests["ape-config.yaml"] = hashlib.sha256(
        json.dumps(relevant, sort_keys=True).encode()
    ).hexdigest()
    return digests


def tree_digest(digests: dict[str, str]) -> str:
    """One digest over every source digest (what each artifact records)."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def stale_sources(root: Path, artifacts: Path = ARTIFACTS) -> list[str]:
    """The sources that changed, appeared or disappeared since the artifacts in ``artifacts``
    were made (empty: they are current). Hashes files only; nothing is compiled."""
    index = artifacts / INDEX
    if not index.is_file():
        return [f"{index} is missing"]
    recorded: dict[str, str] = json.loads(index.read_text())["sources"]
    current = source_digests(root)
    changes = [
        f"{n} changed"
        for n in sorted(current.keys() & recorded.keys())
        if current[n] != recorded[n]
    ]
    changes += [f"{n} is new" for n in sorted(current.keys() - recorded.keys())]
    changes += [f"{n} was removed" for n in sorted(recorded.keys() - current.keys())]
    return changes


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
def _compile(root: Path) -> Compiled:
    from ape.exceptions import ApeException
    from ape.managers.project import LocalProject

    from ..toolchain import ensure_solc

    ensure_solc()  # py-solc-x (and so ape-solidity) would otherwise try to download solc
    try:
        project = LocalProject(root)
        # A full compile: Ape's incremental cache recompiles only the files that changed, so a
        # contract whose import changed would keep stale bytecode (seen with an old .build/).
        containers = project.load_contracts(use_cache=False)
        compilers = project.manifest.compilers or []
    except ApeException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ContractsError(f"compiling {root / 'contracts'} failed: {first}") from None
    names = sorted(containers)
    solidity = next((c for c in compilers if c.name == "solidity"), None)
    settings = {
        k: v
        for k, v in sorted(((solidity.settings or {}) if solidity else {}).items())
        if k != "outputSelection"  # what solc was asked to print, not how it compiled
    }
    return Compiled(
        contracts={n: _artifact(containers[n].contract_type) for n in names},
        source_ids={n: str(containers[n].contract_type.source_id or "") for n in names},
        compiler={
            "name": "solc",
            "version": str(solidity.version) if solidity else None,
            "settings": settings,
        },
    )


def _write(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())
    path.chmod(0o644)  # package data: readable by whoever installs it


def write_artifacts(root: Path | None = None, out: Path = ARTIFACTS) -> list[Path]:
    """Compile ``contracts/`` and write the shipped artifacts to ``out`` (``make artifacts``).

    Deterministic: the same sources give byte-identical files. Test doubles are left out, and
    files of contracts that no longer exist are removed. Returns the files written.
    """
    root = _root(root)
    compiled = _compile(root)
    digests = source_digests(root)
    tree = tree_digest(digests)
    shipped = {
        name: c
        for name, c in compiled.contracts.items()
        if not compiled.source_ids[name].startswith(TEST_FOLDER)
    }
    written = []
    for name, c in shipped.items():
        path = out / f"{name}.json"
        _write(
            path,
            {
                "contractName": name,
                "sourceId": compiled.source_ids[name],
                "abi": c.abi,
                "bytecode": "0x" + c.bytecode.hex(),
                "deployedBytecode": "0x" + c.runtime.hex(),
                "compiler": compiled.compiler,
                "sourcesSha256": tree,
            },
        )
        written.append(path)
    index = out / INDEX
    _write(index, {"sources": digests, "sourcesSha256": tree, "contracts": sorted(shipped)})
    written.append(index)
    for old in out.glob("*.json"):
        if old not in written:
            old.unlink()
    return written


@functools.cache
def shipped_contracts() -> dict[str, CompiledContract]:
    """The contracts shipped inside the package, by name (interfaces included: no bytecode)."""
    index = ARTIFACTS / INDEX
    if not index.is_file():
        raise ContractsError(
            f"the package has no compiled contracts ({index} is missing): reinstall zkml-oracle, "
            f"or run `{REGENERATE}` in a checkout"
        )
    names = json.loads(index.read_text())["contracts"]
    return {name: CompiledContract.load(ARTIFACTS / f"{name}.json") for name in names}


@functools.cache
def _available() -> dict[str, CompiledContract]:
    """The contracts run-time code uses: the shipped artifacts, unless this is a checkout whose
    sources changed since they were made (then compiled from source, as a developer expects)."""
    root = checkout()
    if root is not None and stale_sources(root):
        return dict(_compile(_root(root)).contracts)
    return shipped_contracts()


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
    from ..toolchain import find_node

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
        front = Path(__file__).resolve().parents[1] / "_solc_front.cjs"
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
    """Every contract of a checkout compiled from source, by name (test doubles included)."""
    return dict(_compile(_root(root)).contracts)


def contract(name: str, root: Path | None = None) -> CompiledContract:
    """One compiled contract, e.g. ``contract("ZkmlOracle")``: shipped, or from source (a test
    double, a checkout being edited, or an explicit ``root``)."""
    contracts = load_contracts(root) if root is not None else _available()
    if name not in contracts and root is None and checkout() is not None:
        contracts = load_contracts()
    try:
        return contracts[name]
    except KeyError:
        known = ", ".join(n for n, c in contracts.items() if c.bytecode)
        raise ContractsError(f"no contract named {name!r}: one of {known}") from None


def oracle(root: Path | None = None) -> CompiledContract:
    """``ZkmlOracle``: registry, request/fulfil and push feed."""
    return contract(ORACLE, root)


def feed_adapter(root: Path | None = None) -> CompiledContract:
    """``ZkmlFeedAdapter``: Chainlink's AggregatorV2V3Interface over one output of a feed."""
    return contract(FEED_ADAPTER, root)


def error_abi(root: Path | None = None) -> list[dict[str, Any]]:
    """Every custom error declared in the project (and its OpenZeppelin imports), once each:
    what a client needs to decode any revert of these contracts."""
    contracts = load_contracts(root) if root is not None else _available()
    seen: dict[str, dict[str, Any]] = {}
    for c in contracts.values():
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
        """A revert payload as a readable :class:`~zkml_oracle.chain.reverts.ContractError`."""
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
