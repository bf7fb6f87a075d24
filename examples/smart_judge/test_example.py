"""Smart judge end to end: SmartJudgeDao executes a voted proposal only after a verified
"approve" judgement of the proposal's features by the judge model.

Run with the plugin: ``pytest examples/smart_judge/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zkml_oracle.testing import HOUR, ModelFactory, OracleDeployer, OracleHarness

from .model import write_model

ETHER = 10**18
FEE = 10**15
APPROVE = 1
# SmartJudgeDao.ProposalState
SUCCEEDED, JUDGING, APPROVED, REJECTED, EXECUTED = 3, 4, 5, 6, 7


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_model(tmp_path_factory.mktemp("judge"))


@pytest.fixture(scope="module")
def zkml(
    files: dict[str, Path],
    zkml_model_factory: ModelFactory,
    zkml_oracle_deployment: OracleDeployer,
) -> OracleHarness:
    return zkml_oracle_deployment(zkml_model_factory(files["model"], files["calibration"]))


def argmax(values: list[int]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def judged_proposal(zkml: OracleHarness, input_file: Path, amount: int) -> tuple[Any, int, int]:
    """A DAO (alice, bob, carol; quorum 2) holding 1 ether; a payment of ``amount`` to the
    grantee described by ``input_file``, voted through and sent to the judge."""
    alice, bob, carol, grantee = zkml.accounts[1:5]
    dao = zkml.deploy(
        "SmartJudgeDao",
        zkml.oracle.address,
        zkml.model_id,
        APPROVE,
        [alice, bob, carol],
        2,
        HOUR,
        HOUR,
    )
    zkml.fund(dao.address, ETHER)
    propose = dao.functions.propose(grantee, amount, b"", zkml.input_felts(input_file), "grant")
    (created,) = zkml.events(dao, "ProposalCreated", zkml.transact(propose, alice))
    pid = int(created.args.proposalId)
    for member in (alice, bob):
        zkml.transact(dao.functions.vote(pid, True), member)
    zkml.advance(HOUR + 1)
    assert dao.functions.state(pid).call() == SUCCEEDED
    receipt = zkml.transact(dao.functions.requestJudgement(pid), carol, FEE)
    (request_id,) = zkml.requests_in(receipt)
    assert dao.functions.state(pid).call() == JUDGING
    return dao, pid, request_id


def test_a_sound_proposal_is_approved_and_executed(
    zkml: OracleHarness, files: dict[str, Path]
) -> None:
    grantee = zkml.accounts[4]
    with zkml.snapshot():
        dao, pid, request_id = judged_proposal(zkml, files["sound"], ETHER // 4)
        proof = zkml.prove(files["sound"])
        assert argmax(proof.outputs) == APPROVE
        done = zkml.fulfill(request_id, proof)
        assert done.callback_succeeded
        (judged,) = zkml.events(dao, "JudgementReceived", done.receipt)
        assert (judged.args.proposalId, judged.args.approved) == (pid, True)
        assert dao.functions.state(pid).call() == APPROVED
        before = zkml.balance(grantee)
        zkml.transact(dao.functions.execute(pid), zkml.accounts[3])
        assert zkml.balance(grantee) - before == ETHER // 4
        assert dao.functions.state(pid).call() == EXECUTED


def test_a_risky_proposal_is_rejected(zkml: OracleHarness, files: dict[str, Path]) -> None:
    with zkml.snapshot():
        dao, pid, request_id = judged_proposal(zkml, files["risky"], ETHER // 2)
        proof = zkml.prove(files["risky"])
        assert argmax(proof.outputs) != APPROVE
        done = zkml.fulfill(request_id, proof)
        (judged,) = zkml.events(dao, "JudgementReceived", done.receipt)
        assert (judged.args.verifiedClass, judged.args.approved) == (argmax(proof.outputs), False)
        assert dao.functions.state(pid).call() == REJECTED
        got = zkml.reverts(dao.functions.execute(pid), zkml.accounts[3])
        assert got == ("SmartJudgeDaoUnexpectedState", (pid, REJECTED))
        assert zkml.balance(dao.address) == ETHER
