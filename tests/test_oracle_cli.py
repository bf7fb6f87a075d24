"""The oracle from the command line (zkml_oracle.oracle via `zkml-oracle ...`), on the
toolkit's managed local Anvil, with real proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import calibration_rows, prove_rows, run_cli, write_json
from zkml_oracle import data, field
from zkml_oracle.oracle import ModelConfig, input_felts, proof_calldata
from zkml_oracle.prover import prove
from zkml_oracle.types import BuildResult, ProofResult


def _json(proc: object) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr  # type: ignore[attr-defined]
    return json.loads(proc.stdout)  # type: ignore[attr-defined,no-any-return]


def test_request_fulfil_status_submit_result_feed(
    built: BuildResult, proof: ProofResult, example: dict[str, Path], tmp_path: Path
) -> None:
    deployed = _json(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path))
    assert deployed["oracle"] and deployed["verifier"] and deployed["model_id"]
    assert deployed["gas"]["register"] > 0 and not deployed["reused"]["model"]
    model_id = deployed["model_id"]
    assert model_id == ModelConfig.from_manifest(built.manifest, deployed["verifier"]).model_id
    again = _json(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path))
    assert again["reused"] == {"verifier": True, "oracle": True, "model": True}

    negative = run_cli("request", model_id, example["input"], "--fee", "-5", cwd=tmp_path)
    assert negative.returncode == 2 and negative.stderr.count("\n") == 1
    assert negative.stderr.startswith("error: Invalid value for '--fee': -5")
    req = _json(
        run_cli("request", model_id, example["input"], "--fee", "1000", "--json", cwd=tmp_path)
    )
    rid = req["request_id"]
    lay = built.manifest.layout  # felts written as `prove` writes instances
    shown = [field.felt_to_hex(f) for f in proof.instances[lay.inputs.offset : lay.inputs.end]]
    assert req["input_felts"] == shown
    assert _json(run_cli("status", str(rid), "--json", cwd=tmp_path))["status"] == "pending"

    done = _json(
        run_cli("fulfill", str(rid), built.build_dir, proof.proof_path, "--json", cwd=tmp_path)
    )
    assert done["outputs"] == proof.outputs
    state = _json(run_cli("status", str(rid), "--json", cwd=tmp_path))
    assert state["status"] == "fulfilled" and state["outputs"] == proof.outputs
    assert state["fulfiller"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    plain = run_cli("status", str(rid), cwd=tmp_path).stdout  # the outputs its help promises
    assert plain.startswith(f"request {rid}: fulfilled; outputs {proof.outputs}")

    twice = run_cli("fulfill", str(rid), built.build_dir, proof.proof_path, cwd=tmp_path)
    assert twice.returncode == 2 and twice.stdout == ""
    assert twice.stderr.strip().splitlines() == [
        f"error: the oracle refused fulfill: ZkmlOracleRequestNotPending(requestId={rid}, "
        "status=Fulfilled): it is settled already: `zkml-oracle status ID` shows how, and the "
        "outputs"
    ]

    none_yet = run_cli("result", model_id, cwd=tmp_path)
    assert none_yet.returncode == 2 and none_yet.stderr.count("\n") == 1
    assert f"model {model_id} has no round yet: publish one with `zkml-oracle submit" in (
        none_yet.stderr
    )
    unread = _json(run_cli("feed", model_id, "--json", cwd=tmp_path))
    assert unread["latest"] is None and not unread["reused"]

    pushed = _json(run_cli("submit", built.build_dir, proof.proof_path, "--json", cwd=tmp_path))
    assert pushed["round"] == 1 and pushed["outputs"] == proof.outputs
    latest = _json(run_cli("result", model_id, "--json", cwd=tmp_path))
    assert latest["round"] == 1 and latest["outputs"] == proof.outputs
    assert latest["input_hash"].startswith("0x") and latest["updated_at"] > 0

    feed = _json(run_cli("feed", model_id, "--output", "1", "--json", cwd=tmp_path))
    assert feed["decimals"] == 8 and feed["feed"].startswith("0x") and not feed["reused"]
    assert "output 1" in feed["description"]
    assert feed["latest"]["round"] == 1
    assert feed["latest"]["answer"] == round(proof.outputs[0][1] * 10**8)
    # Deployed once per model and output: asked again, the same adapter is read.
    again_feed = _json(run_cli("feed", model_id, "--output", "1", "--json", cwd=tmp_path))
    assert again_feed["reused"] and again_feed["feed"] == feed["feed"]
    assert again_feed["latest"] == feed["latest"] and unread["feed"] != feed["feed"]


def test_a_request_for_another_input_is_refused(
    built: BuildResult, proof: ProofResult, tmp_path: Path
) -> None:
    model_id = _json(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path))["model_id"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"input_data": [[0.5, -0.25, 0.125, 1.0]]}))
    rid = _json(run_cli("request", model_id, other, "--json", cwd=tmp_path))["request_id"]
    refused = run_cli("fulfill", str(rid), built.build_dir, proof.proof_path, cwd=tmp_path)
    assert refused.returncode == 2
    assert f"ZkmlOracleInputMismatch(requestId={rid})" in refused.stderr


def test_unknown_model_and_request_are_clear(built: BuildResult, tmp_path: Path) -> None:
    _json(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path))
    proc = run_cli("status", "999", cwd=tmp_path)
    assert proc.returncode == 2 and "no request 999" in proc.stderr
    proc = run_cli("result", "0x" + "ab" * 32, cwd=tmp_path)
    assert proc.returncode == 2 and "is not recorded" in proc.stderr


@pytest.mark.slow
def test_a_hashed_input_request_commits_to_the_proofs_input_hash(
    hashed_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    """ZK-KYC's building block: the requester's Poseidon commitment is the proof's instance."""
    proof = prove(hashed_built.build_dir, example["input"], tmp_path / "p.json")
    sample = data.load(example["input"])
    felts = input_felts(hashed_built.manifest, sample)
    lay = hashed_built.manifest.layout
    assert len(felts) == lay.inputs.count == 1
    assert felts == proof.instances[lay.inputs.offset : lay.inputs.end]
    _, instances = proof_calldata(proof.proof_path)
    assert instances == proof.instances


def test_one_proof_settles_a_batch_from_the_command_line(
    batch_built: BuildResult, built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    model_id = _json(run_cli("deploy", batch_built.build_dir, "--json", cwd=tmp_path))["model_id"]
    rows = calibration_rows(example)[:4]
    rids = []
    for k, row in enumerate(rows):
        sample = write_json(tmp_path / f"in{k}.json", {"input_data": [row]})
        rids.append(
            _json(run_cli("request", model_id, sample, "--json", cwd=tmp_path))["request_id"]
        )
    proof = prove_rows(batch_built, rows[:3], tmp_path / "batch.json")  # 3 of 4 slots used
    ids = [str(r) for r in rids[:3]]

    # Another model's build directory is refused before anything is sent, naming both models.
    wrong = run_cli("fulfill", *ids, built.build_dir, proof.proof_path, cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert f"request {ids[0]} is for model {model_id}, but {built.build_dir} builds " in (
        wrong.stderr
    )

    done = _json(
        run_cli("fulfill", *ids, batch_built.build_dir, proof.proof_path, "--json", cwd=tmp_path)
    )
    assert done["fulfilled"] == dict(zip(ids, proof.samples, strict=True))
    assert done["outputs"] == proof.samples  # one entry per id given, in order
    assert done["skipped"] == {} and done["gas_per_request"] == done["gas_used"] // 3
    for rid, outputs in zip(ids, proof.samples, strict=True):
        state = _json(run_cli("status", rid, "--json", cwd=tmp_path))
        assert state["status"] == "fulfilled" and state["outputs"] == outputs

    # Settled already: nothing left, refused before paying for a verification.
    again = run_cli("fulfill", *ids, batch_built.build_dir, proof.proof_path, cwd=tmp_path)
    assert again.returncode == 2 and "ZkmlOracleNothingToSettle" in again.stderr
    # A request named in a slot that holds another input refuses the whole batch.
    swapped = run_cli(
        "fulfill", ids[0], str(rids[3]), batch_built.build_dir, proof.proof_path, cwd=tmp_path
    )
    assert (
        swapped.returncode == 2
        and f"ZkmlOracleInputMismatch(requestId={rids[3]})" in swapped.stderr
    )

    # One request on a batched model: slot 0 of a padded proof, through plain `fulfill`.
    single = prove_rows(batch_built, rows[3:], tmp_path / "single.json")
    one = _json(
        run_cli(
            "fulfill",
            str(rids[3]),
            batch_built.build_dir,
            single.proof_path,
            "--json",
            cwd=tmp_path,
        )
    )
    assert one["outputs"] == single.outputs

    # The push feed: one round per batch (the last sample), every sample indexed.
    pushed = _json(
        run_cli("submit", batch_built.build_dir, proof.proof_path, "--json", cwd=tmp_path)
    )
    assert pushed["slots"] == 3 and pushed["round"] == 1 and pushed["outputs"] == proof.samples[2]
