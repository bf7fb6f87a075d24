"""The oracle from the command line (zkml_oracle.chain.oracle via `zkml-oracle ...`), on the
toolkit's managed local Anvil, with real proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import calibration_rows, prove_rows, run_cli, write_json
from zkml_oracle import field
from zkml_oracle.chain import ChainOptions, LocalNode, connect
from zkml_oracle.chain.contracts import contract
from zkml_oracle.chain.contracts import oracle as oracle_artifact
from zkml_oracle.chain.deploy import deploy_contract
from zkml_oracle.chain.oracle import (
    ModelConfig,
    Oracle,
    OracleRefused,
    VerifierMismatch,
    check_verifier,
    input_felts,
    proof_calldata,
    set_feed_open,
    set_fulfiller,
    set_settings,
    settings,
)
from zkml_oracle.circuit import data
from zkml_oracle.exceptions import InputError
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
    # A request named in a slot that holds another input refuses the whole batch: its
    # commitment, recomputed with that slot's input, is not the one it made (issue 16).
    swapped = run_cli(
        "fulfill", ids[0], str(rids[3]), batch_built.build_dir, proof.proof_path, cwd=tmp_path
    )
    assert (
        swapped.returncode == 2
        and f"ZkmlOracleRequestMismatch(requestId={rids[3]})" in swapped.stderr
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


def test_the_admin_sets_the_hardening_settings(built: BuildResult, tmp_path: Path) -> None:
    """`admin settings / fulfiller / publisher / open-feed`: each shows what is now in force;
    a refused value is one line; `check-verifier` confirms the registered verifier."""
    model_id = _json(run_cli("deploy", built.build_dir, "--json", cwd=tmp_path))["model_id"]
    day = 24 * 3600
    args = ("admin", "settings", "--grace-period", "60", "--max-ttl", str(day), "--json")
    assert _json(run_cli(*args, cwd=tmp_path)) == {
        "max_callback_gas_limit": 2_500_000,  # kept
        "fulfiller_grace_period": 60,
        "max_request_ttl": day,
    }
    relayer = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # Anvil's second dev account
    granted = _json(run_cli("admin", "fulfiller", relayer.lower(), "--json", cwd=tmp_path))
    assert granted == {"address": relayer, "fulfiller": True}
    published = _json(run_cli("admin", "publisher", model_id, relayer, "--json", cwd=tmp_path))
    assert published == {"model_id": model_id, "address": relayer, "publisher": True, "open": False}
    opened = _json(run_cli("admin", "open-feed", model_id, "--json", cwd=tmp_path))
    assert opened == {"model_id": model_id, "open": True}

    refused = run_cli("admin", "settings", "--max-callback-gas", "99000000", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "error: the oracle refused setSettings: "
        "ZkmlOracleInvalidSettings(reason='maxCallbackGasLimit above the cap')"
    ]
    checked = _json(run_cli("check-verifier", model_id, built.build_dir, "--json", cwd=tmp_path))
    assert checked["matches"] is True and checked["model_id"] == model_id


def test_only_the_admin_changes_the_settings(anvil: LocalNode) -> None:
    """The typed API refuses a signer without DEFAULT_ADMIN_ROLE up front, in one line."""
    import ape

    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        admin, other = ape.accounts.test_accounts[:2]
        address, _, _ = deploy_contract(chain, admin, oracle_artifact(), admin.address, False)
        oracle = Oracle(chain, address)
        before = settings(oracle)
        expected = (
            f"{other.address} is not the oracle's admin (DEFAULT_ADMIN_ROLE at {address}): "
            "sign with the admin's account (--account)"
        )
        with pytest.raises(OracleRefused) as refused:
            set_settings(oracle, other, fulfiller_grace_period=1)
        assert str(refused.value) == expected
        with pytest.raises(OracleRefused, match="is not the oracle's admin"):
            set_fulfiller(oracle, other, str(other.address), True)
        with pytest.raises(OracleRefused, match="is not the oracle's admin"):
            set_feed_open(oracle, other, "0x" + "00" * 32, True)
        assert settings(oracle) == before
        with pytest.raises(InputError) as bad:
            set_fulfiller(oracle, admin, "0x1234", True)
        assert str(bad.value) == "'0x1234' is not an address: give 0x and 40 hex digits"
        assert set_settings(oracle, admin, fulfiller_grace_period=30).fulfiller_grace_period == 30


def test_a_verifier_that_is_not_the_builds_is_reported(
    anvil: LocalNode, built: BuildResult
) -> None:
    """What the registration scan cannot see: an immutable solc contract that accepts any
    proof (the stand-in verifier), registered with the build's config. The off-chain check,
    which regenerates ezkl's verifier from the build's verifying key, reports it."""
    import ape

    from tests.oracle_helpers import model_config, model_id

    with connect(ChainOptions(rpc_url=anvil.url)) as chain:
        admin = ape.accounts.test_accounts[0]
        address, _, _ = deploy_contract(chain, admin, oracle_artifact(), admin.address, False)
        mock, _, _ = deploy_contract(chain, admin, contract("MockVerifier"))
        oracle = Oracle(chain, address)
        config = model_config(built, mock)
        oracle.send("registerModel", config, sender=admin)
        model = "0x" + model_id(config).hex()
        with pytest.raises(VerifierMismatch) as refused:
            check_verifier(oracle, model, built.build_dir)
        message = str(refused.value)
        assert message.startswith(f"the verifier of model {model} at {mock} is not ezkl's")
        assert message.endswith("do not trust its results") and "\n" not in message
