"""Smart judge end to end: an OpenZeppelin Governor whose timelock (ZkmlJudgedTimelock)
queues and executes a voted proposal only with a ZkmlJudge's final favourable ruling on its
exact actions; the judge's panel scores the input TreasuryProposalInput derives from those
actions, with real proofs of the judge model (the relayer serves the panel's request).

Run with the plugin: ``pytest examples/smart_judge/test_example.py -p zkml_oracle.testing``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from zkml_oracle import field
from zkml_oracle.chain import contracts, rpc
from zkml_oracle.chain.oracle import ZERO_ADDRESS, RequestStatus
from zkml_oracle.testing import ModelFactory, OracleDeployer, OracleHarness

from .model import write_model

ETHER = 10**18
FEE = 10**15
ZERO = ZERO_ADDRESS
AT_LEAST, AT_MOST = 0, 1
FAV, UNFAV = 1, 2
SUCCEEDED, QUEUED, EXECUTED = 4, 5, 7  # Governor.ProposalState
MIN_DELAY = 60
TREASURY = 10 * ETHER
SOUND_PROFILE = (1_000_000, 900_000, 1_100_000)  # the recipient of model.SOUND_PROPOSAL


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


@dataclass(repr=False)
class Dao:
    judge: Any
    timelock: Any
    governor: Any
    source: Any
    grantee: str


def create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


@pytest.fixture(scope="module")
def dao(zkml: OracleHarness) -> Dao:
    """Token voting (alice 60, bob 40; delay 1 block, period 5 blocks), a 60 s timelock
    holding 10 ether, and a judge: the model's approve score (output 1) at least 0.5 and its
    reject score (output 0) at most 0.5, both seats needed; no appeal panel (rulings final
    at once)."""
    gov = contracts.governor_contracts()
    admin, alice, bob, grantee = zkml.accounts[0], *zkml.accounts[1:4]
    w3 = zkml.web3
    timelock_at = create_address(admin, w3.eth.get_transaction_count(admin) + 2)
    scale = zkml.build.manifest.inputs[0].scale
    source = zkml.deploy("TreasuryProposalInput", timelock_at, scale, admin)
    half = zkml.to_fixed(0.5)
    seats = [(zkml.model_id, 1, AT_LEAST, half), (zkml.model_id, 0, AT_MOST, half)]
    policy = (source.address, 0, 3600, 150_000, ZERO, b"\0" * 32, 0)
    judge = zkml.deploy(
        "ZkmlJudge", zkml.oracle.address, policy, (seats, 2, UNFAV, FEE), ([], 0, 0, 0)
    )
    timelock = zkml.deploy("ZkmlJudgedTimelock", judge.address, MIN_DELAY, [], [ZERO], admin)
    assert timelock.address == timelock_at
    token = zkml.deploy(gov["GovernanceToken"], "Vote", "VOTE", [alice, bob], [60, 40])
    for holder in (alice, bob):
        zkml.transact(token.functions.delegate(holder), holder)
    governor = zkml.deploy(gov["JudgedGovernor"], "dao", token.address, timelock.address, 1, 5, 4)
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        zkml.transact(timelock.functions.grantRole(keccak(text=role), governor.address), admin)
    zkml.transact(timelock.functions.renounceRole(b"\0" * 32, admin), admin)
    zkml.transact(source.functions.setProfile(grantee, *SOUND_PROFILE), admin)
    zkml.transact(source.functions.transferOwnership(timelock.address), admin)
    zkml.fund(timelock.address, TREASURY)
    return Dao(judge, timelock, governor, source, grantee)


def passed(zkml: OracleHarness, dao: Dao, value: int, description: str) -> tuple[Any, ...]:
    """A payment of ``value`` to the grantee, proposed by alice, voted for by both."""
    alice, bob = zkml.accounts[1:3]
    actions = ([dao.grantee], [value], [b""])
    g = dao.governor.functions
    receipt = zkml.transact(g.propose(*actions, description), alice)
    (created,) = zkml.events(dao.governor, "ProposalCreated", receipt)
    pid = int(created.args.proposalId)
    for _ in range(2):
        rpc(zkml.url, "evm_mine", [])
    for voter in (alice, bob):
        zkml.transact(g.castVote(pid, 1), voter)
    for _ in range(6):
        rpc(zkml.url, "evm_mine", [])
    assert g.state(pid).call() == SUCCEEDED
    return (*actions, keccak(text=description))


def open_case(zkml: OracleHarness, dao: Dao, proposal: tuple[Any, ...]) -> tuple[int, int]:
    """Anyone (carol) opens the proposal's case, paying the panel's fee: (case, request)."""
    fn = dao.judge.functions.openCase(*proposal[:3])
    receipt = zkml.transact(fn, zkml.accounts[4], FEE)
    (opened,) = zkml.events(dao.judge, "CaseOpened", receipt)
    (request_id,) = zkml.requests_in(receipt)
    return int(opened.args.caseId), request_id


def relay_once(zkml: OracleHarness, deployments: Path, work: Path) -> None:
    """``zkml-oracle relay --once``, as an operator runs it, serving the judge model."""
    exe = Path(sys.executable).parent / "zkml-oracle"
    args = [str(exe), "relay", "--model", str(zkml.build.build_dir), "--rpc-url", zkml.url]
    args += ["--deployments", str(deployments), "--db", str(work / "relay.sqlite"), "--once"]
    run = subprocess.run(
        args, cwd=work, env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_sound_grant_is_judged_through_the_relayer_then_queued_and_executed(
    zkml: OracleHarness,
    dao: Dao,
    files: dict[str, Path],
    zkml_oracle_deployment: OracleDeployer,
    tmp_path: Path,
) -> None:
    with zkml.snapshot():
        proposal = passed(zkml, dao, TREASURY // 20, "5 % of the treasury to a known recipient")
        case_id, request_id = open_case(zkml, dao, proposal)
        # The derived input is the sound proposal's (5 % share, the recipient's profile).
        felts = dao.judge.functions.inputOf(case_id).call()
        assert felts == zkml.input_felts(files["sound"])
        # The panel's request is an ordinary oracle request: the relayer proves and fulfils it.
        relay_once(zkml, zkml_oracle_deployment.store.root, tmp_path)
        assert zkml.oracle.functions.requestStatus(request_id).call() == RequestStatus.FULFILLED
        assert dao.judge.functions.getCase(case_id).call()[3] == FAV
        subject = dao.judge.functions.subjectOf(*proposal[:3]).call()
        assert dao.judge.functions.isFavourable(subject).call()
        g = dao.governor.functions
        zkml.transact(g.queue(*proposal), zkml.accounts[4])
        assert g.state(g.hashProposal(*proposal).call()).call() == QUEUED
        zkml.advance(MIN_DELAY)
        before = zkml.balance(dao.grantee)
        zkml.transact(g.execute(*proposal), zkml.accounts[4])
        assert zkml.balance(dao.grantee) - before == TREASURY // 20
        assert g.state(g.hashProposal(*proposal).call()).call() == EXECUTED


def test_a_whole_treasury_transfer_described_as_sound_is_judged_as_what_it_is(
    zkml: OracleHarness, dao: Dao, tmp_path: Path
) -> None:
    """Issue 18's first flaw, with real proofs: SmartJudgeDao judged the proposer's own
    description, so a whole-treasury transfer described as "1 % of treasury, audited" was
    approved and executed. Here the judged input says "the whole treasury"; the model refuses
    it and the Governor cannot queue it."""
    with zkml.snapshot():
        proposal = passed(zkml, dao, TREASURY, "1 % of treasury, audited")
        case_id, request_id = open_case(zkml, dao, proposal)
        felts = dao.judge.functions.inputOf(case_id).call()
        scale = zkml.build.manifest.inputs[0].scale
        derived = [field.felt_to_int(f) / 2**scale for f in felts]
        assert derived[0] == 2.0  # the whole treasury: the share at its cap
        path = tmp_path / "derived.json"
        path.write_text(json.dumps({"input_data": [derived]}))
        proof = zkml.prove(path)
        assert proof.values[1] < 0.5 < proof.values[0]  # the model refuses it
        done = zkml.fulfill(request_id, proof)
        assert done.callback_succeeded
        (ruled,) = zkml.events(dao.judge, "CaseRuled", done.receipt)
        assert (ruled.args.ruling, ruled.args.favourable, ruled.args.unfavourable) == (UNFAV, 0, 2)
        subject = dao.judge.functions.subjectOf(*proposal[:3]).call()
        got = zkml.reverts(dao.governor.functions.queue(*proposal), zkml.accounts[4])
        assert got == ("ZkmlJudgedTimelockNoFavourableRuling", (subject,))
        assert zkml.balance(dao.timelock.address) == TREASURY


def test_a_case_costs_its_panel_fee(zkml: OracleHarness, dao: Dao) -> None:
    """Issue 18's second flaw: SmartJudgeDao took a judgement request with a zero fee (and
    then refused any other for the request's time-to-live)."""
    with zkml.snapshot():
        proposal = passed(zkml, dao, 1, "a wei")
        fn = dao.judge.functions.openCase(*proposal[:3])
        got = zkml.reverts(fn, zkml.accounts[4], 0)
        assert got == ("ZkmlJudgeWrongFee", (FEE, 0))
