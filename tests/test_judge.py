"""ZkmlJudge (contracts/ZkmlJudge.sol) on a real Anvil: every rule of a judging policy, the
fees of its panel requests, and the Governor integration (ZkmlJudgedTimelock behind
OpenZeppelin's Governor, propose -> vote -> case -> ruling -> queue -> execute).

Panel models are stand-ins (MockVerifier: a request is answered with chosen outputs, so each
rule is put exactly on its edge) except in the real-proof test, which answers a panel with
ezkl proofs of the session's credit MLP, on the input the judge derived from the actions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from tests.conftest import run_cli
from tests.oracle_helpers import (
    ProofData,
    advance,
    deploy,
    deploy_build_verifier,
    events,
    model_config,
    model_id,
    proof_data,
    send,
    tx_reverts,
    web3_of,
)
from zkml_oracle import field
from zkml_oracle.chain import LocalNode, contracts, rpc
from zkml_oracle.chain.judge import read_case
from zkml_oracle.chain.oracle import ZERO_ADDRESS, Request
from zkml_oracle.prover import prove
from zkml_oracle.testing import chain_snapshot, committed
from zkml_oracle.types import BuildResult

HOUR = 3600
FEE = 10**15
ETHER = 10**18
ZERO = ZERO_ADDRESS
NO_TEST_SET = b"\0" * 32
AT_LEAST, AT_MOST = 0, 1
NONE, FAV, UNFAV = 0, 1, 2
# IZkmlJudge.CaseState
DELIBERATING, RULED, APPEALED, FINAL, VOID = 1, 2, 3, 4, 5
T = 100  # the stand-in seats' threshold
CALLBACK_GAS = 150_000
TREASURY = to_checksum_address("0x" + "7e" * 20)  # an address that never spends gas


@dataclass(repr=False)
class J:
    url: str
    web3: Any
    admin: str
    alice: str
    bob: str
    relayer: str
    stranger: str
    grantee: str
    oracle: Any
    source: Any  # TreasuryProposalInput over TREASURY
    config: tuple[Any, ...]  # the real model's
    real: bytes
    mocks: list[bytes]  # stand-in models A, B, C, D (MockVerifier)
    built: BuildResult

    def judge(
        self,
        seats: list[tuple[bytes, int, int, int]],
        quorum: int,
        on_disagreement: int = UNFAV,
        appeal: tuple[list[tuple[bytes, int, int, int]], int] | None = None,
        window: int = 0,
        *,
        attestations: str = ZERO,
        min_bps: int = 0,
        source: str | None = None,
        callback_gas: int = CALLBACK_GAS,
    ) -> Any:
        policy = (
            source or self.source.address,
            window,
            HOUR,
            callback_gas,
            attestations,
            NO_TEST_SET,
            min_bps,
        )
        first = (seats, quorum, on_disagreement, FEE)
        second = (appeal[0], appeal[1], UNFAV, FEE) if appeal else ([], 0, NONE, 0)
        art = contracts.contract("ZkmlJudge")
        return deploy(self.web3, art, self.admin, self.oracle.address, policy, first, second)

    def open(self, judge: Any, actions: Actions | None = None, sender: str | None = None) -> Case:
        actions = actions or Actions([self.grantee], [ETHER // 100], [b""])
        fee = judge.functions.panelFee(0).call()
        fn = judge.functions.openCase(*actions)
        receipt = send(self.web3, fn, sender or self.alice, fee)
        (opened,) = events(judge, "CaseOpened", receipt)
        rids = [int(e.args.requestId) for e in events(judge, "PanelRequested", receipt)]
        return Case(
            judge, int(opened.args.caseId), opened.args.subject, rids, list(opened.args.input)
        )

    def answer(self, case: Case, rid: int, outputs: list[int], *, called_back: bool = True) -> Any:
        """The oracle settles ``rid`` with a stand-in proof whose outputs are ``outputs``."""
        c = self.config
        instances = [0] * c[2]
        instances[c[3] : c[3] + c[4]] = case.input
        instances[c[5] : c[5] + c[6]] = [field.int_to_felt(o) for o in outputs]
        receipt = send(
            self.web3,
            self.oracle.functions.fulfill(committed(self.oracle, rid), b"", instances),
            self.relayer,
        )
        name = "CallbackSucceeded" if called_back else "CallbackFailed"
        assert events(self.oracle, name, receipt), f"no {name}"
        return receipt


class Actions(tuple[list[str], list[int], list[bytes]]):
    def __new__(cls, targets: list[str], values: list[int], calldatas: list[bytes]) -> Actions:
        return super().__new__(cls, (targets, values, calldatas))


@dataclass
class Case:
    judge: Any
    id: int
    subject: bytes
    requests: list[int]
    input: list[int]

    def state(self) -> int:
        return int(self.judge.functions.caseState(self.id).call())

    def get(self) -> Any:
        return self.judge.functions.getCase(self.id).call()

    def favourable(self) -> bool:
        return bool(self.judge.functions.isFavourable(self.subject).call())

    def reclaim(self, oracle: Any) -> Any:
        """``reclaim`` with the fields of the current panel's requests, from their logs."""
        panel = self.get()[2]
        ids = [r[0] for r in self.judge.functions.getRequests(self.id, panel).call()]
        return self.judge.functions.reclaim(self.id, [committed(oracle, r) for r in ids])


def seat(model: bytes, threshold: int = T, direction: int = AT_LEAST, output: int = 0) -> Any:
    return (model, output, direction, threshold)


@pytest.fixture(scope="module")
def j(anvil: LocalNode, built: BuildResult) -> J:
    web3 = web3_of(anvil.url)
    admin, alice, bob, relayer, stranger, grantee = web3.eth.accounts[:6]
    contracts.error_decoder().add(contracts.governor_error_abi())
    oracle = deploy(web3, contracts.oracle(), admin, admin, False)
    config = model_config(built, deploy_build_verifier(web3, built, admin))
    mock = deploy(web3, contracts.contract("MockVerifier"), admin)
    stand_ins = [(mock.address, keccak(text=name), *config[2:]) for name in "ABCD"]
    for c in (config, *stand_ins):
        send(web3, oracle.functions.registerModel(c), admin)
    scale = built.manifest.inputs[0].scale
    source = deploy(
        web3, contracts.contract("TreasuryProposalInput"), admin, TREASURY, scale, admin
    )
    send(web3, source.functions.setProfile(grantee, 500_000, 500_000, 500_000), admin)
    rpc(anvil.url, "anvil_setBalance", [TREASURY, hex(10 * ETHER)])
    return J(
        url=anvil.url,
        web3=web3,
        admin=admin,
        alice=alice,
        bob=bob,
        relayer=relayer,
        stranger=stranger,
        grantee=grantee,
        oracle=oracle,
        source=source,
        config=config,
        real=model_id(config),
        mocks=[model_id(c) for c in stand_ins],
        built=built,
    )


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    if "j" not in request.fixturenames:
        yield
        return
    env: J = request.getfixturevalue("j")
    if "dao" in request.fixturenames:
        request.getfixturevalue("dao")  # module deployments before the snapshot
    with chain_snapshot(env.url):
        yield


def ruled(receipt: Any, judge: Any) -> tuple[int, int, int]:
    (ev,) = events(judge, "CaseRuled", receipt)
    return int(ev.args.ruling), int(ev.args.favourable), int(ev.args.unfavourable)


# --- the policy ---


def test_quorum_met_rules_favourable_the_threshold_itself_included(j: J) -> None:
    a, b, c, _ = j.mocks
    judge = j.judge([seat(a), seat(b), seat(c)], quorum=2)
    case = j.open(judge)
    assert len(case.requests) == 3 and case.state() == DELIBERATING
    j.answer(case, case.requests[0], [T + 50, 0])
    j.answer(case, case.requests[1], [T, 0])  # exactly at the threshold: favourable
    assert case.state() == DELIBERATING and not case.favourable()
    receipt = j.answer(case, case.requests[2], [T - 1, 0])
    assert ruled(receipt, judge) == (FAV, 2, 1)
    assert case.state() == FINAL and case.favourable()  # no appeal panel: final at once
    # Each panel request was an ordinary paid oracle request: the fulfiller earned its fee.
    assert j.oracle.functions.pendingWithdrawal(j.relayer).call() == 3 * FEE


@pytest.mark.parametrize("on_disagreement", [UNFAV, FAV])
def test_quorum_not_met_takes_the_policys_disagreement_outcome(j: J, on_disagreement: int) -> None:
    a, b, c, _ = j.mocks
    judge = j.judge([seat(a), seat(b), seat(c)], quorum=3, on_disagreement=on_disagreement)
    case = j.open(judge)
    for rid, value in zip(case.requests, (T, T + 1, T - 1), strict=True):
        receipt = j.answer(case, rid, [value, 0])
    assert ruled(receipt, judge) == (on_disagreement, 2, 1)


def test_a_quorum_against_rules_unfavourable(j: J) -> None:
    a, b, c, _ = j.mocks
    judge = j.judge([seat(a), seat(b), seat(c)], quorum=2, on_disagreement=FAV)
    case = j.open(judge)
    for rid, value in zip(case.requests, (T - 1, T + 1, -(10**6)), strict=True):
        receipt = j.answer(case, rid, [value, 0])
    assert ruled(receipt, judge) == (UNFAV, 1, 2)
    assert case.state() == FINAL and not case.favourable()


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [((T, T), (FAV, 2, 0)), ((T + 1, T + 1), (UNFAV, 1, 1)), ((T - 1, T - 1), (UNFAV, 1, 1))],
)
def test_thresholds_on_each_side_one_request_for_seats_sharing_a_model(
    j: J, outputs: tuple[int, int], expected: tuple[int, int, int]
) -> None:
    """One model at two seats (output 0 at least T, output 1 at most T): one oracle request,
    its answer counted at both seats."""
    a = j.mocks[0]
    judge = j.judge([seat(a, output=0), seat(a, direction=AT_MOST, output=1)], quorum=2)
    assert judge.functions.panelModels(0).call() == [a]
    case = j.open(judge)
    assert len(case.requests) == 1
    assert ruled(j.answer(case, case.requests[0], list(outputs)), judge) == expected


@pytest.mark.parametrize("on_disagreement", [FAV, UNFAV])
def test_a_tie_takes_the_policys_disagreement_outcome(j: J, on_disagreement: int) -> None:
    """Both sides reach the quorum (2 of 4 each): neither wins."""
    judge = j.judge([seat(m) for m in j.mocks], quorum=2, on_disagreement=on_disagreement)
    case = j.open(judge)
    for rid, value in zip(case.requests, (T, T - 1, T + 1, T - 2), strict=True):
        receipt = j.answer(case, rid, [value, 0])
    assert ruled(receipt, judge) == (on_disagreement, 2, 2)


def appeal_judge(j: J) -> Any:
    a, b, c, _ = j.mocks
    return j.judge([seat(a)], 1, appeal=([seat(b), seat(c)], 2), window=HOUR)


def test_an_appeal_within_the_window_overturns_the_first_ruling(j: J) -> None:
    judge = appeal_judge(j)
    case = j.open(judge)
    ruled_at = j.web3.eth.get_block(j.answer(case, case.requests[0], [T - 1, 0]).blockNumber)
    assert case.state() == RULED and not case.favourable()
    appeal_fee = judge.functions.panelFee(1).call()
    assert appeal_fee == 2 * FEE
    got = tx_reverts(judge.functions.appeal(case.id), j.bob, FEE)
    assert got == ("ZkmlJudgeWrongFee", (2 * FEE, FEE))
    advance(j.url, HOUR - 10)  # still inside the window
    receipt = send(j.web3, judge.functions.appeal(case.id), j.bob, appeal_fee)
    assert [e.args.appellant for e in events(judge, "CaseAppealed", receipt)] == [j.bob]
    appeal_rids = [int(e.args.requestId) for e in events(judge, "PanelRequested", receipt)]
    assert case.state() == APPEALED and not case.favourable()
    got = tx_reverts(judge.functions.appeal(case.id), j.stranger, appeal_fee)
    assert got == ("ZkmlJudgeUnexpectedState", (case.id, APPEALED))
    j.answer(case, appeal_rids[0], [T, 0])
    assert ruled(j.answer(case, appeal_rids[1], [T + 7, 0]), judge) == (FAV, 2, 0)
    got = case.get()
    assert (got[3], got[4], got[6]) == (FAV, UNFAV, ruled_at["timestamp"])  # ruling, first
    assert case.state() == FINAL and case.favourable()  # an appeal's ruling is final at once
    got = tx_reverts(judge.functions.appeal(case.id), j.stranger, appeal_fee)
    assert got == ("ZkmlJudgeUnexpectedState", (case.id, FINAL))


def test_after_the_window_an_unappealed_ruling_is_final_and_cannot_be_appealed(j: J) -> None:
    judge = appeal_judge(j)
    case = j.open(judge)
    j.answer(case, case.requests[0], [T, 0])
    ruled_at = case.get()[6]
    assert case.state() == RULED and not case.favourable()  # favourable, but not final yet
    advance(j.url, HOUR)
    assert case.state() == FINAL and case.favourable()
    got = tx_reverts(judge.functions.appeal(case.id), j.bob, 2 * FEE)
    assert got == ("ZkmlJudgeAppealClosed", (case.id, ruled_at + HOUR))


def test_a_panel_model_deactivated_mid_case_abstains_and_its_fee_returns(j: J) -> None:
    a, b, c, _ = j.mocks
    judge = j.judge([seat(a), seat(b), seat(c)], quorum=2, on_disagreement=FAV)
    case = j.open(judge)
    j.answer(case, case.requests[0], [T, 0])
    # Nothing to resolve yet: the other two can still be answered.
    receipt = send(j.web3, case.reclaim(j.oracle), j.stranger)
    assert not events(judge, "PanelAbstained", receipt) and case.get()[7] == 2
    send(j.web3, j.oracle.functions.setModelActive(c, False), j.admin)
    receipt = send(j.web3, case.reclaim(j.oracle), j.stranger)  # anyone may
    (abstained,) = events(judge, "PanelAbstained", receipt)
    assert (abstained.args.requestId, abstained.args.refund) == (case.requests[2], FEE)
    (credited,) = events(judge, "RefundCredited", receipt)
    assert (credited.args.account, credited.args.amount) == (j.alice, FEE)
    assert case.state() == DELIBERATING
    # The remaining seats rule: 2 for, the deactivated one counts for neither side.
    assert ruled(j.answer(case, case.requests[1], [T + 1, 0]), judge) == (FAV, 2, 0)
    before = j.web3.eth.get_balance(j.alice)
    receipt = send(j.web3, judge.functions.withdrawRefund(), j.alice)
    spent = receipt.gasUsed * receipt.effectiveGasPrice
    assert j.web3.eth.get_balance(j.alice) + spent - before == FEE
    got = tx_reverts(judge.functions.withdrawRefund(), j.alice)
    assert got == ("ZkmlJudgeNothingToWithdraw", (j.alice,))
    assert j.web3.eth.get_balance(judge.address) == 0  # nothing stranded


def test_an_unanswered_case_is_void_its_fees_return_and_it_may_be_opened_again(j: J) -> None:
    a, b, *_ = j.mocks
    judge = j.judge([seat(a), seat(b)], quorum=1)
    case = j.open(judge)
    fee = judge.functions.panelFee(0).call()
    actions = Actions([j.grantee], [ETHER // 100], [b""])
    got = tx_reverts(judge.functions.openCase(*actions), j.stranger, fee)
    assert got == ("ZkmlJudgeCaseExists", (case.subject, case.id))
    advance(j.url, HOUR + 1)  # past the requests' deadline
    # The requests' fields are checked against the oracle's commitment: a deadline moved
    # (or a request left out) is refused, not trusted.
    fields = [committed(j.oracle, r) for r in case.requests]
    moved = [fields[0], (*fields[1][:7], fields[1][7] - 1, *fields[1][8:])]
    got = tx_reverts(judge.functions.reclaim(case.id, moved), j.stranger)
    assert got == ("ZkmlJudgeRequestMismatch", (case.requests[1],))
    got = tx_reverts(judge.functions.reclaim(case.id, fields[:1]), j.stranger)
    assert got == ("ZkmlJudgeRequestCount", (case.id, 2, 1))
    receipt = send(j.web3, case.reclaim(j.oracle), j.stranger)
    assert [e.args.refund for e in events(judge, "PanelAbstained", receipt)] == [FEE, FEE]
    assert [e.args.caseId for e in events(judge, "CaseVoided", receipt)] == [case.id]
    assert case.state() == VOID and judge.functions.refundOf(j.alice).call() == 2 * FEE
    again = j.open(judge, sender=j.stranger)
    assert again.id == case.id + 1 and judge.functions.caseOf(case.subject).call() == again.id


def test_an_answer_whose_callback_failed_abstains_and_strands_nothing(j: J) -> None:
    """A callback that runs out of gas: the oracle settled the request (its fee is the
    fulfiller's) but the judge never heard; reclaim resolves it as an abstention."""
    a, b, *_ = j.mocks
    judge = j.judge([seat(a), seat(b)], quorum=1, callback_gas=5_000)
    case = j.open(judge)
    for rid in case.requests:
        j.answer(case, rid, [T, 0], called_back=False)
    assert case.state() == DELIBERATING
    receipt = send(j.web3, case.reclaim(j.oracle), j.stranger)
    assert [e.args.refund for e in events(judge, "PanelAbstained", receipt)] == [0, 0]
    assert case.state() == VOID and judge.functions.refundOf(j.alice).call() == 0
    assert j.oracle.functions.pendingWithdrawal(j.relayer).call() == 2 * FEE


def test_a_case_is_paid_exactly_no_free_requests(j: J) -> None:
    """Issue 18's second flaw: SmartJudgeDao took a judgement request with a zero fee (and it
    then blocked any other request for its time-to-live). A case pays each panel request the
    policy's fee, escrowed by the oracle for its fulfiller."""
    judge = j.judge([seat(m) for m in j.mocks[:3]], quorum=2)
    actions = Actions([j.grantee], [1], [b""])
    got = tx_reverts(judge.functions.openCase(*actions), j.stranger, 0)
    assert got == ("ZkmlJudgeWrongFee", (3 * FEE, 0))
    got = tx_reverts(judge.functions.openCase(*actions), j.stranger, 3 * FEE + 1)
    assert got == ("ZkmlJudgeWrongFee", (3 * FEE, 3 * FEE + 1))
    case = j.open(judge, actions, j.stranger)
    for rid in case.requests:
        request = Request.from_event(
            j.oracle.events.InferenceRequested()
            .get_logs(from_block=0, argument_filters={"requestId": rid})[0]
            .args
        )
        assert (request.requester, request.refund_to, request.fee) == (
            judge.address,
            judge.address,
            FEE,
        )


def attested_judge(j: J, registry: str, test_set: bytes, seats: list[Any]) -> Any:
    """The constructor of a judge whose models need 90 % on ``test_set`` in ``registry``."""
    art = contracts.contract("ZkmlJudge")
    factory = j.web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    policy = (j.source.address, 0, HOUR, CALLBACK_GAS, registry, test_set, 9000)
    return factory.constructor(j.oracle.address, policy, (seats, 1, UNFAV, FEE), ([], 0, NONE, 0))


def test_an_unattested_model_is_refused(j: J) -> None:
    a, b, *_ = j.mocks
    test_set = keccak(text="held-out")
    # The real attestation registry (issue 17), where the model has no evaluation recorded.
    art = contracts.contract("ZkmlAttestations")
    registry = deploy(j.web3, art, j.admin, j.oracle.address, j.admin, True)
    assert registry.functions.meetsAccuracy(a, test_set, 1).call() is False
    got = tx_reverts(attested_judge(j, registry.address, test_set, [seat(a)]), j.admin)
    assert got == ("ZkmlJudgeModelNotAttested", (a,))
    # A stand-in registry with A at 95 % and B at 80 %: the 90 % floor admits A, refuses B.
    mock = deploy(j.web3, contracts.contract("MockAttestations"), j.admin)
    send(j.web3, mock.functions.setAccuracy(a, test_set, 9500), j.admin)
    send(j.web3, mock.functions.setAccuracy(b, test_set, 8000), j.admin)
    send(j.web3, attested_judge(j, mock.address, test_set, [seat(a)]), j.admin)
    got = tx_reverts(attested_judge(j, mock.address, test_set, [seat(a), seat(b)]), j.admin)
    assert got == ("ZkmlJudgeModelNotAttested", (b,))


@pytest.mark.parametrize(
    ("first", "appeal", "window", "reason"),
    [
        (([], 1), None, 0, "first panel has no seats"),
        (([0], 0), None, 0, "quorum out of range"),
        (([0, 1], 3), None, 0, "quorum out of range"),
        (([0] * 8, 1), None, 0, "too many seats"),
        (([0], 1), ([1], 1), 0, "an appeal panel needs an appeal window, and the reverse"),
        (([0], 1), None, HOUR, "an appeal panel needs an appeal window, and the reverse"),
        (([8], 1), None, 0, "output index out of range"),  # the models have 2 outputs
    ],
)
def test_an_unusable_policy_is_refused(
    j: J,
    first: tuple[list[int], int],
    appeal: tuple[list[int], int] | None,
    window: int,
    reason: str,
) -> None:
    art = contracts.contract("ZkmlJudge")
    factory = j.web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    policy = (j.source.address, window, HOUR, CALLBACK_GAS, ZERO, NO_TEST_SET, 0)
    seats = [seat(j.mocks[i % 4], output=i // 4) for i in first[0]]  # 8: output 2 of A
    second = (
        ([seat(j.mocks[i]) for i in appeal[0]], appeal[1], UNFAV, FEE)
        if appeal
        else ([], 0, NONE, 0)
    )
    fn = factory.constructor(j.oracle.address, policy, (seats, first[1], UNFAV, FEE), second)
    assert tx_reverts(fn, j.admin) == ("ZkmlJudgeInvalidConfig", (reason,))


# --- the input is derived from the actions ---


def encode(millionths: int, scale: int) -> int:
    """TreasuryProposalInput's encoding: clamped to [-2, 2], then the toolkit's own."""
    return field.encode(max(-2.0, min(2.0, millionths / 10**6)), scale)


def test_the_judged_input_is_derived_from_the_actions_not_described(j: J) -> None:
    scale = j.built.manifest.inputs[0].scale
    src = j.source.functions
    one_percent = src.inputOf([j.grantee], [ETHER // 10], [b""]).call()
    assert one_percent == [encode(m, scale) for m in (-960_000, 500_000, 500_000, 500_000)]
    # The whole treasury (however the proposal describes it): the share is at its cap.
    whole = src.inputOf([j.grantee], [10 * ETHER], [b"audited"]).call()
    assert whole[0] == encode(2_000_000, scale) and whole[1:] == one_percent[1:]
    # Split over two actions, one to an unknown recipient: the sum, and the worst recipient.
    split = src.inputOf([j.grantee, j.stranger], [ETHER // 20, ETHER // 20], [b"", b""]).call()
    assert split == [encode(m, scale) for m in (-960_000, -2_000_000, -2_000_000, -2_000_000)]
    many = [j.grantee] * 17
    got = tx_reverts(j.source.functions.inputOf(many, [0] * 17, [b""] * 17), j.admin)
    assert got == ("TreasuryProposalInputTooManyActions", (17, 16))


# --- real proofs ---


def test_a_panel_answered_with_a_real_proof(j: J, tmp_path: Path) -> None:
    """Three seats on the session's credit MLP (one request, one ezkl proof) on the input the
    judge derived from the actions: the example input, which the calibration covers."""
    sample = [1.4385, -0.6757, 0.2031, -0.4633]
    send(j.web3, j.source.functions.setProfile(j.grantee, -675_700, 203_100, -463_300), j.admin)
    value = (1_438_500 + 1_000_000) * 10 * ETHER // 4_000_000  # share (x + 1) / 4
    actions = Actions([j.grantee], [value], [b""])
    felts = j.source.functions.inputOf(*actions).call()
    scale = j.built.manifest.inputs[0].scale
    derived = [field.felt_to_int(f) / 2**scale for f in felts]
    assert max(abs(a - b) for a, b in zip(derived, sample, strict=True)) < 2 ** -(scale - 1)
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"input_data": [derived]}))
    data: ProofData = proof_data(
        j.built, prove(j.built.build_dir, path, tmp_path / "p.json").proof_path
    )
    c = j.config
    out = [field.felt_to_int(f) for f in data.instances[c[5] : c[5] + c[6]]]
    seats = [
        seat(j.real, out[0]),  # for: at the threshold
        seat(j.real, out[1], AT_MOST, output=1),  # for
        seat(j.real, out[0] + 1),  # against: one step above the output
    ]
    judge = j.judge(seats, quorum=2)
    case = j.open(judge, actions)
    assert case.input == data.instances[c[3] : c[3] + c[4]] and len(case.requests) == 1
    fn = j.oracle.functions.fulfill(
        committed(j.oracle, case.requests[0]), data.proof, data.instances
    )
    receipt = send(j.web3, fn, j.relayer)
    (answered,) = events(judge, "PanelAnswered", receipt)
    assert list(answered.args.outputs) == out
    assert ruled(receipt, judge) == (FAV, 2, 1) and case.favourable()


# --- OpenZeppelin Governor behind a ZkmlJudgedTimelock ---

PROPOSER_ROLE = keccak(text="PROPOSER_ROLE")
CANCELLER_ROLE = keccak(text="CANCELLER_ROLE")
ADMIN_ROLE = b"\0" * 32
SUCCEEDED, QUEUED, EXECUTED = 4, 5, 7  # Governor.ProposalState
MIN_DELAY = 60


def create_address(sender: str, nonce: int) -> str:
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


@dataclass(repr=False)
class Dao:
    judge: Any
    timelock: Any
    governor: Any
    source: Any


@pytest.fixture(scope="module")
def dao(j: J) -> Dao:
    """A token-voting DAO (alice 60, bob 30, stranger 10 votes; voting delay 1 block, period 5
    blocks, quorum 4 %) whose timelock (10 ether, 60 s delay) obeys a judge: first panel A,
    appeal panel B and C (both must find for it), appeal window one hour."""
    gov = contracts.governor_contracts()
    w3, admin = j.web3, j.admin
    # The judge's input reads the timelock's balance, and the timelock names the judge.
    timelock_at = create_address(admin, w3.eth.get_transaction_count(admin) + 2)
    scale = j.built.manifest.inputs[0].scale
    art = contracts.contract("TreasuryProposalInput")
    source = deploy(w3, art, admin, timelock_at, scale, admin)
    a, b, c, _ = j.mocks
    judge = j.judge(
        [seat(a)], 1, appeal=([seat(b), seat(c)], 2), window=HOUR, source=source.address
    )
    art = contracts.contract("ZkmlJudgedTimelock")
    timelock = deploy(w3, art, admin, judge.address, MIN_DELAY, [], [ZERO], admin)
    assert timelock.address == timelock_at
    holders = [j.alice, j.bob, j.stranger]
    token = deploy(w3, gov["GovernanceToken"], admin, "Vote", "VOTE", holders, [60, 30, 10])
    for holder in holders:
        send(w3, token.functions.delegate(holder), holder)
    governor = deploy(
        w3, gov["JudgedGovernor"], admin, "judged", token.address, timelock.address, 1, 5, 4
    )
    for role in (PROPOSER_ROLE, CANCELLER_ROLE):
        send(w3, timelock.functions.grantRole(role, governor.address), admin)
    send(w3, timelock.functions.renounceRole(ADMIN_ROLE, admin), admin)
    send(w3, source.functions.setProfile(j.grantee, 500_000, 500_000, 500_000), admin)
    send(w3, source.functions.transferOwnership(timelock.address), admin)
    rpc(j.url, "anvil_setBalance", [timelock.address, hex(10 * ETHER)])
    return Dao(judge, timelock, governor, source)


def mine(j: J, blocks: int) -> None:
    for _ in range(blocks):
        rpc(j.url, "evm_mine", [])


def passed(j: J, dao: Dao, actions: Actions, description: str) -> tuple[Any, ...]:
    """``actions`` proposed by alice and voted for by alice and bob: the Governor's
    (targets, values, calldatas, descriptionHash)."""
    g = dao.governor.functions
    receipt = send(j.web3, g.propose(*actions, description), j.alice)
    (created,) = events(dao.governor, "ProposalCreated", receipt)
    pid = int(created.args.proposalId)
    mine(j, 2)  # past the voting delay
    for voter in (j.alice, j.bob):
        send(j.web3, g.castVote(pid, 1), voter)
    mine(j, 6)  # past the voting period
    assert g.state(pid).call() == SUCCEEDED
    return (*actions, keccak(text=description))


def refused(j: J, dao: Dao, proposal: tuple[Any, ...]) -> None:
    subject = dao.judge.functions.subjectOf(*proposal[:3]).call()
    got = tx_reverts(dao.governor.functions.queue(*proposal), j.stranger)
    assert got == ("ZkmlJudgedTimelockNoFavourableRuling", (subject,))


def queue_and_execute(j: J, dao: Dao, proposal: tuple[Any, ...]) -> None:
    g = dao.governor.functions
    pid = g.hashProposal(*proposal).call()
    send(j.web3, g.queue(*proposal), j.stranger)
    assert g.state(pid).call() == QUEUED
    advance(j.url, MIN_DELAY)
    before = j.web3.eth.get_balance(j.grantee)
    send(j.web3, g.execute(*proposal), j.stranger)
    assert g.state(pid).call() == EXECUTED
    assert j.web3.eth.get_balance(j.grantee) - before == sum(proposal[1])


def test_dao_flow_a_favourable_final_ruling_queues_and_executes(j: J, dao: Dao) -> None:
    actions = Actions([j.grantee], [ETHER // 10], [b""])
    proposal = passed(j, dao, actions, "grant 0.1 ether")
    refused(j, dao, proposal)  # no case yet
    case = j.open(dao.judge, actions, j.stranger)
    j.answer(case, case.requests[0], [T + 1, 0])
    assert case.state() == RULED
    refused(j, dao, proposal)  # favourable, but still open to appeal
    advance(j.url, HOUR)
    queue_and_execute(j, dao, proposal)


def test_dao_an_unfavourable_ruling_blocks_the_proposal(j: J, dao: Dao) -> None:
    actions = Actions([j.grantee], [ETHER // 10], [b""])
    proposal = passed(j, dao, actions, "grant 0.1 ether")
    case = j.open(dao.judge, actions, j.stranger)
    j.answer(case, case.requests[0], [T - 1, 0])
    advance(j.url, HOUR)
    assert case.state() == FINAL
    refused(j, dao, proposal)
    # Nor can anyone schedule it on the timelock directly (only the Governor proposes).
    fn = dao.timelock.functions.scheduleBatch(*proposal[:3], b"\0" * 32, b"\1" * 32, MIN_DELAY)
    assert tx_reverts(fn, j.alice)[0] == "ZkmlJudgedTimelockNoFavourableRuling"


def test_dao_an_appeal_overturns_an_unfavourable_ruling(j: J, dao: Dao) -> None:
    actions = Actions([j.grantee], [ETHER // 10], [b""])
    proposal = passed(j, dao, actions, "grant 0.1 ether")
    case = j.open(dao.judge, actions, j.stranger)
    j.answer(case, case.requests[0], [T - 1, 0])
    receipt = send(j.web3, dao.judge.functions.appeal(case.id), j.alice, 2 * FEE)
    for e in events(dao.judge, "PanelRequested", receipt):
        j.answer(case, int(e.args.requestId), [T + 3, 0])
    assert case.state() == FINAL and case.favourable()
    queue_and_execute(j, dao, proposal)


def test_dao_a_ruling_on_other_actions_cannot_be_used(j: J, dao: Dao) -> None:
    """Issue 18's first flaw: SmartJudgeDao judged whatever input the proposer supplied, so a
    whole-treasury transfer described as "1 % of treasury, audited" was approved and executed.
    Here the ruling is on the actions' hash and the input is derived from them: a favourable
    ruling on a 1 % grant does not carry over to a whole-treasury transfer described alike,
    and the transfer's own case is judged as what it is."""
    small = Actions([j.grantee], [ETHER // 10], [b""])
    whole = Actions([j.grantee], [10 * ETHER], [b""])
    honest = passed(j, dao, small, "1 % of treasury, audited")
    disguised = passed(j, dao, whole, "1 % of treasury, audited")
    case = j.open(dao.judge, small, j.stranger)
    j.answer(case, case.requests[0], [T + 1, 0])
    advance(j.url, HOUR)
    assert case.favourable()
    refused(j, dao, disguised)
    scale = j.built.manifest.inputs[0].scale
    other = j.open(dao.judge, whole, j.stranger)
    assert case.input[0] == encode(-960_000, scale)
    assert other.input[0] == encode(2_000_000, scale)  # a whole treasury, at the cap
    assert other.subject != case.subject
    queue_and_execute(j, dao, honest)


# --- zkml-oracle case ---


def test_the_case_command_shows_the_panels_outputs_and_the_ruling(j: J, tmp_path: Path) -> None:
    a, b, c, _ = j.mocks
    judge = j.judge([seat(a), seat(b, T, AT_MOST)], 2, appeal=([seat(c)], 1), window=HOUR)
    case = j.open(judge)
    j.answer(case, case.requests[0], [T + 8, 3])
    j.answer(case, case.requests[1], [T + 8, 3])  # against: above an at-most threshold
    receipt = send(j.web3, judge.functions.appeal(case.id), j.bob, FEE)
    (appeal_rid,) = [int(e.args.requestId) for e in events(judge, "PanelRequested", receipt)]
    args = ("--judge", judge.address, "--rpc-url", j.url, "--deployments", tmp_path)
    run = run_cli("case", str(case.id), *args, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert (got["state"], got["ruling"], got["first_ruling"]) == (
        "appealed",
        "unfavourable",
        "unfavourable",
    )
    assert got["appellant"] == j.bob and got["input"] == case.input
    first, appeal = got["panels"]
    assert [s["vote"] for s in first["seats"]] == ["for", "against"]
    assert [(r["request_id"], r["status"], r["outputs"]) for r in first["requests"]] == [
        (case.requests[0], "answered", [T + 8, 3]),
        (case.requests[1], "answered", [T + 8, 3]),
    ]
    assert appeal["requests"] == [
        {
            "request_id": appeal_rid,
            "model_id": "0x" + c.hex(),
            "status": "pending",
            "outputs": None,
            "values": None,
        }
    ]
    # The same view in-process (the command is a thin door over read_case), for a terminal.
    summary = read_case(j.web3, judge.address, case.id).summary()
    assert summary.splitlines()[0].endswith("appealed, ruling unfavourable")
    bad = run_cli("case", "99", *args, cwd=tmp_path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"error: no case 99 on the judge at {judge.address}: check the id"
    ]
