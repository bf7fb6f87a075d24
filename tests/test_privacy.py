"""Privacy that holds, on a real Anvil with real ezkl proofs: private weights bound to their
commitment, the instance layout read off real proofs, requester-bound salted commitments.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import PRIVACY_BATCH, calibration_rows, run_cli, write_json
from zkml_oracle import field
from zkml_oracle.apps.examples import write_credit_mlp
from zkml_oracle.chain import Chain, sender
from zkml_oracle.chain.deployments import DeploymentStore
from zkml_oracle.chain.oracle import (
    ZERO_ADDRESS,
    ModelConfig,
    deploy_and_register,
    fulfilled_outputs,
    input_felts,
    proof_calldata,
)
from zkml_oracle.circuit.commitment import ADDRESS_LIMBS, Binding, limbs
from zkml_oracle.circuit.publish import check_public, publish
from zkml_oracle.exceptions import ArtifactError, InputError
from zkml_oracle.prover import prove, verify
from zkml_oracle.testing import HOUR, OracleDeployer, OracleHarness, committed, terms
from zkml_oracle.types import BuildResult, Visibility

ZERO = ZERO_ADDRESS


@dataclasses.dataclass(frozen=True)
class SlotProof:
    proof: bytes
    instances: list[int]
    samples: list[list[list[float]]]
    bindings: list[Binding]


def prove_rows(
    build: BuildResult, rows: list[list[float]], out: Path, bindings: list[Binding] | None = None
) -> SlotProof:
    """A real proof of ``rows`` (one per slot), with their bindings for a requester-bound build."""
    inputs = write_json(
        out.with_suffix(".input.json"), {"input_data": [[v for r in rows for v in r]]}
    )
    result = prove(build.build_dir, inputs, out, bindings=bindings)
    proof, instances = proof_calldata(result.proof_path)
    return SlotProof(proof, instances, [[r] for r in rows], bindings or [])


def ask(zkml: OracleHarness, felts: list[int], sender: str) -> int:
    fn = zkml.oracle.functions.requestInference(zkml.model_id, felts, ZERO, 0, zkml.now() + HOUR)
    (request_id,) = zkml.requests_in(zkml.transact(fn, sender))
    return request_id


def outputs_at(build: BuildResult, instances: list[int], slot: int) -> list[int]:
    seg = build.manifest.layout.output_slot(slot)
    return [field.felt_to_int(f) for f in instances[seg.offset : seg.end]]


# --- the layout, read off a real proof -------------------------------------------------------

MATRIX = [
    # (fixture, input visibility, param visibility, batched)
    ("built", "public", "fixed", False),
    ("private_weights_built", "public", "hashed", False),
    ("bound_built", "hashed", "fixed", False),
    ("hashed_built", "hashed", "hashed", False),
    ("batch_built", "public", "fixed", True),
    ("private_weights_batch_built", "public", "hashed", True),
    ("batch_hashed_built", "hashed", "fixed", True),
    ("bound_batch_built", "hashed", "hashed", True),
]


@pytest.mark.parametrize(
    ("fixture", "inputs", "params", "batched"), MATRIX, ids=[m[0] for m in MATRIX]
)
def test_layout_matches_what_the_proof_carries(
    fixture: str,
    inputs: str,
    params: str,
    batched: bool,
    request: pytest.FixtureRequest,
    example: dict[str, Path],
    zkml_oracle_deployment: OracleDeployer,
    tmp_path: Path,
) -> None:
    """Every combination of input {public, hashed} x params {fixed, hashed}, batched and not:
    ``input_felts`` of a request equals what the proof carries in its slot, the params
    commitment is where the layout says, and the oracle settles requests made from it."""
    built: BuildResult = request.getfixturevalue(fixture)
    m = built.manifest
    assert (m.visibility.input, m.visibility.param, m.batch > 1) == (inputs, params, batched)
    zkml = zkml_oracle_deployment(built)
    requester = zkml.accounts[1]
    rows = calibration_rows(example)[: 2 if batched else 1]
    bindings = [Binding.new(requester) for _ in rows] if m.requester_bound else None
    p = prove_rows(built, rows, tmp_path / "proof.json", bindings)
    assert len(p.instances) == m.layout.total
    if params == "hashed":
        seg = m.layout.params
        assert tuple(p.instances[seg.offset : seg.end]) == m.params_commitment != ()
    else:
        assert m.params_commitment == () and m.layout.params.count == 0
    ids = []
    for slot, sample in enumerate(p.samples):
        felts = input_felts(m, sample, bindings[slot] if bindings else None)
        seg = m.layout.input_slot(slot)
        assert p.instances[seg.offset : seg.end] == felts
        if m.requester_bound:
            seg = m.layout.requester_slot(slot)
            assert p.instances[seg.offset : seg.end] == limbs(int(requester, 16), ADDRESS_LIMBS)
        ids.append(ask(zkml, felts, requester))
    if batched:
        done = zkml.transact(
            zkml.oracle.functions.fulfillBatch(
                zkml.model_id, [terms(committed(zkml.oracle, r)) for r in ids], p.proof, p.instances
            ),
            zkml.accounts[-1],
        )
    else:
        done = zkml.transact(
            zkml.oracle.functions.fulfill(committed(zkml.oracle, ids[0]), p.proof, p.instances),
            zkml.accounts[-1],
        )
    logs = [
        *zkml.events(zkml.oracle, "RequestFulfilled", done),
        *zkml.events(zkml.oracle, "BatchFulfilled", done),
    ]
    assert {rid: list(out) for e in logs for rid, out in fulfilled_outputs(e).items()} == {
        rid: outputs_at(built, p.instances, slot) for slot, rid in enumerate(ids)
    }


# --- private weights --------------------------------------------------------------------------


def forge(built: BuildResult, rows: list[list[float]], out: Path) -> SlotProof:
    """The attack of issue 13: the registered graph compiled with other weights under the
    registered settings, proven with the registered proving key."""
    import ezkl
    import onnx
    from onnx import numpy_helper

    other = write_credit_mlp(out.parent / "other-weights", seed=99)
    weights = {t.name: t for t in onnx.load(str(other["model"])).graph.initializer}
    model = onnx.load(str(built.build_dir / "model.onnx"))
    for t in model.graph.initializer:
        if t.name in weights:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights[t.name]), t.name))
    forged_onnx, compiled = out.parent / "forged.onnx", out.parent / "forged.compiled"
    onnx.save(model, str(forged_onnx))
    settings = str(built.build_dir / "settings.json")
    assert ezkl.compile_circuit(str(forged_onnx), str(compiled), settings)
    padded = rows + [rows[-1]] * (built.manifest.batch - len(rows))
    data = write_json(out.parent / "forged.input.json", {"input_data": padded})
    witness = out.parent / "forged.witness.json"
    ezkl.gen_witness(str(data), str(compiled), str(witness))
    srs = built.manifest.srs.path
    ezkl.prove(str(witness), str(compiled), str(built.build_dir / "pk.key"), str(out), srs_path=srs)
    # The verifying key accepts it: only the params commitment tells the weights apart.
    assert ezkl.verify(str(out), settings, str(built.build_dir / "vk.key"), srs_path=srs)
    proof, instances = proof_calldata(out)
    return SlotProof(proof, instances, [[r] for r in rows], [])


@pytest.mark.parametrize("fixture", ["private_weights_built", "private_weights_batch_built"])
def test_a_proof_with_forged_weights_is_refused_everywhere(
    fixture: str,
    request: pytest.FixtureRequest,
    example: dict[str, Path],
    zkml_oracle_deployment: OracleDeployer,
    tmp_path: Path,
) -> None:
    """fulfill, fulfillBatch, submitResult and submitResultBatch all refuse a proof whose
    params commitment is not the registered one, though the verifier accepts it; the honest
    proof of the same input then settles."""
    built: BuildResult = request.getfixturevalue(fixture)
    zkml = zkml_oracle_deployment(built)
    batched = built.manifest.batch > 1
    rows = calibration_rows(example)[:PRIVACY_BATCH] if batched else calibration_rows(example)[:1]
    forged = forge(built, rows, tmp_path / "forged.json")
    honest = prove_rows(built, rows, tmp_path / "honest.json")
    lay = built.manifest.layout
    # Same inputs, other weights: other params commitment and other outputs.
    assert (
        forged.instances[lay.inputs.offset : lay.inputs.end]
        == (honest.instances[lay.inputs.offset : lay.inputs.end])
    )
    assert outputs_at(built, forged.instances, 0) != outputs_at(built, honest.instances, 0)
    user, relayer = zkml.accounts[1], zkml.accounts[-1]
    ids = [ask(zkml, input_felts(built.manifest, s), user) for s in honest.samples]
    o = zkml.oracle.functions
    # An open feed: any submitter's proof reaches the params check (issue 14's publisher
    # policy would refuse the relayer before it otherwise).
    zkml.transact(o.setFeedOpen(zkml.model_id, True), zkml.admin)
    attempts = [
        o.fulfill(committed(zkml.oracle, ids[0]), forged.proof, forged.instances),
        o.fulfillBatch(
            zkml.model_id,
            [terms(committed(zkml.oracle, r)) for r in ids],
            forged.proof,
            forged.instances,
        ),
        o.submitResult(zkml.model_id, forged.proof, forged.instances),
        o.submitResultBatch(zkml.model_id, forged.proof, forged.instances, len(rows)),
    ]
    for fn in attempts:
        assert zkml.reverts(fn, relayer) == ("ZkmlOracleParamsMismatch", (zkml.model_id,))
    done = zkml.transact(
        o.fulfillBatch(
            zkml.model_id,
            [terms(committed(zkml.oracle, r)) for r in ids],
            honest.proof,
            honest.instances,
        ),
        relayer,
    )
    (batch,) = zkml.events(zkml.oracle, "BatchFulfilled", done)
    assert list(batch.args.requestIds) == ids


def test_the_params_commitment_is_part_of_the_model_id(private_weights_built: BuildResult) -> None:
    m = private_weights_built.manifest
    config = ModelConfig.from_manifest(m, ZERO)
    assert config.params_count == 1 and config.params_offset == m.layout.params.offset == 0
    other = m.model_copy(update={"params_commitment": (m.params_commitment[0] + 1,)})
    assert ModelConfig.from_manifest(other, ZERO).model_id != config.model_id


def test_private_params_are_refused_at_registration(
    private_weights_built: BuildResult, tmp_path: Path
) -> None:
    m = private_weights_built.manifest.model_copy(
        update={"visibility": Visibility("public", "private", "public"), "params_commitment": ()}
    )
    with pytest.raises(
        InputError, match=r"private params commit to nothing.*--param-visibility hashed"
    ):
        ModelConfig.from_manifest(m, ZERO)
    # Through the CLI: one line naming the problem and the fix, nothing deployed.
    build_dir = shutil.copytree(private_weights_built.build_dir, tmp_path / "private")
    manifest = json.loads((build_dir / "manifest.json").read_text())
    manifest["visibility"]["param"] = "private"
    manifest["params_commitment"] = []
    (build_dir / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli("deploy", build_dir, "--deployments", tmp_path / "deployments")
    assert result.returncode != 0
    assert "private params commit to nothing" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_without_input_instances_is_refused(
    private_weights_built: BuildResult, zkml_oracle_deployment: OracleDeployer
) -> None:
    zkml = zkml_oracle_deployment(private_weights_built)
    config = ModelConfig.from_manifest(private_weights_built.manifest, zkml.deployment.verifier)
    blind = dataclasses.replace(config, input_count=0)
    fn = zkml.oracle.functions.registerModel(blind.as_tuple())
    assert zkml.reverts(fn, zkml.admin) == ("ZkmlOracleInvalidConfig", ("inputCount is zero",))


# --- requester-bound salted commitments -------------------------------------------------------


def test_a_copied_commitment_cannot_be_settled(
    bound_built: BuildResult,
    example: dict[str, Path],
    zkml_oracle_deployment: OracleDeployer,
    tmp_path: Path,
) -> None:
    """The front-run of issue 13: a copier requests with the applicant's commitment and
    submits the applicant's own proof for it first; the oracle refuses, and the applicant's
    request settles."""
    zkml = zkml_oracle_deployment(bound_built)
    applicant, copier, relayer = zkml.accounts[1], zkml.accounts[2], zkml.accounts[-1]
    row = calibration_rows(example)[0]
    binding = Binding.new(applicant)
    commitment = input_felts(bound_built.manifest, [row], binding)
    mine = ask(zkml, commitment, applicant)
    theirs = ask(zkml, commitment, copier)
    p = prove_rows(bound_built, [row], tmp_path / "proof.json", [binding])
    fn = zkml.oracle.functions.fulfill(committed(zkml.oracle, theirs), p.proof, p.instances)
    assert zkml.reverts(fn, copier) == ("ZkmlOracleRequesterMismatch", (theirs, int(applicant, 16)))
    zkml.transact(
        zkml.oracle.functions.fulfill(committed(zkml.oracle, mine), p.proof, p.instances), relayer
    )
    # The salt is what makes the commitment unguessable: same features, another salt, another
    # commitment; and the same salt for another requester is another commitment too.
    assert input_felts(bound_built.manifest, [row], Binding.new(applicant)) != commitment
    assert input_felts(bound_built.manifest, [row], Binding(binding.salt, copier)) != commitment


def test_a_requester_bound_build_needs_a_binding(
    bound_built: BuildResult, example: dict[str, Path]
) -> None:
    with pytest.raises(InputError, match="give a binding"):
        input_felts(bound_built.manifest, [calibration_rows(example)[0]])
    result = run_cli(
        "prove", bound_built.build_dir, example["input"], "--out", "/nonexistent/p.json"
    )
    assert (
        result.returncode != 0 and "binding" in result.stderr and "Traceback" not in result.stderr
    )


# --- publishing without revealing -------------------------------------------------------------


def test_the_public_part_verifies_registers_and_holds_no_weight(
    private_weights_built: BuildResult,
    example: dict[str, Path],
    zkml_chain: Chain,
    tmp_path: Path,
) -> None:
    built = private_weights_built
    public = publish(built.build_dir, tmp_path / "public")
    files = {p.name for p in public.rglob("*") if p.is_file()}
    assert {"manifest.json", "settings.json", "vk.key", "Verifier.json"} <= files
    assert not files & {"model.onnx", "model.compiled", "pk.key", "calibration.json"}
    # A proof made with the private part verifies with the public part alone...
    result = prove(built.build_dir, example["input"], tmp_path / "proof.json")
    assert verify(public, result.proof_path).valid
    # ... which registers the same model (the id covers the params commitment).
    deployed = deploy_and_register(
        zkml_chain, public, sender(zkml_chain, None), store=DeploymentStore(tmp_path / "records")
    )
    assert (
        deployed.model_id == ModelConfig.from_manifest(built.manifest, deployed.verifier).model_id
    )
    # Proving needs the private part: refused in one line.
    refused = run_cli("prove", public, example["input"], "--out", tmp_path / "p.json")
    assert refused.returncode != 0 and "incomplete" in refused.stderr
    assert "Traceback" not in refused.stderr
    # The check bites: a weight anywhere in the public part is refused.
    shutil.copyfile(built.build_dir / "model.onnx", public / "leak.bin")
    with pytest.raises(ArtifactError, match="holds the model's weights"):
        check_public(public, built.build_dir / "model.onnx", built.manifest.param_scale)
