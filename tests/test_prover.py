"""Proving and verifying off-chain (zkml_oracle.prover), including proofs that must fail."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from tests.conftest import tampered, write_json
from zkml_oracle import field
from zkml_oracle.circuit.model import Runner
from zkml_oracle.circuit.model import load as load_model
from zkml_oracle.exceptions import ArtifactError, InputError, SrsError
from zkml_oracle.prover import prove, verify
from zkml_oracle.types import BuildResult, ProofResult


def test_proven_outputs_match_onnxruntime(
    proof: ProofResult, built: BuildResult, example: dict[str, Path]
) -> None:
    sample = json.loads(example["input"].read_text())["input_data"]
    reference = Runner(load_model(example["model"])).run(sample)[0].reshape(-1)
    assert len(proof.outputs) == 1 and len(proof.outputs[0]) == 2
    assert all(isinstance(v, float) for v in proof.outputs[0])
    assert max(abs(a - float(b)) for a, b in zip(proof.outputs[0], reference, strict=True)) < 0.01


def test_instances_follow_the_manifest_layout(
    proof: ProofResult, built: BuildResult, example: dict[str, Path]
) -> None:
    m = built.manifest
    assert len(proof.instances) == m.layout.total
    sample = json.loads(example["input"].read_text())["input_data"][0]
    inputs = proof.instances[m.layout.inputs.offset : m.layout.inputs.end]
    assert inputs == [field.encode(v, m.inputs[0].scale) for v in sample]
    outputs = proof.instances[m.layout.outputs.offset : m.layout.outputs.end]
    assert [field.decode(f, m.outputs[0].scale) for f in outputs] == proof.outputs[0]


def test_a_genuine_proof_verifies(proof: ProofResult, built: BuildResult) -> None:
    result = verify(built.build_dir, proof.proof_path)
    assert result.valid and result.reason is None


@pytest.mark.parametrize("edit", ["bytes", "output", "input"])
def test_a_tampered_proof_is_refused(
    proof: ProofResult, built: BuildResult, tmp_path: Path, edit: str
) -> None:
    bad = tampered(proof.proof_path, tmp_path / "bad.json", edit)
    result = verify(built.build_dir, bad)
    assert not result.valid and result.reason


def test_a_proof_of_another_circuit_is_refused(
    proof: ProofResult, other_built: BuildResult
) -> None:
    assert other_built.manifest.layout == other_built.manifest.layout
    result = verify(other_built.build_dir, proof.proof_path)
    assert not result.valid


def test_a_proof_with_another_layout_is_refused(
    proof: ProofResult, hashed_built: BuildResult
) -> None:
    result = verify(hashed_built.build_dir, proof.proof_path)
    assert not result.valid and "6 instances, this circuit 4" in (result.reason or "")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"input_data": [[0.1, 0.2, 0.3]]}, "has 3 values but the model takes 4"),
        (
            {"input_data": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]]},
            "has 8 values but the model takes 4",
        ),
        ({"input_data": [[0.1, math.inf, 0.3, 0.4]]}, "not finite"),
        ({"input_data": [[0.1, 0.2, 0.3, 1e300]]}, "outside the signed range"),
    ],
)
def test_bad_input_is_refused_and_writes_no_proof(
    built: BuildResult, tmp_path: Path, payload: object, message: str
) -> None:
    bad = write_json(tmp_path / "in.json", payload)
    with pytest.raises(InputError, match=message):
        prove(built.build_dir, bad, tmp_path / "proof.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def test_proving_needs_a_build_dir(example: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a build directory.*zkml-oracle build"):
        prove(tmp_path, example["input"], tmp_path / "p.json")


def test_an_incomplete_build_is_named(
    built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "b"
    shutil.copytree(built.build_dir, copy)
    (copy / "pk.key").unlink()
    with pytest.raises(ArtifactError, match="pk.key is missing"):
        prove(copy, example["input"], tmp_path / "p.json")


def test_a_different_srs_is_refused(
    built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "b"
    shutil.copytree(built.build_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["srs"]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SrsError, match="not the SRS this circuit's keys were made with"):
        prove(copy, example["input"], tmp_path / "p.json")


def test_a_non_proof_file_is_an_input_error(built: BuildResult, tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(InputError, match="not a proof file"):
        verify(built.build_dir, junk)
    with pytest.raises(InputError, match="not an ezkl proof"):
        verify(built.build_dir, write_json(tmp_path / "x.json", {"a": 1}))


def test_input_outside_the_calibrated_range_says_how_to_fix_it(
    built: BuildResult, tmp_path: Path
) -> None:
    big = write_json(tmp_path / "in.json", {"input_data": [[1e6, 0.2, 0.3, 0.4]]})
    with pytest.raises(InputError, match="calibrated for.*rebuild with calibration data"):
        prove(built.build_dir, big, tmp_path / "proof.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]
