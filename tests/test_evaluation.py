"""Verifiable evaluation: the evaluation circuit against onnxruntime, the test set commitment,
and the attestation registry on a real Anvil with real proofs (docs/evaluation.md).

One evaluator (the bundled credit MLP, chunks of CHUNK samples) and one evaluation of a
12-sample test set (two chunks: 8 + 4 padded) are built per module. The chain tests run in
file order: the refusals first, on a test set whose attestation is not yet recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import run_cli
from zkml_oracle.apps import evaluation as ev
from zkml_oracle.chain import attestations as att
from zkml_oracle.chain.oracle import input_hash, proof_calldata
from zkml_oracle.exceptions import FidelityError, InputError
from zkml_oracle.testing import AttestationHarness, OracleDeployer, OracleHarness
from zkml_oracle.types import BuildResult, Manifest

CHUNK = 8
SAMPLES = 12


def _count_with_onnxruntime(model: Path, test_set: ev.TestSet) -> int:
    """Independently of the toolkit: onnxruntime's argmax against the labels."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model))
    right = 0
    for row, label in zip(test_set.features, test_set.labels, strict=True):
        scores = session.run(None, {"features": np.array([row], dtype=np.float32)})[0][0]
        right += int(scores.argmax() == label)
    return right


@pytest.fixture(scope="module")
def evaluator(example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> ev.Evaluator:
    out = tmp_path_factory.mktemp("evaluators") / "credit"
    options = ev.EvaluatorOptions(chunk=CHUNK, dev_srs=True)
    return ev.build_evaluator(example["model"], example["calibration"], out, options)


@pytest.fixture(scope="module")
def test_set_file(example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SAMPLES rows; labels are the model's class except every third one (flipped)."""
    import onnxruntime as ort

    rng = np.random.default_rng(17)
    x = rng.normal(size=(SAMPLES, 4)).round(4)
    session = ort.InferenceSession(str(example["model"]))
    pred = [
        int(session.run(None, {"features": x[i : i + 1].astype(np.float32)})[0][0].argmax())
        for i in range(SAMPLES)
    ]
    labels = [float(1 - p if i % 3 == 0 else p) for i, p in enumerate(pred)]
    path = tmp_path_factory.mktemp("testsets") / "test_set.json"
    ev.TestSet(x.tolist(), labels).save(path)
    return path


@pytest.fixture(scope="module")
def opening_file(
    evaluator: ev.Evaluator, test_set_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    opening = ev.commit_testset(evaluator.build_dir, test_set_file)
    return ev.write_opening(opening, tmp_path_factory.mktemp("openings") / "opening.json")


@pytest.fixture(scope="module")
def evaluation(
    evaluator: ev.Evaluator, opening_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> ev.Evaluation:
    return ev.evaluate(evaluator.build_dir, opening_file, tmp_path_factory.mktemp("evaluation"))


# --- off-chain ----------------------------------------------------------------------------


def test_proven_count_equals_onnxruntimes(
    evaluation: ev.Evaluation, example: dict[str, Path], test_set_file: Path
) -> None:
    expected = _count_with_onnxruntime(example["model"], ev.TestSet.load(test_set_file))
    assert 0 < expected < SAMPLES  # the labels make a real accuracy, not 0 or 100%
    assert evaluation.correct == expected == evaluation.reference_correct
    assert evaluation.samples == SAMPLES
    assert [c.samples for c in evaluation.chunks] == [CHUNK, SAMPLES - CHUNK]  # padding uncounted
    for chunk in evaluation.chunks:
        _, instances = proof_calldata(chunk.proof_path)
        assert instances == [chunk.hash, chunk.correct, chunk.samples]


def test_commitment_is_salted_and_binds_the_chunks(
    evaluator: ev.Evaluator, test_set_file: Path, evaluation: ev.Evaluation
) -> None:
    again = ev.commit_testset(evaluator.build_dir, test_set_file)
    assert again.commitment.test_set_id != evaluation.commitment.test_set_id  # fresh salt
    assert again.commitment.samples == SAMPLES
    c = evaluation.commitment
    assert c.chunk_hashes == tuple(chunk.hash for chunk in evaluation.chunks)
    assert c.test_set_id == ev.test_set_id(c.chunk_hashes)
    seeded = [ev.commit_testset(evaluator.build_dir, test_set_file, salt_seed=5) for _ in "ab"]
    assert seeded[0].commitment == seeded[1].commitment


def test_opening_is_private_to_its_owner(opening_file: Path) -> None:
    assert opening_file.stat().st_mode & 0o077 == 0


def test_an_edited_opening_is_refused(
    evaluator: ev.Evaluator, opening_file: Path, tmp_path: Path
) -> None:
    doc = json.loads(opening_file.read_text())
    doc["chunks"][0]["tensor"][-2] = 1 - doc["chunks"][0]["tensor"][-2]  # flip a label
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="does not match its own commitment"):
        ev.evaluate(evaluator.build_dir, edited, tmp_path / "out")
    assert not (tmp_path / "out" / ev.EVALUATION_NAME).exists()


def test_a_circuit_that_disagrees_with_onnxruntime_is_refused(tmp_path: Path) -> None:
    """scores = [x, -x]: onnxruntime picks class 1 for x = -1e-6, the circuit sees x quantized
    to 0, a tie it resolves to class 0. The evaluator's fidelity check refuses the build."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])],
        "sign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [
            numpy_helper.from_array(np.array([[1.0, -1.0]], np.float32), "w"),
            numpy_helper.from_array(np.zeros(2, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "sign.onnx"))
    values = [-1e-6 * (i + 1) for i in range(8)] + [0.5, -0.5, 1.0, -1.0, 0.25, -0.25, 0.75, -0.75]
    (tmp_path / "cal.json").write_text(json.dumps({"input_data": [values]}))
    out = tmp_path / "evaluator"
    with pytest.raises(FidelityError, match="counts differently from onnxruntime"):
        ev.build_evaluator(
            tmp_path / "sign.onnx",
            tmp_path / "cal.json",
            out,
            ev.EvaluatorOptions(chunk=4, dev_srs=True),
        )
    assert not out.exists()


def test_bad_test_sets_are_refused_in_one_line(evaluator: ev.Evaluator, tmp_path: Path) -> None:
    cases: dict[str, Any] = {
        "label": ({"features": [[0.1, 0.2, 0.3, 0.4]], "labels": [2]}, "not a class index"),
        "width": ({"features": [[0.1, 0.2]], "labels": [1]}, "has 2 values"),
        "count": ({"features": [[0.1, 0.2, 0.3, 0.4]], "labels": []}, "as many labels"),
    }
    for name, (doc, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(InputError, match=message):
            ev.commit_testset(evaluator.build_dir, path)


def _single_score_model(example: dict[str, Path], out: Path) -> Path:
    """The credit MLP with its first score only: a single-output model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(example["model"]))
    for i, t in enumerate(model.graph.initializer):
        if t.name in ("w2", "b2"):
            kept = numpy_helper.to_array(t)[..., :1].copy()
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(kept, t.name))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 1
    onnx.save(model, str(out))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("metric", "parameter"), [("threshold", 0.0), ("within", 0.2)])
def test_single_score_metrics_count_like_onnxruntime(
    metric: str, parameter: float, example: dict[str, Path], tmp_path: Path
) -> None:
    import onnxruntime as ort

    model = _single_score_model(example, tmp_path / "single.onnx")
    options = ev.EvaluatorOptions(metric=metric, parameter=parameter, chunk=CHUNK, dev_srs=True)
    evaluator = ev.build_evaluator(model, example["calibration"], tmp_path / "ev", options)
    rng = np.random.default_rng(23)
    x = rng.normal(size=(SAMPLES, 4)).round(4)
    session = ort.InferenceSession(str(model))
    scores = [
        float(session.run(None, {"features": x[i : i + 1].astype(np.float32)})[0][0][0])
        for i in range(SAMPLES)
    ]
    if metric == "threshold":
        labels = [float((s > parameter) != (i % 4 == 0)) for i, s in enumerate(scores)]
        expected = sum(1 for i in range(SAMPLES) if i % 4)
    else:
        labels = [s + (0.5 if i % 4 == 0 else 0.05) for i, s in enumerate(scores)]
        expected = sum(1 for i in range(SAMPLES) if i % 4)
    ev.TestSet(x.tolist(), labels).save(tmp_path / "ts.json")
    opening = ev.write_opening(
        ev.commit_testset(evaluator.build_dir, tmp_path / "ts.json"), tmp_path / "opening.json"
    )
    result = ev.evaluate(evaluator.build_dir, opening, tmp_path / "out")
    assert result.correct == result.reference_correct == expected
    assert result.samples == SAMPLES


# --- on-chain -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zkml(built: BuildResult, zkml_oracle_deployment: OracleDeployer) -> OracleHarness:
    """The credit MLP (the evaluator's model file) registered on the oracle."""
    return zkml_oracle_deployment(built)


@pytest.fixture(scope="module")
def chain_setup(
    zkml: OracleHarness,
    zkml_attestations: AttestationHarness,
    evaluator: ev.Evaluator,
    evaluation: ev.Evaluation,
) -> dict[str, Any]:
    """The lender (accounts[1]) publishes the test set; the evaluator is registered."""
    lender = zkml.accounts[1]
    tsid = zkml_attestations.publish(zkml, evaluation.commitment, sender=lender)
    eid = zkml_attestations.register(zkml, evaluator.build_dir)
    proofs = [proof_calldata(c.proof_path) for c in evaluation.chunks]
    return {"lender": lender, "test_set": tsid, "evaluator": eid, "proofs": proofs}


def _submit(zkml: OracleHarness, reg: Any, eid: bytes, tsid: bytes, chunk: int, proof: Any) -> Any:
    return reg.functions.submitChunk(eid, tsid, chunk, proof[0], proof[1])


def _refused(zkml: OracleHarness, fn: Any, sender: str) -> tuple[str, tuple[Any, ...]]:
    """The decoded custom error of ``fn`` (eth_call), and the same transaction mined with a
    fixed gas limit: it must revert on-chain too."""
    decoded = zkml.call_reverts(fn, {"from": sender})
    tx = fn.transact({"from": sender, "gas": 5_000_000})
    assert zkml.web3.eth.wait_for_transaction_receipt(tx).status == 0
    return decoded


def test_a_tampered_count_is_refused(
    zkml: OracleHarness, zkml_attestations: AttestationHarness, chain_setup: dict[str, Any]
) -> None:
    reg, eid, tsid = zkml_attestations.registry, chain_setup["evaluator"], chain_setup["test_set"]
    proof, instances = chain_setup["proofs"][0]
    relayer = zkml.accounts[-1]
    fewer = [instances[0], instances[1] - 1, instances[2]]
    more = [instances[0], instances[1] + 1, instances[2]]
    for tampered in (fewer, more):
        assert _refused(zkml, _submit(zkml, reg, eid, tsid, 0, (proof, tampered)), relayer) == (
            "ZkmlAttestationsInvalidProof",
            (eid,),
        )
    too_many = [instances[0], instances[2] + 1, instances[2]]
    assert _refused(zkml, _submit(zkml, reg, eid, tsid, 0, (proof, too_many)), relayer) == (
        "ZkmlAttestationsBadCounts",
        (instances[2] + 1, instances[2]),
    )
    assert reg.functions.progress(eid, tsid).call()[0] == 0


def test_a_proof_cannot_be_recorded_against_another_test_set(
    zkml: OracleHarness,
    zkml_attestations: AttestationHarness,
    chain_setup: dict[str, Any],
    evaluator: ev.Evaluator,
    test_set_file: Path,
) -> None:
    """The same samples committed again (new salt) are another test set; the first one's proof
    is refused there, whether its instances name the first hash or claim the second."""
    other = ev.commit_testset(evaluator.build_dir, test_set_file).commitment
    reg, eid, relayer = zkml_attestations.registry, chain_setup["evaluator"], zkml.accounts[-1]
    other_id = zkml_attestations.publish(zkml, other, sender=chain_setup["lender"])
    proof, instances = chain_setup["proofs"][0]
    name, args = _refused(zkml, _submit(zkml, reg, eid, other_id, 0, (proof, instances)), relayer)
    assert (name, args[0], args[1]) == ("ZkmlAttestationsChunkMismatch", other_id, 0)
    claimed = [other.chunk_hashes[0], *instances[1:]]
    assert _refused(zkml, _submit(zkml, reg, eid, other_id, 0, (proof, claimed)), relayer) == (
        "ZkmlAttestationsInvalidProof",
        (eid,),
    )
    # nor as another chunk of its own test set
    name, _ = _refused(
        zkml, _submit(zkml, reg, eid, chain_setup["test_set"], 1, (proof, instances)), relayer
    )
    assert name == "ZkmlAttestationsChunkMismatch"


def test_an_evaluator_cannot_be_registered_for_another_model(
    zkml: OracleHarness,
    zkml_attestations: AttestationHarness,
    zkml_oracle_deployment: OracleDeployer,
    other_built: BuildResult,
    evaluator: ev.Evaluator,
    chain_setup: dict[str, Any],
) -> None:
    """The registry checks the evaluator's model digests against the oracle's for the model
    id: the credit evaluator cannot be registered for a model with other weights."""
    other = zkml_oracle_deployment(other_built)
    reg = zkml_attestations.registry
    config = tuple(reg.functions.getEvaluator(chain_setup["evaluator"]).call()[1])
    name, args = _refused(zkml, reg.functions.registerEvaluator(other.model_id, config), zkml.admin)
    assert (name, args[0]) == ("ZkmlAttestationsDigestMismatch", other.model_id)
    with pytest.raises(InputError, match="another model file"):
        att.evaluator_config(evaluator, other_built.manifest, zkml.admin)
    # and only the registrar registers evaluators
    name, _ = _refused(
        zkml, reg.functions.registerEvaluator(zkml.model_id, config), zkml.accounts[2]
    )
    assert name == "AccessControlUnauthorizedAccount"


def test_the_attestation_is_recorded(
    zkml: OracleHarness,
    zkml_attestations: AttestationHarness,
    chain_setup: dict[str, Any],
    evaluation: ev.Evaluation,
) -> None:
    reg, tsid = zkml_attestations.registry, chain_setup["test_set"]
    a = zkml_attestations.attest(zkml, evaluation)
    assert (a.correct, a.samples) == (evaluation.correct, SAMPLES)
    assert a.test_set_owner == chain_setup["lender"]
    assert not a.committed_in_advance  # published after the model was registered
    assert a.metric == "argmax"
    bps = evaluation.correct * 10_000 // SAMPLES
    assert reg.functions.accuracyBps(zkml.model_id, tsid).call() == bps
    assert reg.functions.meetsAccuracy(zkml.model_id, tsid, bps).call()
    assert not reg.functions.meetsAccuracy(zkml.model_id, tsid, bps + 1).call()
    # once recorded, never again (a valid proof would say the same)
    proof = chain_setup["proofs"][0]
    name, _ = _refused(
        zkml, _submit(zkml, reg, chain_setup["evaluator"], tsid, 0, proof), zkml.accounts[-1]
    )
    assert name == "ZkmlAttestationsAlreadyAttested"


def test_an_attestation_costs_under_a_million_gas(
    zkml: OracleHarness, zkml_attestations: AttestationHarness, chain_setup: dict[str, Any]
) -> None:
    logs = zkml_attestations.registry.events.ChunkVerified().get_logs(from_block=0)
    assert len(logs) == 2
    for log in logs:
        assert zkml.web3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"] < 1_000_000


def test_a_lender_acts_only_on_attested_models(
    zkml: OracleHarness,
    zkml_attestations: AttestationHarness,
    zkml_oracle_deployment: OracleDeployer,
    other_built: BuildResult,
    chain_setup: dict[str, Any],
    evaluation: ev.Evaluation,
    example: dict[str, Path],
) -> None:
    """AttestedCreditPool takes a score only from a model with enough verified accuracy on the
    lender's own test set."""
    lender, tsid = chain_setup["lender"], chain_setup["test_set"]
    reg = zkml_attestations.registry
    bps = evaluation.correct * 10_000 // SAMPLES
    args = (zkml.oracle.address, reg.address, tsid)
    with pytest.raises(AssertionError, match="AttestedCreditPoolNotLendersTestSet"):
        zkml.deploy("AttestedCreditPool", *args, bps, 1, 0, sender=zkml.accounts[2])
    pool = zkml.deploy("AttestedCreditPool", *args, bps, 1, 0, sender=lender)
    strict = zkml.deploy("AttestedCreditPool", *args, bps + 1, 1, 0, sender=lender)

    proof = zkml.prove(example["input"])
    zkml.submit(proof)
    key = bytes.fromhex(input_hash(proof.input_felts)[2:])
    receipt = zkml.transact(pool.functions.decide(zkml.model_id, key), zkml.accounts[3])
    (decided,) = zkml.events(pool, "CreditDecided", receipt)
    assert decided.args.score == proof.outputs[1]
    assert decided.args.approved == (proof.outputs[1] > 0)
    assert decided.args.accuracyBps == bps

    assert _refused(zkml, strict.functions.decide(zkml.model_id, key), zkml.accounts[3]) == (
        "AttestedCreditPoolModelNotAttested",
        (zkml.model_id, bps + 1),
    )
    other = zkml_oracle_deployment(other_built)  # a model with no attestation
    assert _refused(zkml, pool.functions.decide(other.model_id, key), zkml.accounts[3]) == (
        "AttestedCreditPoolModelNotAttested",
        (other.model_id, bps),
    )


@pytest.mark.slow
def test_cli_commit_evaluate_attest_card(
    zkml: OracleHarness,
    zkml_attestations: AttestationHarness,
    evaluator: ev.Evaluator,
    test_set_file: Path,
    tmp_path: Path,
) -> None:
    """The four commands as a user runs them, against the session's chain records."""
    deployer = zkml_attestations._deployer
    chain = ["--rpc-url", zkml.url, "--deployments", str(deployer.store.root)]
    opening = tmp_path / "opening.json"
    done = run_cli(
        "commit-testset",
        evaluator.build_dir,
        test_set_file,
        "-o",
        opening,
        "--publish",
        *chain,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    committed = json.loads(done.stdout)
    assert committed["published"]["samples"] == SAMPLES
    out = tmp_path / "evaluation"
    done = run_cli("evaluate", evaluator.build_dir, opening, "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["correct"] == result["reference_correct"]
    model_id = zkml.deployment.model_id
    done = run_cli("attest", model_id, out, *chain, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["attestation"]["correct"] == result["correct"]
    done = run_cli("card", model_id, *chain, "--json")
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    ids = {a["test_set_id"] for a in card["attestations"]}
    assert committed["commitment"]["test_set_id"] in ids
    text = run_cli("card", model_id, *chain)
    assert "accuracy" in text.stdout and text.returncode == 0
    bad = run_cli("card", "0x" + "00" * 32, *chain)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_manifest_of_the_evaluator(evaluator: ev.Evaluator) -> None:
    m: Manifest = evaluator.manifest
    assert m.layout.total == ev.INSTANCES
    assert m.visibility.input == "hashed" and m.visibility.param == "fixed"
    assert m.verifier is not None and not m.verifier.exceeds_eip170
