"""How the package is arranged: one exception module, and the proving side free of the chain
stack (a prover worker must not pay for, or depend on, web3 and Ape)."""

from __future__ import annotations

import ast
import inspect
import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import zkml_oracle
from zkml_oracle import exceptions
from zkml_oracle.exceptions import ArtifactError

PACKAGE = Path(zkml_oracle.__file__).parent


def test_every_exception_is_a_zkml_oracle_error_defined_in_one_module() -> None:
    # Read as source, so no module (and no chain stack) is imported to check it.
    defined_elsewhere = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "exceptions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith(("Error", "Exception", "Warning")) for base in node.bases
            ):
                defined_elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert defined_elsewhere == []
    for name, cls in inspect.getmembers(exceptions, inspect.isclass):
        if cls.__module__ == exceptions.__name__:
            assert issubclass(cls, exceptions.ZkmlOracleError), name


def test_an_existing_manifest_loads_and_is_written_back_unchanged(tmp_path: Path) -> None:
    # Written by the hand-made serialiser this package had before the pydantic records.
    from zkml_oracle.types import Manifest

    fixture = Path(__file__).parent / "fixtures" / "manifest-schema1.json"
    shutil.copyfile(fixture, tmp_path / "manifest.json")
    m = Manifest.load(tmp_path)
    assert m.layout.requester is not None and m.params_commitment[1] == 2**200
    assert m.model_dump(mode="json") == json.loads(fixture.read_text())
    # An older build without a verifier or requester limbs: the same keys come back.
    d = json.loads(fixture.read_text())
    d["verifier"] = None
    del d["layout"]["requester"]
    d["layout"]["total"] = 9  # derived: the last output slot's end, without the limbs
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    assert Manifest.load(tmp_path).model_dump(mode="json") == d
    # A mistyped field is one line naming it.
    d["layout"]["inputs"]["count"] = "four"
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(ArtifactError, match=r"corrupt \(layout\.inputs\.count: .*\): rebuild"):
        Manifest.load(tmp_path)


def test_an_existing_deployment_record_loads_and_is_written_back_unchanged(
    tmp_path: Path,
) -> None:
    from types import SimpleNamespace

    from zkml_oracle.chain.deployments import ContractEntry, DeploymentStore

    chain: Any = SimpleNamespace(chain_id=31337, genesis_hash="0x" + "11" * 32)
    digest, address = "ab" * 32, "0x" + "22" * 20
    verifier = {
        "chain_id": 31337, "genesis_hash": chain.genesis_hash, "artifact_digest": digest,
        "kind": "standalone", "address": address, "tx": "0x" + "33" * 32, "gas_used": 2950000,
        "deployer": address, "runtime_size": 20000, "vka_digest": None, "register_tx": None,
        "register_gas": None, "model_sha256": "cd" * 32, "vk_sha256": "ef" * 32,
        "dev_srs": True, "deployed_at": "2026-12-01T21:26:02+00:00",
    }  # fmt: skip
    model = {
        "model_id": "0x" + "44" * 32, "build_dir": "/b", "artifact_digest": digest,
        "verifier": address, "visibility": {"input": "public", "param": "fixed",
        "output": "public"}, "inputs": [{"name": "x", "size": 4, "scale": 13}],
        "output_scale": 13, "output_sizes": [2],
    }  # fmt: skip
    written = {
        "chain_id": 31337,
        "genesis_hash": chain.genesis_hash,
        "verifiers": {digest: verifier},
        "reusable_verifiers": {},
        "oracle": {"address": address, "tx": None, "gas_used": 1, "deployer": address,
                   "allow_dev_srs": True},
        "models": {model["model_id"]: model},
        "a_section_a_newer_toolkit_wrote": {"kept": True},
    }  # fmt: skip
    store = DeploymentStore(tmp_path)
    store.path(chain).parent.mkdir(parents=True)
    store.path(chain).write_text(json.dumps(written))
    record = store.load(chain)
    assert record.verifiers[digest].dev_srs is True and record.models[model["model_id"]].inputs
    entry = ContractEntry(address=address, tx=None, gas_used=0, deployer=None)
    store.update(chain, lambda r: r.reusable_verifiers.__setitem__("55" * 32, entry))
    after = json.loads(store.path(chain).read_text())
    assert after == {**written, "reusable_verifiers": {"55" * 32: entry.model_dump()}}
    # A fresh chain's record has the two verifier maps only, as before.
    other: Any = SimpleNamespace(chain_id=1, genesis_hash="0x" + "66" * 32)
    assert store.load(other).model_dump(mode="json") == {
        "chain_id": 1, "genesis_hash": other.genesis_hash, "verifiers": {},
        "reusable_verifiers": {},
    }  # fmt: skip
    store.path(chain).write_text(json.dumps({**written, "oracle": {"tx": None}}))
    with pytest.raises(ArtifactError, match=r"corrupt \(oracle\.address: Field required\)"):
        store.load(chain)


#: The proving side: what a prover worker (local pool or Ray) imports and runs, and every module
#: of circuit/ (building a circuit needs no chain either).
PROVING = [
    "zkml_oracle.prover",
    "zkml_oracle.calldata",
    *(f"zkml_oracle.circuit.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE / "circuit")])),
    "zkml_oracle.relayer.backend",
    "zkml_oracle.relayer.ray_backend",  # importing it starts no Ray (ray itself is lazy)
]
#: The chain stack, and this package's chain side (prefixes: any module under them).
CHAIN = ["web3", "ape", "zkml_oracle.chain", "zkml_oracle.relayer.watcher"]
#: The small core beside the subpackages: it imports nothing from them but circuit/.
CORE = [
    "types",
    "field",
    "calldata",
    "prover",
    "exceptions",
    "settings",
    "_ezkl",
    "_fs",
    "_progress",
]


def test_proving_imports_neither_web3_nor_ape() -> None:
    # A fresh interpreter: imports the proving side and computes what a worker sends on-chain
    # (a model id, an input hash), then lists which chain modules got loaded.
    fixture = Path(__file__).parent / "fixtures" / "manifest-schema1.json"
    script = f"""
import importlib, json, sys
for name in {PROVING!r}:
    importlib.import_module(name)
from zkml_oracle.calldata import ModelConfig, input_hash
from zkml_oracle.circuit import BuildOptions, build
from zkml_oracle.types import Manifest
m = Manifest.model_validate_json(open({str(fixture)!r}).read())
assert ModelConfig.from_manifest(m, "0x" + "00" * 20).model_id.startswith("0x")
assert len(input_hash([1, 2, 3])) == 66
print(json.dumps([n for n in sys.modules if n.startswith(tuple({CHAIN!r}))]))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports in functions too), absolute;
    ``from x import y`` counts as both ``x`` and ``x.y`` (y may be a module)."""
    package = ["zkml_oracle", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*parts, *([node.module] if node.module else [])])
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return found


def test_the_core_and_circuits_import_nothing_from_the_chain_side() -> None:
    # Read as source, so a lazy import inside a function counts as well.
    paths = [PACKAGE / f"{name}.py" for name in CORE] + sorted((PACKAGE / "circuit").glob("*.py"))
    outside = (
        "zkml_oracle.chain",
        "zkml_oracle.relayer",
        "zkml_oracle.apps",
        "zkml_oracle.testing",
    )
    crossing = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in paths
        for name in _imports(path)
        if name.split(".")[0] in {"web3", "ape", "eth_account"} or name.startswith(outside)
    }
    assert crossing == set()
