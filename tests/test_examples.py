"""The example consumers (contracts/examples/) on a real Anvil, with ezkl's real verifiers
and real proofs of the bundled credit MLP (4 inputs, 2 outputs).

Which output means what (documented in each contract): FraudGuard reads output 0 through a
ZkmlFeedAdapter as the fraud score; CreditGrant takes output 1 as the credit score; KycGate
and SmartJudgeDao classify by the argmax of the outputs. Thresholds and classes are set
from the proof's own outputs, so each test knows which side of the line it is on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError

from tests.test_feed_adapter import to_answer
from tests.test_oracle import (
    HOUR,
    UNBOUND,
    ProofData,
    advance,
    call_reverts,
    deploy,
    deploy_build_verifier,
    events,
    inputs_of,
    latest_time,
    model_config,
    model_id,
    outputs_of,
    proof_data,
    send,
    tx_reverts,
    web3_of,
)
from zkml_oracle import contracts, field
from zkml_oracle.chain import LocalNode, rpc
from zkml_oracle.commitment import Binding
from zkml_oracle.oracle import input_felts, proof_calldata, sign_credit_features
from zkml_oracle.prover import prove
from zkml_oracle.testing import committed
from zkml_oracle.types import BuildResult, ProofResult

ETHER = 10**18
FEE = 10**15
DECIMALS = 8
BIG = 10**40  # a sanity bound no answer of this model reaches
GRANTED, SCORE_TOO_LOW, INSUFFICIENT_FUNDS, SUBJECT_GRANTED = 0, 1, 2, 3
# SmartJudgeDao.ProposalState
NONE, ACTIVE, DEFEATED, SUCCEEDED, JUDGING, APPROVED, REJECTED, EXECUTED = range(8)
OTHER_SAMPLE = [[0.8, -0.3, 1.2, -1.1]]
# The examples ask the oracle for CALLBACK_GAS_LIMIT = 100 000 gas for their callbacks (a
# third of Chainlink Functions' 300 000); the measured use must leave a quarter of it spare.
CALLBACK_GAS_LIMIT = 100_000
CALLBACK_BUDGET = CALLBACK_GAS_LIMIT * 3 // 4
# CreditGrant's callback also records the attested subject (issue 14): it asks for more.
GRANT_CALLBACK_GAS_LIMIT = 150_000


def argmax(values: list[int]) -> int:
    """The contracts' rule: the first index of the largest value."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


@dataclass(repr=False)
class Ex:
    url: str
    web3: Any
    admin: str
    alice: str
    bob: str
    carol: str
    relayer: str
    stranger: str
    oracle: Any
    model: bytes
    scale: int
    good: ProofData
    inputs: list[int]
    outputs: list[int]

    def fulfill(self, request_id: int, data: ProofData | None = None) -> Any:
        data = data or self.good
        fn = self.oracle.functions.fulfill(
            committed(self.oracle, request_id), data.proof, data.instances
        )
        return send(self.web3, fn, self.relayer)

    def fulfill_reverts(self, request_id: int, data: ProofData) -> tuple[str, tuple[Any, ...]]:
        fn = self.oracle.functions.fulfill(
            committed(self.oracle, request_id), data.proof, data.instances
        )
        return tx_reverts(fn, self.relayer)

    def balance(self, address: str) -> int:
        return int(self.web3.eth.get_balance(address))

    def fund(self, address: str, amount: int) -> None:
        tx = {"from": self.admin, "to": address, "value": amount}
        receipt = self.web3.eth.wait_for_transaction_receipt(self.web3.eth.send_transaction(tx))
        assert receipt.status == 1

    def callback_ok(self, receipt: Any, request_id: int) -> None:
        """The consumer's callback ran to completion within its gas limit."""
        assert not events(self.oracle, "CallbackFailed", receipt)
        (ok,) = events(self.oracle, "CallbackSucceeded", receipt)
        assert ok.args.requestId == request_id

    def callback_gas(self, receipt: Any, consumer: str) -> int:
        """Gas the oracle's call into ``consumer`` used (Anvil's callTracer)."""
        trace = rpc(
            self.url,
            "debug_traceTransaction",
            [receipt.transactionHash.to_0x_hex(), {"tracer": "callTracer"}],
        )
        calls = [c for c in trace.get("calls", []) if c["to"].lower() == consumer.lower()]
        assert len(calls) == 1, calls
        gas = int(calls[0]["gasUsed"], 16)
        print(f"callback gas used by {consumer}: {gas}")
        return gas


@dataclass(repr=False)
class Kyc:
    model: bytes
    a: ProofData  # the example input
    b: ProofData  # another input
    commitment_a: int
    commitment_b: int
    raw_a: list[int]  # the private input's felts (must never reach the chain)
    outputs_a: list[int]


@pytest.fixture(scope="module")
def ex(anvil: LocalNode, built: BuildResult, proof: ProofResult) -> Ex:
    web3 = web3_of(anvil.url)
    admin, alice, bob, carol, relayer, stranger = web3.eth.accounts[:6]
    oracle = deploy(web3, contracts.oracle(), admin, admin, False)
    config = model_config(built, deploy_build_verifier(web3, built, admin))
    send(web3, oracle.functions.registerModel(config), admin)
    good = proof_data(built, proof.proof_path)
    return Ex(
        url=anvil.url,
        web3=web3,
        admin=admin,
        alice=alice,
        bob=bob,
        carol=carol,
        relayer=relayer,
        stranger=stranger,
        oracle=oracle,
        model=model_id(config),
        scale=config[7],
        good=good,
        inputs=inputs_of(built, good.instances),
        outputs=outputs_of(built, good.instances),
    )


@pytest.fixture(scope="module")
def kyc(
    ex: Ex,
    bound_built: BuildResult,
    example: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Kyc:
    """The salted, requester-bound build registered on the module's oracle, and alice's
    proofs of two inputs (each with its own salt, bound to alice)."""
    folder = tmp_path_factory.mktemp("kyc")
    manifest = bound_built.manifest
    sample_a = json.loads(example["input"].read_text())["input_data"]
    other = folder / "other.json"
    other.write_text(json.dumps({"input_data": OTHER_SAMPLE}))
    datas: list[ProofData] = []
    bindings = [Binding.new(ex.alice), Binding.new(ex.alice)]
    for name, path, binding in (("a", example["input"], bindings[0]), ("b", other, bindings[1])):
        result = prove(bound_built.build_dir, path, folder / f"{name}.json", bindings=[binding])
        proof, instances = proof_calldata(result.proof_path)
        datas.append(ProofData(proof, instances, b""))
    a, b = datas
    commitment_a = input_felts(manifest, sample_a, bindings[0])
    commitment_b = input_felts(manifest, OTHER_SAMPLE, bindings[1])
    # One commitment each, equal to what the proofs carry as their input instance.
    assert commitment_a == inputs_of(bound_built, a.instances)
    assert commitment_b == inputs_of(bound_built, b.instances)
    assert commitment_a != commitment_b
    config = model_config(bound_built, deploy_build_verifier(ex.web3, bound_built, ex.admin))
    assert config[4] == 1 and config[8] is True  # one input commitment, hashed inputs
    send(ex.web3, ex.oracle.functions.registerModel(config), ex.admin)
    scale = manifest.inputs[0].scale
    return Kyc(
        model=model_id(config),
        a=a,
        b=b,
        commitment_a=commitment_a[0],
        commitment_b=commitment_b[0],
        raw_a=[field.encode(v, scale) for v in sample_a[0]],
        outputs_a=outputs_of(bound_built, a.instances),
    )


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    """Module deployments first, then every test runs between a snapshot and a revert."""
    if "ex" not in request.fixturenames:
        yield
        return
    e: Ex = request.getfixturevalue("ex")
    if "kyc" in request.fixturenames:
        request.getfixturevalue("kyc")
    snap = rpc(e.url, "evm_snapshot")
    yield
    assert rpc(e.url, "evm_revert", [snap]) is True


# --- FraudGuard: a Chainlink-style reader of the push feed ---


@dataclass(repr=False)
class Fraud:
    adapter: Any
    score: int  # the verified answer: output 0 at DECIMALS

    def submit(self, ex: Ex) -> int:
        fn = ex.oracle.functions.submitResult(ex.model, ex.good.proof, ex.good.instances)
        receipt = send(ex.web3, fn, ex.admin)
        return int(ex.web3.eth.get_block(receipt.blockNumber)["timestamp"])

    def guard(
        self,
        ex: Ex,
        max_score: int,
        *,
        max_age: int = HOUR,
        bounds: tuple[int, int] = (-BIG, BIG),
    ) -> tuple[Any, Any]:
        """A guard and a treasury (1 ether, owned by the admin) behind it."""
        art = contracts.contract("FraudGuard")
        guard = deploy(
            ex.web3, art, ex.admin, self.adapter.address, max_score, max_age, *bounds, ex.admin
        )
        treasury = deploy(
            ex.web3, contracts.contract("GuardedTreasury"), ex.admin, guard.address, ex.admin
        )
        ex.fund(treasury.address, ETHER)
        return guard, treasury


@pytest.fixture
def fraud(ex: Ex) -> Fraud:
    adapter = deploy(
        ex.web3,
        contracts.feed_adapter(),
        ex.admin,
        ex.oracle.address,
        ex.model,
        0,
        DECIMALS,
        "fraud",
        UNBOUND,
    )
    return Fraud(adapter, to_answer(ex.outputs[0], ex.scale, DECIMALS))


def test_fraud_guard_lets_a_payment_through_at_or_below_the_threshold(ex: Ex, fraud: Fraud) -> None:
    updated = fraud.submit(ex)
    guard, treasury = fraud.guard(ex, fraud.score)  # not above: allowed
    assert guard.functions.fraudScore().call() == [fraud.score, updated]
    assert guard.functions.checkTransfer(treasury.address, ex.stranger, 1).call() == fraud.score
    before = ex.balance(ex.stranger)
    receipt = send(ex.web3, treasury.functions.pay(ex.stranger, ETHER // 10), ex.admin)
    (paid,) = events(treasury, "Paid", receipt)
    assert (paid.args.to, paid.args.amount, paid.args.score) == (
        ex.stranger,
        ETHER // 10,
        fraud.score,
    )
    assert ex.balance(ex.stranger) - before == ETHER // 10


def test_fraud_guard_blocks_a_payment_above_the_threshold(ex: Ex, fraud: Fraud) -> None:
    fraud.submit(ex)
    guard, treasury = fraud.guard(ex, fraud.score - 1)
    amount = ETHER // 10
    got = tx_reverts(treasury.functions.pay(ex.stranger, amount), ex.admin)
    assert got == (
        "FraudGuardTransferBlocked",
        (treasury.address, ex.stranger, amount, fraud.score, fraud.score - 1),
    )
    assert ex.balance(treasury.address) == ETHER
    # Only the owner may move the threshold; when it does, the payment goes through.
    got = tx_reverts(guard.functions.setMaxScore(fraud.score), ex.stranger)
    assert got == ("OwnableUnauthorizedAccount", (ex.stranger,))
    receipt = send(ex.web3, guard.functions.setMaxScore(fraud.score), ex.admin)
    (ev,) = events(guard, "MaxScoreSet", receipt)
    assert (ev.args.previous, ev.args.current) == (fraud.score - 1, fraud.score)
    send(ex.web3, treasury.functions.pay(ex.stranger, amount), ex.admin)


def test_fraud_guard_refuses_a_stale_answer_until_a_fresh_round(ex: Ex, fraud: Fraud) -> None:
    updated = fraud.submit(ex)
    guard, treasury = fraud.guard(ex, fraud.score, max_age=HOUR)
    advance(ex.url, HOUR + 1)
    got = tx_reverts(treasury.functions.pay(ex.stranger, 1), ex.admin)
    assert got == ("FraudGuardStaleAnswer", (updated, HOUR))
    fresh = fraud.submit(ex)  # round 2
    assert fraud.adapter.functions.latestRoundData().call()[0] == 2
    assert guard.functions.fraudScore().call() == [fraud.score, fresh]
    send(ex.web3, treasury.functions.pay(ex.stranger, 1), ex.admin)


def test_fraud_guard_fails_closed_on_a_fresh_feed(ex: Ex, fraud: Fraud) -> None:
    guard, treasury = fraud.guard(ex, BIG)
    assert tx_reverts(treasury.functions.pay(ex.stranger, 1), ex.admin) == (
        "ZkmlOracleNoResult",
        (ex.model,),
    )
    assert call_reverts(guard.functions.fraudScore()) == ("ZkmlOracleNoResult", (ex.model,))


def test_fraud_guard_treats_an_answer_out_of_its_bounds_as_broken(ex: Ex, fraud: Fraud) -> None:
    fraud.submit(ex)
    # Chainlink's rule (answer <= 0 is broken) is minAnswer = 1; this score may be signed,
    # so the bounds are chosen to exclude it either way.
    bounds = (1, BIG) if fraud.score <= 0 else (-BIG, fraud.score - 1)
    guard, treasury = fraud.guard(ex, BIG, bounds=bounds)
    expected = ("FraudGuardAnswerOutOfBounds", (fraud.score, *bounds))
    assert call_reverts(guard.functions.fraudScore()) == expected
    assert tx_reverts(treasury.functions.pay(ex.stranger, 1), ex.admin) == expected


def test_only_the_owner_pays_from_the_treasury(ex: Ex, fraud: Fraud) -> None:
    fraud.submit(ex)
    _, treasury = fraud.guard(ex, BIG)
    got = tx_reverts(treasury.functions.pay(ex.stranger, 1), ex.stranger)
    assert got == ("OwnableUnauthorizedAccount", (ex.stranger,))


def test_fraud_guard_refuses_an_unusable_config(ex: Ex, fraud: Fraud) -> None:
    art = contracts.contract("FraudGuard")
    factory = ex.web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    a = fraud.adapter.address
    got = tx_reverts(factory.constructor(a, 0, HOUR, 2, 1, ex.admin), ex.admin)
    assert got == ("FraudGuardInvalidConfig", ("minAnswer > maxAnswer",))
    got = tx_reverts(factory.constructor(a, 0, 0, 0, 1, ex.admin), ex.admin)
    assert got == ("FraudGuardInvalidConfig", ("maxAge is zero",))


# --- CreditGrant: request/fulfil, disbursed above a verified score ---

SCORE = 1  # CreditGrant's score output


def grant_pool(ex: Ex, threshold: int, *, funds: int = 2 * ETHER) -> Any:
    pool = deploy(
        ex.web3,
        contracts.contract("CreditGrant"),
        ex.admin,
        ex.oracle.address,
        ex.model,
        SCORE,
        threshold,
        ETHER,
        HOUR,
        ex.admin,
        ex.admin,  # the attestor (data provider)
    )
    if funds:
        ex.fund(pool.address, funds)
    return pool


def attested(
    ex: Ex,
    pool: Any,
    applicant: str,
    felts: list[int],
    *,
    subject: bytes | None = None,
    attestor: str | None = None,
    expiry: int | None = None,
) -> tuple[list[int], bytes, int, bytes]:
    """``applyForGrant``'s arguments: ``felts`` with the attestor's EIP-712 signature (by
    Anvil's ``eth_signTypedData_v4``; the attestor is the admin unless said otherwise)."""
    subject = subject or keccak(text=applicant)
    expiry = expiry or latest_time(ex.web3) + HOUR
    signature = sign_credit_features(
        ex.url,
        attestor or ex.admin,
        pool=pool.address,
        chain_id=ex.web3.eth.chain_id,
        applicant=applicant,
        subject=subject,
        felts=felts,
        expiry=expiry,
    )
    return felts, subject, expiry, signature


def apply_for_grant(
    ex: Ex, pool: Any, applicant: str, inputs: list[int] | None = None, **attestation: Any
) -> int:
    args = attested(ex, pool, applicant, ex.inputs if inputs is None else inputs, **attestation)
    fn = pool.functions.applyForGrant(*args)
    receipt = send(ex.web3, fn, applicant, FEE)
    (ev,) = events(pool, "GrantRequested", receipt)
    (req,) = events(ex.oracle, "InferenceRequested", receipt)
    assert ev.args.requestId == req.args.requestId
    assert (req.args.callback, req.args.callbackGasLimit, req.args.fee) == (
        pool.address,
        GRANT_CALLBACK_GAS_LIMIT,
        FEE,
    )
    return int(ev.args.requestId)


def test_credit_grant_disburses_above_the_verified_score(ex: Ex) -> None:
    score = ex.outputs[SCORE]
    pool = grant_pool(ex, score - 1)
    rid = apply_for_grant(ex, pool, ex.alice)
    assert pool.functions.pendingApplication(ex.alice).call()[0] == rid
    receipt = ex.fulfill(rid)
    ex.callback_ok(receipt, rid)
    assert ex.callback_gas(receipt, pool.address) < GRANT_CALLBACK_GAS_LIMIT * 3 // 4
    (ev,) = events(pool, "GrantDecided", receipt)
    assert (ev.args.applicant, ev.args.requestId, ev.args.score, ev.args.decision) == (
        ex.alice,
        rid,
        score,
        GRANTED,
    )
    assert pool.functions.granted(ex.alice).call() is True
    assert pool.functions.grantStatus(ex.alice).call() == 1  # Granted
    assert pool.functions.claimable(ex.alice).call() == ETHER
    assert pool.functions.availableFunds().call() == ETHER
    assert pool.functions.pendingApplication(ex.alice).call() == [0, 0]
    # The relayer earned the fee; the applicant pulls the grant.
    assert ex.oracle.functions.pendingWithdrawal(ex.relayer).call() == FEE
    before = ex.balance(ex.alice)
    receipt = send(ex.web3, pool.functions.claim(), ex.alice)
    cost = receipt.gasUsed * receipt.effectiveGasPrice
    assert ex.balance(ex.alice) - before + cost == ETHER
    assert pool.functions.grantStatus(ex.alice).call() == 2  # Claimed
    assert pool.functions.availableFunds().call() == ETHER
    assert tx_reverts(pool.functions.claim(), ex.alice) == (
        "CreditGrantNothingToClaim",
        (ex.alice,),
    )
    # One grant per address.
    fn = pool.functions.applyForGrant(*attested(ex, pool, ex.alice, ex.inputs))
    got = tx_reverts(fn, ex.alice, FEE)
    assert got == ("CreditGrantAlreadyGranted", (ex.alice,))


def test_credit_grant_refuses_a_score_at_or_below_the_threshold(ex: Ex) -> None:
    score = ex.outputs[SCORE]
    pool = grant_pool(ex, score)  # strictly above is required
    rid = apply_for_grant(ex, pool, ex.alice)
    receipt = ex.fulfill(rid)
    ex.callback_ok(receipt, rid)
    (ev,) = events(pool, "GrantDecided", receipt)
    assert (ev.args.score, ev.args.decision) == (score, SCORE_TOO_LOW)
    assert pool.functions.granted(ex.alice).call() is False
    assert pool.functions.claimable(ex.alice).call() == 0
    assert pool.functions.availableFunds().call() == 2 * ETHER


def test_credit_grant_refuses_when_the_pool_cannot_pay(ex: Ex) -> None:
    pool = grant_pool(ex, ex.outputs[SCORE] - 1, funds=ETHER // 2)
    rid = apply_for_grant(ex, pool, ex.alice)
    receipt = ex.fulfill(rid)
    (ev,) = events(pool, "GrantDecided", receipt)
    assert ev.args.decision == INSUFFICIENT_FUNDS
    assert pool.functions.granted(ex.alice).call() is False


def test_credit_grant_accepts_only_the_oracles_callback(ex: Ex) -> None:
    pool = grant_pool(ex, ex.outputs[SCORE] - 1)
    rid = apply_for_grant(ex, pool, ex.alice)
    forged = pool.functions.onInferenceResult(rid, ex.model, pool.address, [0, 2**200])
    assert tx_reverts(forged, ex.stranger) == ("ZkmlConsumerNotOracle", (ex.stranger,))
    assert tx_reverts(forged, ex.alice) == ("ZkmlConsumerNotOracle", (ex.alice,))
    assert pool.functions.granted(ex.alice).call() is False


def test_credit_grant_binds_the_applicants_input(ex: Ex) -> None:
    """A valid proof on someone else's features cannot answer this application."""
    pool = grant_pool(ex, ex.outputs[SCORE] - 1)
    mine = [(ex.inputs[0] + 1) % field.FIELD_MODULUS, *ex.inputs[1:]]
    rid = apply_for_grant(ex, pool, ex.alice, mine)
    assert ex.fulfill_reverts(rid, ex.good) == ("ZkmlOracleInputMismatch", (rid,))


def test_credit_grant_pending_application_and_abandon(ex: Ex) -> None:
    pool = grant_pool(ex, ex.outputs[SCORE] - 1)
    rid = apply_for_grant(ex, pool, ex.alice)
    fn = pool.functions.applyForGrant(*attested(ex, pool, ex.alice, ex.inputs))
    got = tx_reverts(fn, ex.alice, FEE)
    assert got == ("CreditGrantApplicationPending", (ex.alice, rid))
    deadline = pool.functions.pendingApplication(ex.alice).call()[1]
    request = committed(ex.oracle, rid)
    got = tx_reverts(pool.functions.abandon(request), ex.alice)
    assert got == ("CreditGrantNotExpired", (rid, deadline))
    got = tx_reverts(pool.functions.abandon(request), ex.bob)
    assert got == ("CreditGrantNoApplication", (ex.bob,))
    advance(ex.url, HOUR + 1)
    before = ex.balance(ex.alice), ex.balance(pool.address)
    receipt = send(ex.web3, pool.functions.abandon(request), ex.alice)
    (abandoned,) = events(pool, "ApplicationAbandoned", receipt)
    assert (abandoned.args.requestId, abandoned.args.refund) == (rid, FEE)
    assert [e.args.requestId for e in events(ex.oracle, "RequestCancelled", receipt)] == [rid]
    # The fee goes back to alice, who paid it; the pool is unchanged; alice may apply again.
    cost = receipt.gasUsed * receipt.effectiveGasPrice
    assert (ex.balance(ex.alice) + cost - before[0], ex.balance(pool.address)) == (FEE, before[1])
    assert ex.oracle.functions.pendingWithdrawal(pool.address).call() == 0
    assert apply_for_grant(ex, pool, ex.alice) == rid + 1


# --- KycGate: only a salted, requester-bound commitment of the private input goes on-chain ---


def kyc_gate(ex: Ex, kyc: Kyc, pass_class: int) -> Any:
    return deploy(
        ex.web3, contracts.contract("KycGate"), ex.admin, ex.oracle.address, kyc.model, pass_class
    )


def request_kyc(ex: Ex, kyc: Kyc, gate: Any, applicant: str, commitment: int) -> tuple[int, Any]:
    """The applicant asks the oracle directly, with the gate as the callback."""
    deadline = int(ex.web3.eth.get_block("latest")["timestamp"]) + HOUR
    gas = gate.functions.CALLBACK_GAS_LIMIT().call()
    fn = ex.oracle.functions.requestInference(kyc.model, [commitment], gate.address, gas, deadline)
    receipt = send(ex.web3, fn, applicant, FEE)
    (req,) = events(ex.oracle, "InferenceRequested", receipt)
    assert list(req.args.inputFelts) == [commitment] and req.args.requester == applicant
    return int(req.args.requestId), receipt


def test_kyc_gate_admits_on_a_verified_pass_without_the_raw_input(ex: Ex, kyc: Kyc) -> None:
    gate = kyc_gate(ex, kyc, argmax(kyc.outputs_a))
    rid, receipt = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    # The raw features are nowhere in the request transaction (only their commitment is).
    tx_input = bytes(ex.web3.eth.get_transaction(receipt.transactionHash)["input"])
    assert kyc.commitment_a.to_bytes(32, "big") in tx_input
    for felt in kyc.raw_a:
        assert felt.to_bytes(32, "big") not in tx_input
    receipt = ex.fulfill(rid, kyc.a)
    ex.callback_ok(receipt, rid)
    assert ex.callback_gas(receipt, gate.address) < CALLBACK_BUDGET
    (ev,) = events(gate, "Admitted", receipt)
    assert (ev.args.account, ev.args.requestId) == (ex.alice, rid)
    assert gate.functions.isAdmitted(ex.alice).call() is True


def test_kyc_gate_a_copied_commitment_admits_no_one_but_its_owner(ex: Ex, kyc: Kyc) -> None:
    """The front-run of issue 13: bob copies alice's pending commitment into a request of his
    own and submits alice's proof for it first. The oracle refuses (the proof names alice);
    alice's request then settles and only alice is admitted."""
    gate = kyc_gate(ex, kyc, argmax(kyc.outputs_a))
    mine, _ = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    theirs, _ = request_kyc(ex, kyc, gate, ex.bob, kyc.commitment_a)
    fn = ex.oracle.functions.fulfill(committed(ex.oracle, theirs), kyc.a.proof, kyc.a.instances)
    assert tx_reverts(fn, ex.bob) == ("ZkmlOracleRequesterMismatch", (theirs, int(ex.alice, 16)))
    ex.callback_ok(ex.fulfill(mine, kyc.a), mine)
    assert gate.functions.isAdmitted(ex.alice).call() is True
    assert gate.functions.isAdmitted(ex.bob).call() is False


def paid_back(ex: Ex, account: str, before: int, receipt: Any) -> int:
    """What ``account`` received in ``receipt``'s transaction, net of the gas it paid."""
    spent = receipt.gasUsed * receipt.effectiveGasPrice if receipt["from"] == account else 0
    return ex.balance(account) + spent - before


def test_kyc_gate_returns_the_fee_of_an_unanswered_request(ex: Ex, kyc: Kyc) -> None:
    """Issue 14, row 3: an unanswered KYC request's fee goes back to the applicant (it used to
    be locked in the oracle for ever: the gate was the requester, with no cancel path and no
    way to receive a refund). The applicant is now the oracle-side requester (the commitment
    is bound to their address), so the oracle's own cancel and withdraw return the fee, at the
    deadline or at once when the model is deactivated; the gate holds no Ether."""
    gate = kyc_gate(ex, kyc, argmax(kyc.outputs_a))
    rid, _ = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    got = tx_reverts(ex.oracle.functions.cancel(committed(ex.oracle, rid)), ex.alice)
    assert got[0] == "ZkmlOracleRequestNotExpired"
    assert tx_reverts(ex.oracle.functions.cancel(committed(ex.oracle, rid)), ex.bob) == (
        "ZkmlOracleNotRequester",
        (rid, ex.bob),
    )
    advance(ex.url, HOUR + 1)
    receipt = send(ex.web3, ex.oracle.functions.cancel(committed(ex.oracle, rid)), ex.alice)
    (ev,) = events(ex.oracle, "RequestCancelled", receipt)
    assert (ev.args.requestId, ev.args.refund) == (rid, FEE)
    before = ex.balance(ex.alice)
    receipt = send(ex.web3, ex.oracle.functions.withdraw(), ex.alice)
    assert paid_back(ex, ex.alice, before, receipt) == FEE
    assert ex.balance(gate.address) == 0
    # A deactivated model: at once, no need to wait for the deadline.
    rid2, _ = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    send(ex.web3, ex.oracle.functions.setModelActive(kyc.model, False), ex.admin)
    receipt = send(ex.web3, ex.oracle.functions.cancel(committed(ex.oracle, rid2)), ex.alice)
    assert [e.args.refund for e in events(ex.oracle, "RequestCancelled", receipt)] == [FEE]
    # Nobody can send the gate Ether (it has no payable entry point).
    tx = {"from": ex.stranger, "to": gate.address, "value": 1}
    with pytest.raises(ContractLogicError):
        ex.web3.eth.send_transaction(tx)


def test_kyc_gate_a_proof_of_another_input_is_refused(ex: Ex, kyc: Kyc) -> None:
    """Alice commits to input A; a valid proof made on input B cannot answer her request."""
    gate = kyc_gate(ex, kyc, argmax(kyc.outputs_a))
    rid, _ = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    assert ex.fulfill_reverts(rid, kyc.b) == ("ZkmlOracleInputMismatch", (rid,))
    assert gate.functions.isAdmitted(ex.alice).call() is False
    # The same request with the right proof still succeeds.
    ex.callback_ok(ex.fulfill(rid, kyc.a), rid)
    assert gate.functions.isAdmitted(ex.alice).call() is True


def test_kyc_gate_refuses_a_failing_class(ex: Ex, kyc: Kyc) -> None:
    verified = argmax(kyc.outputs_a)
    gate = kyc_gate(ex, kyc, 1 - verified)
    rid, _ = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    receipt = ex.fulfill(rid, kyc.a)
    ex.callback_ok(receipt, rid)
    (ev,) = events(gate, "Refused", receipt)
    assert (ev.args.applicant, ev.args.requestId, ev.args.verifiedClass) == (
        ex.alice,
        rid,
        verified,
    )
    assert gate.functions.isAdmitted(ex.alice).call() is False


def test_kyc_gate_accepts_only_the_oracles_callback(ex: Ex, kyc: Kyc) -> None:
    gate = kyc_gate(ex, kyc, argmax(kyc.outputs_a))
    rid, _ = request_kyc(ex, kyc, gate, ex.alice, kyc.commitment_a)
    forged = gate.functions.onInferenceResult(rid, kyc.model, ex.alice, kyc.outputs_a)
    assert tx_reverts(forged, ex.alice) == ("ZkmlConsumerNotOracle", (ex.alice,))
    assert gate.functions.isAdmitted(ex.alice).call() is False


def test_kyc_gate_needs_a_requester_bound_model(ex: Ex, kyc: Kyc) -> None:
    art = contracts.contract("KycGate")
    factory = ex.web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    got = tx_reverts(factory.constructor(ex.oracle.address, ex.model, 0), ex.admin)
    assert got == ("KycGateModelNotBound", (ex.model,))
    got = tx_reverts(factory.constructor(ex.oracle.address, kyc.model, 2), ex.admin)
    assert got == ("KycGateInvalidClass", (2, 2))


# --- SmartJudgeDao: vote, then a verified judgement, then execution ---


def judge_dao(ex: Ex, approve_class: int) -> Any:
    members = [ex.alice, ex.bob, ex.carol]
    dao = deploy(
        ex.web3,
        contracts.contract("SmartJudgeDao"),
        ex.admin,
        ex.oracle.address,
        ex.model,
        approve_class,
        members,
        2,
        HOUR,
        HOUR,
    )
    ex.fund(dao.address, ETHER)
    return dao


def passed_proposal(ex: Ex, dao: Any, amount: int, judge_input: list[int] | None = None) -> int:
    """A payment of ``amount`` to the stranger, voted for by alice and bob, voting closed."""
    fn = dao.functions.propose(
        ex.stranger, amount, b"", ex.inputs if judge_input is None else judge_input, "pay"
    )
    (ev,) = events(dao, "ProposalCreated", send(ex.web3, fn, ex.alice))
    pid = int(ev.args.proposalId)
    assert dao.functions.state(pid).call() == ACTIVE
    for member in (ex.alice, ex.bob):
        send(ex.web3, dao.functions.vote(pid, True), member)
    got = tx_reverts(dao.functions.requestJudgement(pid), ex.stranger, FEE)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, ACTIVE))
    advance(ex.url, HOUR + 1)
    assert dao.functions.state(pid).call() == SUCCEEDED
    return pid


def judge(ex: Ex, dao: Any, pid: int) -> int:
    receipt = send(ex.web3, dao.functions.requestJudgement(pid), ex.stranger, FEE)
    (ev,) = events(dao, "JudgementRequested", receipt)
    (req,) = events(ex.oracle, "InferenceRequested", receipt)
    assert list(req.args.inputFelts) == dao.functions.proposalAction(pid).call()[3]
    assert dao.functions.state(pid).call() == JUDGING
    return int(ev.args.requestId)


def test_dao_executes_after_a_verified_approval(ex: Ex) -> None:
    verified = argmax(ex.outputs)
    dao = judge_dao(ex, verified)
    amount = ETHER // 4
    pid = passed_proposal(ex, dao, amount)
    rid = judge(ex, dao, pid)
    got = tx_reverts(dao.functions.execute(pid), ex.stranger)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, JUDGING))
    receipt = ex.fulfill(rid)
    ex.callback_ok(receipt, rid)
    assert ex.callback_gas(receipt, dao.address) < CALLBACK_BUDGET
    (ev,) = events(dao, "JudgementReceived", receipt)
    assert (ev.args.proposalId, ev.args.requestId, ev.args.verifiedClass, ev.args.approved) == (
        pid,
        rid,
        verified,
        True,
    )
    assert dao.functions.state(pid).call() == APPROVED
    before = ex.balance(ex.stranger)
    receipt = send(ex.web3, dao.functions.execute(pid), ex.carol)
    assert [e.args.proposalId for e in events(dao, "ProposalExecuted", receipt)] == [pid]
    assert ex.balance(ex.stranger) - before == amount
    assert dao.functions.state(pid).call() == EXECUTED
    got = tx_reverts(dao.functions.execute(pid), ex.carol)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, EXECUTED))


def test_dao_does_not_execute_a_verified_rejection(ex: Ex) -> None:
    verified = argmax(ex.outputs)
    dao = judge_dao(ex, 1 - verified)
    pid = passed_proposal(ex, dao, ETHER // 4)
    rid = judge(ex, dao, pid)
    receipt = ex.fulfill(rid)
    ex.callback_ok(receipt, rid)
    (ev,) = events(dao, "JudgementReceived", receipt)
    assert (ev.args.verifiedClass, ev.args.approved) == (verified, False)
    assert dao.functions.state(pid).call() == REJECTED
    got = tx_reverts(dao.functions.execute(pid), ex.carol)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, REJECTED))
    assert ex.balance(dao.address) == ETHER


def test_dao_judgement_is_bound_to_the_proposals_input(ex: Ex) -> None:
    dao = judge_dao(ex, argmax(ex.outputs))
    other = [*ex.inputs[:-1], (ex.inputs[-1] + 1) % field.FIELD_MODULUS]
    pid = passed_proposal(ex, dao, 1, other)
    rid = judge(ex, dao, pid)
    assert ex.fulfill_reverts(rid, ex.good) == ("ZkmlOracleInputMismatch", (rid,))
    assert dao.functions.state(pid).call() == JUDGING
    # Unanswered past its deadline, the judgement may be asked again (a new request).
    got = tx_reverts(dao.functions.requestJudgement(pid), ex.stranger, FEE)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, JUDGING))
    advance(ex.url, HOUR + 1)
    assert judge(ex, dao, pid) == rid + 1


def test_dao_voting_rules(ex: Ex) -> None:
    dao = judge_dao(ex, 0)
    propose = dao.functions.propose(ex.stranger, 1, b"", ex.inputs, "x")
    assert tx_reverts(propose, ex.stranger) == ("SmartJudgeDaoNotMember", (ex.stranger,))
    bad = dao.functions.propose(ex.stranger, 1, b"", ex.inputs[:3], "x")
    assert tx_reverts(bad, ex.alice) == ("SmartJudgeDaoWrongInputCount", (4, 3))
    (ev,) = events(dao, "ProposalCreated", send(ex.web3, propose, ex.alice))
    pid = int(ev.args.proposalId)
    send(ex.web3, dao.functions.vote(pid, True), ex.alice)
    got = tx_reverts(dao.functions.vote(pid, False), ex.alice)
    assert got == ("SmartJudgeDaoAlreadyVoted", (pid, ex.alice))
    got = tx_reverts(dao.functions.vote(pid, True), ex.stranger)
    assert got == ("SmartJudgeDaoNotMember", (ex.stranger,))
    send(ex.web3, dao.functions.vote(pid, False), ex.bob)
    assert dao.functions.proposalVotes(pid).call()[:2] == [1, 1]
    advance(ex.url, HOUR + 1)
    # 1 for, 1 against, quorum 2: defeated, never judged nor executed.
    assert dao.functions.state(pid).call() == DEFEATED
    got = tx_reverts(dao.functions.vote(pid, True), ex.carol)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, DEFEATED))
    got = tx_reverts(dao.functions.requestJudgement(pid), ex.stranger, FEE)
    assert got == ("SmartJudgeDaoUnexpectedState", (pid, DEFEATED))
    assert tx_reverts(dao.functions.execute(pid), ex.stranger) == (
        "SmartJudgeDaoUnexpectedState",
        (pid, DEFEATED),
    )
    assert dao.functions.state(99).call() == NONE


def test_dao_accepts_only_the_oracles_callback(ex: Ex) -> None:
    dao = judge_dao(ex, argmax(ex.outputs))
    pid = passed_proposal(ex, dao, 1)
    rid = judge(ex, dao, pid)
    forged = dao.functions.onInferenceResult(rid, ex.model, dao.address, ex.outputs)
    assert tx_reverts(forged, ex.alice) == ("ZkmlConsumerNotOracle", (ex.alice,))
    assert dao.functions.state(pid).call() == JUDGING


def test_dao_returns_the_fee_of_an_unanswered_judgement(ex: Ex) -> None:
    """Issue 14, row 3: whoever paid for a judgement that went unanswered gets the fee back."""
    dao = judge_dao(ex, 0)
    pid = passed_proposal(ex, dao, 1)
    rid = judge(ex, dao, pid)  # paid by the stranger
    got = tx_reverts(dao.functions.reclaimJudgementFee(committed(ex.oracle, rid)), ex.alice)
    assert got[0] == "ZkmlOracleRequestNotExpired"
    advance(ex.url, HOUR + 1)
    before = ex.balance(ex.stranger), ex.balance(dao.address)
    reclaim = dao.functions.reclaimJudgementFee(committed(ex.oracle, rid))
    receipt = send(ex.web3, reclaim, ex.alice)  # anyone may
    (ev,) = events(dao, "JudgementFeeReclaimed", receipt)
    assert (ev.args.requestId, ev.args.payer, ev.args.refund) == (rid, ex.stranger, FEE)
    assert ex.balance(ex.stranger) - before[0] == FEE
    assert ex.balance(dao.address) == before[1]
    got = tx_reverts(dao.functions.reclaimJudgementFee(committed(ex.oracle, rid)), ex.alice)
    assert got == ("SmartJudgeDaoUnknownRequest", (rid, ex.model))
    # The proposal may be judged again.
    assert judge(ex, dao, pid) == rid + 1


# --- issue 14, row 9: CreditGrant's features carry provenance ---


def test_credit_grant_refuses_invented_features(ex: Ex) -> None:
    """Without the data provider's attestation for the applicant, invented features (for which
    a valid proof exists: the proof shows what the model says, not whose features they are)
    cannot even be submitted; nor can another applicant's attestation, nor an expired one."""
    pool = grant_pool(ex, ex.outputs[SCORE] - 1)
    # Self-signed: the stranger attests their own invented features.
    args = attested(ex, pool, ex.stranger, ex.inputs, attestor=ex.stranger)
    got = tx_reverts(pool.functions.applyForGrant(*args), ex.stranger, FEE)
    assert got == ("CreditGrantBadAttestation", (ex.stranger, ex.stranger, args[2]))
    # Alice's attestation, replayed by the stranger.
    args = attested(ex, pool, ex.alice, ex.inputs)
    got = tx_reverts(pool.functions.applyForGrant(*args), ex.stranger, FEE)
    assert got[0] == "CreditGrantBadAttestation" and got[1][0] == ex.stranger
    # Alice's attestation, with other features.
    other = [(ex.inputs[0] + 1) % field.FIELD_MODULUS, *ex.inputs[1:]]
    got = tx_reverts(pool.functions.applyForGrant(other, *args[1:]), ex.alice, FEE)
    assert got[0] == "CreditGrantBadAttestation"
    # Expired.
    args = attested(ex, pool, ex.alice, ex.inputs, expiry=latest_time(ex.web3) - 1)
    got = tx_reverts(pool.functions.applyForGrant(*args), ex.alice, FEE)
    assert got == ("CreditGrantBadAttestation", (ex.alice, ex.admin, args[2]))
    assert pool.functions.attestor().call() == ex.admin


def test_credit_grant_one_grant_per_subject(ex: Ex) -> None:
    """Sybil addresses of one person (one attested subject) get one grant between them."""
    pool = grant_pool(ex, ex.outputs[SCORE] - 1)
    person = keccak(text="person-1")
    rid = apply_for_grant(ex, pool, ex.alice, subject=person)
    rid2 = apply_for_grant(ex, pool, ex.bob, subject=person)  # in flight at the same time
    ex.callback_ok(ex.fulfill(rid), rid)
    assert pool.functions.subjectGranted(person).call() is True
    receipt = ex.fulfill(rid2)
    (ev,) = events(pool, "GrantDecided", receipt)
    assert ev.args.decision == SUBJECT_GRANTED
    assert pool.functions.granted(ex.bob).call() is False
    fn = pool.functions.applyForGrant(*attested(ex, pool, ex.carol, ex.inputs, subject=person))
    assert tx_reverts(fn, ex.carol, FEE) == ("CreditGrantSubjectGranted", (person,))
