"""The pytest plugin ``zkml_oracle.testing``: its fixtures used directly, and the five example
use cases (``examples/*/test_example.py``), run as a user runs their suite, in one pytest
process of their own with ``-p zkml_oracle.testing``, against a real Anvil with real proofs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from zkml_oracle.apps.examples import write_credit_mlp
from zkml_oracle.chain import Chain, LocalNode, rpc
from zkml_oracle.types import BuildResult

if TYPE_CHECKING:  # imported by pytest as a plugin below (importing it first skips rewriting)
    from zkml_oracle.testing import ModelFactory, OracleDeployer, OracleHarness


REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ("fraud_check", "credit_scoring", "zk_kyc", "smart_judge", "medical")
FULFILLED = 2
RECORD, REVERT = 0, 1


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_credit_mlp(tmp_path_factory.mktemp("plugin-model"))


@pytest.fixture(scope="module")
def built(credit: dict[str, Path], zkml_model_factory: ModelFactory) -> BuildResult:
    return zkml_model_factory(credit["model"], credit["calibration"])


@pytest.fixture(scope="module")
def zkml(built: BuildResult, zkml_oracle_deployment: OracleDeployer) -> OracleHarness:
    return zkml_oracle_deployment(built)


def test_anvil_and_chain_are_a_local_dev_chain(zkml_anvil: LocalNode, zkml_chain: Chain) -> None:
    assert zkml_anvil.proc.poll() is None
    assert int(rpc(zkml_anvil.url, "eth_chainId"), 16) == 31337
    assert zkml_chain.chain_id == 31337 and zkml_chain.is_local_dev
    assert zkml_chain.url == zkml_anvil.url


def test_the_model_factory_builds_once_with_a_dev_srs(
    credit: dict[str, Path], built: BuildResult, zkml_model_factory: ModelFactory
) -> None:
    assert built.manifest.dev_srs
    assert built.build_dir.is_relative_to(zkml_model_factory.root)
    again = zkml_model_factory(credit["model"], credit["calibration"])
    assert again is built


def test_the_deployment_registers_the_model_once(
    zkml: OracleHarness, built: BuildResult, zkml_oracle_deployment: OracleDeployer
) -> None:
    assert zkml_oracle_deployment(built) is zkml
    model = zkml.oracle.functions.getModel(zkml.model_id).call()
    assert model[1] is True and model[2] > 0  # active, registered
    assert model[0][0] == zkml.deployment.verifier
    record = zkml_oracle_deployment.store.load(zkml_oracle_deployment.chain)
    assert record.oracle is not None and record.oracle.address == zkml.oracle.address
    assert zkml.deployment.model_id in record.models
    assert zkml_oracle_deployment.store.root.is_dir()


def test_request_prove_fulfil_through_a_consumer(
    zkml: OracleHarness, credit: dict[str, Path]
) -> None:
    from zkml_oracle.testing import TransactionReverted

    requester, relayer = zkml.accounts[1], zkml.accounts[2]
    with zkml.snapshot():
        consumer = zkml.deploy("TestConsumer", zkml.oracle.address)
        # The consumer makes the request itself: it refuses other requesters' (issue 14).
        felts = zkml.input_felts(credit["input"])
        fn = consumer.functions.request(zkml.model_id, felts, 200_000, zkml.now() + 3600)
        (request_id,) = zkml.requests_in(zkml.transact(fn, requester, 7))
        proof = zkml.prove(credit["input"])
        assert zkml.prove(credit["input"]) is proof  # cached
        assert proof.values == [v / 2**zkml.output_scale for v in proof.outputs]
        done = zkml.fulfill(request_id, proof, sender=relayer)
        assert done.callback_succeeded and done.callback_error is None
        assert done.outputs == proof.outputs and done.gas_used > 0
        calls, last_id, model, outputs = consumer.functions.last().call()
        assert (calls, last_id, model, outputs) == (
            1,
            request_id,
            zkml.model_id,
            proof.outputs,
        )
        assert zkml.oracle.functions.requestStatus(request_id).call() == FULFILLED
        assert zkml.oracle.functions.pendingWithdrawal(relayer).call() == 7
        # A second answer is refused, with the oracle's custom error decoded.
        with pytest.raises(TransactionReverted) as refused:
            zkml.fulfill(request_id, proof, sender=relayer)
        assert refused.value.decoded == (
            "ZkmlOracleRequestNotPending",
            (request_id, FULFILLED),
        )


def test_a_failing_callback_is_reported(zkml: OracleHarness, credit: dict[str, Path]) -> None:
    with zkml.snapshot():
        consumer = zkml.deploy("TestConsumer", zkml.oracle.address)
        zkml.transact(consumer.functions.setMode(REVERT), zkml.admin)
        proof = zkml.prove(credit["input"])
        fn = consumer.functions.request(zkml.model_id, proof.input_felts, 200_000, zkml.now() + 600)
        (request_id,) = zkml.requests_in(zkml.transact(fn, zkml.accounts[1]))
        done = zkml.fulfill(request_id, proof)
        assert not done.callback_succeeded and done.callback_error is not None
        assert done.outputs == proof.outputs


def test_submit_pushes_a_round_and_snapshot_undoes_it(
    zkml: OracleHarness, credit: dict[str, Path]
) -> None:
    proof = zkml.prove(credit["input"])
    # Builds reproduce, so the session's credit model may be the one other tests pushed rounds
    # to on the same oracle: rounds count from whatever is there.
    latest_result = zkml.oracle.functions.latestResult(zkml.model_id)
    try:
        before = int(latest_result.call()[0])
    except Exception:
        assert zkml.call_reverts(latest_result) == ("ZkmlOracleNoResult", (zkml.model_id,))
        before = 0
    with zkml.snapshot():
        pushed = zkml.submit(proof)
        assert (pushed.round, pushed.outputs) == (before + 1, proof.outputs)
        latest = latest_result.call()
        assert (latest[0], latest[3]) == (before + 1, proof.outputs)
    if before:
        assert latest_result.call()[0] == before
    else:
        got = zkml.call_reverts(latest_result)
        assert got == ("ZkmlOracleNoResult", (zkml.model_id,))
    assert zkml.reverts(
        zkml.oracle.functions.requestInference(zkml.model_id, [1], zkml.admin, 0, zkml.now() + 60),
        zkml.admin,
    ) == ("ZkmlOracleWrongInputCount", (4, 1))


def test_a_batched_model_settles_requests_with_one_proof(
    credit: dict[str, Path],
    zkml_model_factory: ModelFactory,
    zkml_oracle_deployment: OracleDeployer,
    tmp_path: Path,
) -> None:
    from zkml_oracle.circuit import BuildOptions
    from zkml_oracle.testing import TransactionReverted

    built = zkml_model_factory(
        credit["model"], credit["calibration"], options=BuildOptions(batch=4)
    )
    zkml = zkml_oracle_deployment(built)
    flat = json.loads(credit["calibration"].read_text())["input_data"][0]
    samples = tmp_path / "three.json"
    samples.write_text(json.dumps({"input_data": [flat[:12]]}))
    with zkml.snapshot():
        proof = zkml.prove(samples)
        assert len(proof.slots) == 3 and proof.outputs == proof.slots[0][1]
        requester = zkml.accounts[1]
        ids = []
        for felts_, _ in proof.slots:
            fn = zkml.oracle.functions.requestInference(
                zkml.model_id, felts_, "0x" + "00" * 20, 0, zkml.now() + 600
            )
            ids.append(zkml.requests_in(zkml.transact(fn, requester))[0])
        first = zkml.fulfill_batch(ids[:2], proof)
        assert first.fulfilled == {ids[0]: proof.slots[0][1], ids[1]: proof.slots[1][1]}
        assert first.skipped == {}
        again = zkml.fulfill_batch(ids, proof)
        assert again.fulfilled == {ids[2]: proof.slots[2][1]}
        assert again.skipped == {ids[0]: "fulfilled", ids[1]: "fulfilled"}
        with pytest.raises(TransactionReverted) as refused:
            zkml.fulfill_batch(ids, proof)
        assert refused.value.decoded == ("ZkmlOracleNothingToSettle", ())


def test_a_transaction_that_does_not_revert_fails_reverts(zkml: OracleHarness) -> None:
    with zkml.snapshot(), pytest.raises(AssertionError, match="did not revert"):
        zkml.reverts(zkml.oracle.functions.setModelActive(zkml.model_id, True), zkml.admin)


@pytest.fixture(scope="module")
def examples_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    """Every ``examples/<name>/test_example.py`` in one pytest process with the plugin, as a
    user runs their suite (one process: the interpreter, Ape and the session's chain start
    once, not once per example). Returns each example's (test, outcome) pairs."""
    import xml.etree.ElementTree as ET

    tmp = tmp_path_factory.mktemp("examples")
    report = tmp / "report.xml"
    files = [str(REPO / "examples" / name / "test_example.py") for name in EXAMPLES]
    run = subprocess.run(
        [
            sys.executable, "-m", "pytest", *files, "-p", "zkml_oracle.testing",
            "-p", "no:cacheprovider", "-q", f"--basetemp={tmp / 'basetemp'}",
            f"--junitxml={report}",
        ],
        cwd=REPO,
        env={**os.environ, "APE_DATA_FOLDER": str(tmp / "ape")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert report.is_file(), run.stdout[-6000:] + run.stderr[-3000:]
    outcomes: dict[str, list[tuple[str, str]]] = {name: [] for name in EXAMPLES}
    for case in ET.parse(report).getroot().iter("testcase"):
        example = case.get("classname", "").split(".")[1]
        failed = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        text = "".join(child.get("message", "") + (child.text or "") for child in case)
        outcome = f"{failed[0]}: {text}" if failed else "passed"
        outcomes[example].append((case.get("name", ""), outcome))
    return outcomes


@pytest.mark.parametrize("name", EXAMPLES)
def test_example(name: str, examples_run: dict[str, list[tuple[str, str]]]) -> None:
    """``examples/<name>/test_example.py`` passes with the plugin: at least two tests, none
    failed, errored or skipped."""
    results = examples_run[name]
    assert len(results) >= 2, results
    assert all(outcome == "passed" for _, outcome in results), results
