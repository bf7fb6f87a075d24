"""The example consumers (contracts/examples/) on a real Anvil, with ezkl's real verifiers
and real proofs of the bundled credit MLP (4 inputs, 2 outputs).

Which output means what (documented in each contract): FraudGuard takes output 0 of the
screened payment's own inference as the fraud score; CreditGrant takes output 1 as the
credit score; KycGate classifies by the argmax of the outputs (the smart judge, on ZkmlJudge,
is tested in tests/test_judge.py and examples/smart_judge/). Thresholds and classes are set
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

from tests.oracle_helpers import (
    HOUR,
    ProofData,
    advance,
    decode_error,
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
from zkml_oracle import field
from zkml_oracle.chain import LocalNode, contracts, rpc
from zkml_oracle.chain.oracle import input_felts, proof_calldata, sign_credit_features
from zkml_oracle.circuit.commitment import Binding
from zkml_oracle.prover import prove
from zkml_oracle.testing import chain_snapshot, committed
from zkml_oracle.types import BuildResult, ProofResult

ETHER = 10**18
FEE = 10**15
GRANTED, SCORE_TOO_LOW, INSUFFICIENT_FUNDS, SUBJECT_GRANTED = 0, 1, 2, 3
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
    with chain_snapshot(e.url):
        yield


# --- FraudGuard: each payment screened on its own features (issue 14, row 1) ---

SCREENING, PAID, BLOCKED, ABANDONED = 1, 2, 3, 4  # GuardedTreasury.PaymentState
FRAUD_CALLBACK_GAS_LIMIT = 150_000  # FraudGuard.CALLBACK_GAS_LIMIT


@dataclass(repr=False)
class Fraud:
    """The credit MLP as a fraud model (output 0: the score): the example input's proof and
    a proof of another input, on either side of a threshold between their scores."""

    low: ProofData  # the input with the lower score: cleared
    high: ProofData  # the other: blocked
    low_score: int
    high_score: int

    def treasury(self, ex: Ex) -> tuple[Any, Any]:
        """A guard blocking above `low_score` and a treasury (1 ether) behind it."""
        guard = deploy(
            ex.web3,
            contracts.contract("FraudGuard"),
            ex.admin,
            ex.oracle.address,
            ex.model,
            0,
            self.low_score,
            ex.admin,
        )
        treasury = deploy(
            ex.web3, contracts.contract("GuardedTreasury"), ex.admin, guard.address, ex.admin
        )
        ex.fund(treasury.address, ETHER)
        return guard, treasury

    def pay(self, ex: Ex, treasury: Any, data: ProofData, amount: int = ETHER // 10) -> int:
        """The treasury asks to pay ``amount`` to bob, screened on ``data``'s input."""
        features = inputs_of_proof(ex, data)
        fn = treasury.functions.requestPayment(
            ex.bob, amount, features, latest_time(ex.web3) + HOUR
        )
        receipt = send(ex.web3, fn, ex.admin, FEE)
        (requested,) = events(treasury, "PaymentRequested", receipt)
        return int(requested.args.requestId)


def inputs_of_proof(ex: Ex, data: ProofData) -> list[int]:
    return data.instances[: len(ex.inputs)]  # the public inputs lead the instances


@pytest.fixture(scope="module")
def fraud(ex: Ex, built: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Fraud:
    folder = tmp_path_factory.mktemp("fraud")
    (folder / "other.json").write_text(json.dumps({"input_data": OTHER_SAMPLE}))
    other = proof_data(
        built, prove(built.build_dir, folder / "other.json", folder / "p.json").proof_path
    )
    scores = {"example": ex.outputs[0], "other": outputs_of(built, other.instances)[0]}
    assert scores["example"] != scores["other"]
    if scores["example"] < scores["other"]:
        return Fraud(ex.good, other, scores["example"], scores["other"])
    return Fraud(other, ex.good, scores["other"], scores["example"])


def test_fraud_guard_releases_the_payment_it_screened(ex: Ex, fraud: Fraud) -> None:
    guard, treasury = fraud.treasury(ex)
    rid = fraud.pay(ex, treasury, fraud.low)
    assert treasury.functions.payment(rid).call() == [ex.bob, SCREENING, ETHER // 10]
    assert treasury.functions.reserved().call() == ETHER // 10
    receipt = ex.fulfill(rid, fraud.low)
    ex.callback_ok(receipt, rid)
    assert ex.callback_gas(receipt, guard.address) <= FRAUD_CALLBACK_GAS_LIMIT * 3 // 4
    (screened,) = events(guard, "TransferScreened", receipt)
    assert (screened.args.requestId, screened.args.client) == (rid, treasury.address)
    assert (screened.args.cleared, screened.args.score) == (True, fraud.low_score)
    (paid,) = events(treasury, "Paid", receipt)
    assert (paid.args.requestId, paid.args.to, paid.args.amount) == (rid, ex.bob, ETHER // 10)
    before = ex.balance(ex.bob)
    receipt = send(ex.web3, treasury.functions.withdraw(), ex.bob)
    gas = receipt.gasUsed * receipt.effectiveGasPrice
    assert ex.balance(ex.bob) - before + gas == ETHER // 10
    assert treasury.functions.reserved().call() == 0
    got = tx_reverts(treasury.functions.withdraw(), ex.bob)
    assert got == ("GuardedTreasuryNothingOwed", (ex.bob,))


def test_fraud_guard_blocks_the_payment_it_screened(ex: Ex, fraud: Fraud) -> None:
    _, treasury = fraud.treasury(ex)
    rid = fraud.pay(ex, treasury, fraud.high)
    receipt = ex.fulfill(rid, fraud.high)
    ex.callback_ok(receipt, rid)
    (blocked,) = events(treasury, "Blocked", receipt)
    assert (blocked.args.requestId, blocked.args.score) == (rid, fraud.high_score)
    assert treasury.functions.payment(rid).call()[1] == BLOCKED
    assert treasury.functions.reserved().call() == 0
    assert treasury.functions.owed(ex.bob).call() == 0
    assert ex.balance(treasury.address) == ETHER


def test_fraud_guard_is_not_moved_by_a_result_for_another_input(ex: Ex, fraud: Fraud) -> None:
    """Row 1: the old guard read whatever was pushed last to a feed. A payment that must be
    blocked is not cleared by a genuine low-score result for another input: not by a feed
    round, not by that proof offered for its request, not by a stranger's request naming the
    guard; its own input's result blocks it."""
    guard, treasury = fraud.treasury(ex)
    rid = fraud.pay(ex, treasury, fraud.high)
    # A genuine low-score round on the model's feed (the registrar publishes it).
    send(
        ex.web3,
        ex.oracle.functions.submitResult(ex.model, fraud.low.proof, fraud.low.instances),
        ex.admin,
    )
    # The low-score proof offered for this payment's request.
    assert ex.fulfill_reverts(rid, fraud.low) == ("ZkmlOracleInputMismatch", (rid,))
    # A stranger's own request for the low-score input, called back on the guard.
    fn = ex.oracle.functions.requestInference(
        ex.model,
        inputs_of_proof(ex, fraud.low),
        guard.address,
        FRAUD_CALLBACK_GAS_LIMIT,
        latest_time(ex.web3) + HOUR,
    )
    (theirs,) = [
        int(e.args.requestId)
        for e in events(ex.oracle, "InferenceRequested", send(ex.web3, fn, ex.stranger))
    ]
    receipt = ex.fulfill(theirs, fraud.low)
    (failed,) = events(ex.oracle, "CallbackFailed", receipt)
    assert decode_error(bytes(failed.args.reason)) == (
        "ZkmlConsumerForeignRequest",
        (theirs, ex.stranger),
    )
    assert treasury.functions.payment(rid).call()[1] == SCREENING
    assert guard.functions.screening(rid).call() == [treasury.address, 1]  # Pending
    # Its own input's result blocks it.
    receipt = ex.fulfill(rid, fraud.high)
    (blocked,) = events(treasury, "Blocked", receipt)
    assert blocked.args.requestId == rid
    assert guard.functions.screening(rid).call() == [treasury.address, 3]  # Blocked


def test_fraud_guard_refunds_an_unanswered_screening(ex: Ex, fraud: Fraud) -> None:
    guard, treasury = fraud.treasury(ex)
    rid = fraud.pay(ex, treasury, fraud.low)
    got = tx_reverts(treasury.functions.abandonPayment(committed(ex.oracle, rid)), ex.admin)
    assert got[0] == "ZkmlOracleRequestNotExpired"
    assert tx_reverts(guard.functions.cancel(committed(ex.oracle, rid)), ex.stranger) == (
        "FraudGuardNotClient",
        (rid, ex.stranger),
    )
    got = tx_reverts(treasury.functions.abandonPayment(committed(ex.oracle, rid)), ex.stranger)
    assert got == ("OwnableUnauthorizedAccount", (ex.stranger,))
    advance(ex.url, HOUR + 1)
    before = ex.balance(treasury.address)
    receipt = send(ex.web3, treasury.functions.abandonPayment(committed(ex.oracle, rid)), ex.admin)
    (abandoned,) = events(treasury, "Abandoned", receipt)
    assert (abandoned.args.requestId, abandoned.args.refund) == (rid, FEE)
    assert ex.balance(treasury.address) - before == FEE
    assert treasury.functions.payment(rid).call()[1] == ABANDONED
    assert treasury.functions.reserved().call() == 0
    # Cancelled at the oracle: no late proof settles it.
    assert ex.fulfill_reverts(rid, fraud.low)[0] == "ZkmlOracleRequestNotPending"


def test_fraud_guard_refuses_an_unusable_config_and_foreign_callers(ex: Ex, fraud: Fraud) -> None:
    art = contracts.contract("FraudGuard")
    factory = ex.web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    got = tx_reverts(factory.constructor(ex.oracle.address, ex.model, 2, 0, ex.admin), ex.admin)
    assert got == ("FraudGuardInvalidConfig", ("scoreOutput is not an output",))
    guard, treasury = fraud.treasury(ex)
    got = tx_reverts(treasury.functions.onTransferScreened(1, True, 0), ex.stranger)
    assert got == ("GuardedTreasuryNotGuard", (ex.stranger,))
    fn = treasury.functions.requestPayment(
        ex.bob, 2 * ETHER, ex.inputs, latest_time(ex.web3) + HOUR
    )
    assert tx_reverts(fn, ex.admin) == ("GuardedTreasuryInsufficientFunds", (2 * ETHER, ETHER))
    assert (
        tx_reverts(guard.functions.setMaxScore(0), ex.stranger)[0] == "OwnableUnauthorizedAccount"
    )


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
