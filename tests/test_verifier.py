"""The Solidity verifier a build generates and compiles (zkml_oracle.circuit.verifier)."""

from __future__ import annotations

import json

from zkml_oracle.circuit.verifier import EIP170_LIMIT, CompiledContract, VerifierInfo, read_vka
from zkml_oracle.types import BuildResult


def test_build_generates_and_compiles_a_standalone_verifier(built: BuildResult) -> None:
    m, d = built.manifest, built.build_dir
    assert m.verifier is not None
    v = m.verifier
    assert (v.kind, v.contract_name) == ("standalone", "Halo2Verifier")
    assert v.solc_version.startswith("0.8.20+commit.a1b79de6")
    assert v.solc_settings == {"optimizer": {"enabled": True, "runs": 1}}
    source = m.artifact("verifier_source", d).read_text()
    assert "contract Halo2Verifier" in source
    artifact = json.loads(m.artifact("verifier", d).read_text())
    assert artifact["compiler"]["settings"] == v.solc_settings
    contract = CompiledContract.load(m.artifact("verifier", d))
    assert len(contract.runtime) == v.runtime_size and len(contract.bytecode) == v.creation_size
    # One advice column per region (BuildOptions.columns): 10,465 bytes measured on this
    # machine (ezkl's two columns: 13,385).
    assert abs(v.runtime_size - 10_465) < 1_000
    assert not v.exceeds_eip170 and v.size_warning() is None
    verify = next(e for e in contract.abi if e.get("name") == "verifyProof")
    assert [i["type"] for i in verify["inputs"]] == ["bytes", "uint256[]"]
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["verifier"]["exceeds_eip170"] is False


def test_reusable_build_has_a_key_artifact(reusable_built: BuildResult) -> None:
    m, d = reusable_built.manifest, reusable_built.build_dir
    assert m.verifier is not None and m.verifier.kind == "reusable"
    assert m.verifier.contract_name == "Halo2VerifierReusable"
    words = read_vka(m.artifact("vka", d))
    assert len(words) == m.verifier.vka_words and all(len(w) == 32 for w in words)
    abi = CompiledContract.load(m.artifact("verifier", d)).abi
    assert {e.get("name") for e in abi} >= {"registerVka", "verifyProof"}


def test_an_oversized_verifier_is_reported_with_the_way_out() -> None:
    big = VerifierInfo(
        kind="standalone",
        contract_name="Halo2Verifier",
        runtime_size=EIP170_LIMIT + 1,
        creation_size=30_000,
        solc_version="0.8.20",
        solc_settings={},
    )
    assert big.exceeds_eip170
    assert "over EIP-170's 24,576" in (big.size_warning() or "")
    assert "--reusable" in (big.size_warning() or "")
    reusable = big.model_copy(
        update={"kind": "reusable", "contract_name": "Halo2VerifierReusable", "creation_size": 1}
    )
    assert "--reusable" not in (reusable.size_warning() or "")
