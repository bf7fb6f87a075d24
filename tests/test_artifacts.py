"""The compiled contracts the package ships (zkml_oracle/artifacts/) match contracts/.

Cheap by design: source digests are compared, nothing is compiled. When this fails, run
`make artifacts` and commit zkml_oracle/artifacts/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zkml_oracle.chain import contracts
from zkml_oracle.circuit.verifier import CompiledContract
from zkml_oracle.exceptions import ArtifactError

REPO = Path(__file__).resolve().parent.parent


def test_shipped_artifacts_match_the_contract_sources() -> None:
    changes = contracts.stale_sources(REPO)
    assert not changes, (
        f"zkml_oracle/artifacts/ are out of date ({'; '.join(changes)}): run "
        f"`{contracts.REGENERATE}` and commit zkml_oracle/artifacts/"
    )


def test_every_artifact_records_its_compiler_and_sources() -> None:
    index = json.loads((contracts.ARTIFACTS / contracts.INDEX).read_text())
    files = {p.stem for p in contracts.ARTIFACTS.glob("*.json")} - {Path(contracts.INDEX).stem}
    assert files == set(index["contracts"]), f"stray or missing files: run `{contracts.REGENERATE}`"
    for name in index["contracts"]:
        artifact = json.loads((contracts.ARTIFACTS / f"{name}.json").read_text())
        assert artifact["sourcesSha256"] == index["sourcesSha256"], name
        assert artifact["compiler"]["version"].startswith("0.8.20+commit."), name
        assert artifact["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}
        assert not artifact["sourceId"].startswith(contracts.TEST_FOLDER), name
    deployed = contracts.shipped_contracts()
    for name in ("ZkmlOracle", "ZkmlFeedAdapter", "ZkmlAttestations", "CreditGrant"):
        assert deployed[name].bytecode and deployed[name].runtime, name
    assert "MockVerifier" not in deployed  # a verifier that accepts anything never ships


def test_run_time_code_uses_the_shipped_artifacts_in_a_current_checkout() -> None:
    assert contracts.contract("ZkmlOracle") == contracts.shipped_contracts()["ZkmlOracle"]


def test_an_edited_source_is_reported_stale(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "contracts", tmp_path / "contracts", ignore=shutil.ignore_patterns(".cache")
    )
    shutil.copy(REPO / "ape-config.yaml", tmp_path)
    assert contracts.stale_sources(tmp_path) == []
    oracle = tmp_path / "contracts" / "ZkmlOracle.sol"
    oracle.write_text(oracle.read_text() + "\n// edited\n")
    (tmp_path / "contracts" / "New.sol").write_text("// new\n")
    (tmp_path / "contracts" / "test" / "Double.sol").write_text("// a test double: not shipped\n")
    (tmp_path / "contracts" / "ZkmlConsumer.sol").unlink()
    assert contracts.stale_sources(tmp_path) == [
        "contracts/ZkmlOracle.sol changed",
        "contracts/New.sol is new",
        "contracts/ZkmlConsumer.sol was removed",
    ]


def test_a_missing_or_broken_compiled_contract_names_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "Verifier.json"
    with pytest.raises(ArtifactError, match=r"Verifier.json is missing: rebuild the circuit"):
        CompiledContract.load(missing)
    missing.write_text('{"contractName": "Halo2Verifier", "abi": []}')
    with pytest.raises(ArtifactError, match=r"is not a compiled contract \(KeyError"):
        CompiledContract.load(missing)
