"""Batching (issue 8) on a real Anvil: one real ezkl proof of the credit MLP built with
``batch=4`` settles up to 4 requests (``fulfillBatch``) or publishes 4 results as one push-feed
round (``submitResultBatch``).

The batched twins of the protocol's adversarial cases, each asserting the exact custom error or
event. The helpers are tests/test_oracle.py's; the contracts are deployed once per module and
every test runs between an ``evm_snapshot`` and an ``evm_revert``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils.crypto import keccak

from tests.conftest import BATCH, calibration_rows, prove_rows
from tests.oracle_helpers import (
    CANCELLED,
    FULFILLED,
    HOUR,
    PENDING,
    R,
    advance,
    call_reverts,
    decode_error,
    deploy,
    deploy_build_verifier,
    events,
    input_hash,
    latest_time,
    model_config,
    model_id,
    send,
    tx_reverts,
    web3_of,
)
from zkml_oracle import field
from zkml_oracle.chain import LocalNode, contracts, rpc
from zkml_oracle.chain.oracle import ZERO_ADDRESS, fulfilled_outputs, input_felts, proof_calldata
from zkml_oracle.testing import chain_snapshot, committed, terms
from zkml_oracle.types import BuildResult, ProofResult

FEE = 10**15
ZERO = ZERO_ADDRESS
# IZkmlOracle.SkipReason
SKIP_FULFILLED, SKIP_CANCELLED, SKIP_EXPIRED = 0, 1, 2
# TestConsumer.Mode
RECORD, REVERT, BURN_GAS, REENTER = 0, 1, 3, 4


@dataclass(frozen=True)
class Batch:
    """A batched proof as the oracle takes it, with what each proven slot carries."""

    proof: bytes
    instances: list[int]
    felts: list[list[int]]  # per proven sample: what a request for it commits to
    outputs: list[list[int]]  # per slot: signed fixed-point outputs, from the instances
    result: ProofResult

    def tampered(self) -> bytes:
        raw = bytearray(self.proof)
        raw[200] ^= 0x01
        return bytes(raw)


def batch_of(build: BuildResult, rows: list[list[float]], out: Path) -> Batch:
    result = prove_rows(build, rows, out)
    proof, instances = proof_calldata(result.proof_path)
    layout = build.manifest.layout
    outputs = []
    for slot in range(layout.batch):
        seg = layout.output_slot(slot)
        outputs.append([field.felt_to_int(f) for f in instances[seg.offset : seg.end]])
    felts = [input_felts(build.manifest, [row]) for row in rows]
    return Batch(proof, instances, felts, outputs, result)


@dataclass(repr=False)
class BEnv:
    url: str
    web3: Any
    build: BuildResult
    admin: str
    requester: str
    relayer: str
    stranger: str
    oracle: Any
    config: tuple[Any, ...]
    model: bytes
    other_model: bytes  # same layout, another verifier: another model id
    consumers: dict[int, Any]  # TestConsumer by mode
    rows: list[list[float]]
    full: Batch  # rows 0..3, one per slot
    one: Batch  # row 4 alone: slots 1..3 are padding (row 4 again)

    def request(
        self,
        felts: list[int],
        *,
        fee: int = FEE,
        deadline: int | None = None,
        model: bytes | None = None,
    ) -> int:
        fn = self.oracle.functions.requestInference(
            model or self.model, felts, ZERO, 0, deadline or latest_time(self.web3) + HOUR
        )
        receipt = send(self.web3, fn, self.requester, fee)
        (event,) = events(self.oracle, "InferenceRequested", receipt)
        return int(event.args.requestId)

    def consumer_request(self, mode: int, felts: list[int], gas_limit: int = 200_000) -> int:
        fn = self.consumers[mode].functions.request(
            self.model, felts, gas_limit, latest_time(self.web3) + HOUR
        )
        (event,) = events(self.oracle, "InferenceRequested", send(self.web3, fn, self.requester))
        return int(event.args.requestId)

    def batch_fn(self, ids: list[int], data: Batch, model: bytes | None = None) -> Any:
        return self.oracle.functions.fulfillBatch(
            model or self.model,
            [terms(committed(self.oracle, r)) for r in ids],
            data.proof,
            data.instances,
        )

    def fulfill_batch(self, ids: list[int], data: Batch) -> Any:
        return send(self.web3, self.batch_fn(ids, data), self.relayer)

    def batch_reverts(
        self, ids: list[int], data: Batch, model: bytes | None = None
    ) -> tuple[str, tuple[Any, ...]]:
        return tx_reverts(self.batch_fn(ids, data, model), self.relayer)

    def status(self, rid: int) -> int:
        return int(self.oracle.functions.requestStatus(rid).call())


@pytest.fixture(scope="module")
def benv(
    anvil: LocalNode,
    batch_built: BuildResult,
    example: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> BEnv:
    web3 = web3_of(anvil.url)
    admin, requester, relayer, stranger = web3.eth.accounts[:4]
    oracle = deploy(web3, contracts.oracle(), admin, admin, False)
    config = model_config(batch_built, deploy_build_verifier(web3, batch_built, admin))
    mock = deploy(web3, contracts.contract("MockVerifier"), admin)
    other = (mock.address, *config[1:])
    for c in (config, other):
        send(web3, oracle.functions.registerModel(c), admin)
    consumers = {}
    for mode in (RECORD, REVERT, BURN_GAS, REENTER):
        consumers[mode] = deploy(web3, contracts.contract("TestConsumer"), admin, oracle.address)
        send(web3, consumers[mode].functions.setMode(mode), admin)
    rows = calibration_rows(example)
    folder = tmp_path_factory.mktemp("batch-proofs")
    return BEnv(
        url=anvil.url,
        web3=web3,
        build=batch_built,
        admin=admin,
        requester=requester,
        relayer=relayer,
        stranger=stranger,
        oracle=oracle,
        config=config,
        model=model_id(config),
        other_model=model_id(other),
        consumers=consumers,
        rows=rows,
        full=batch_of(batch_built, rows[:BATCH], folder / "full.json"),
        one=batch_of(batch_built, rows[BATCH : BATCH + 1], folder / "one.json"),
    )


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    """Chain state is restored after every test that touches the module's deployment."""
    if "benv" not in request.fixturenames:
        yield
        return
    env: BEnv = request.getfixturevalue("benv")
    with chain_snapshot(env.url):
        yield


def requests_for(env: BEnv, data: Batch, fees: list[int] | None = None) -> list[int]:
    """One request per proven sample of ``data``, in slot order."""
    fees = fees or [FEE] * len(data.felts)
    return [env.request(felts, fee=fee) for felts, fee in zip(data.felts, fees, strict=True)]


def verify_gas(env: BEnv) -> int:
    """Bare ``verifyProof`` of the full batch proof, straight to the verifier."""
    selector = keccak(text="verifyProof(bytes,uint256[])")[:4]
    args = abi_encode(["bytes", "uint256[]"], [env.full.proof, env.full.instances])
    tx = {"from": env.relayer, "to": env.config[0], "data": "0x" + (selector + args).hex()}
    return int(env.web3.eth.estimate_gas(tx))


def skipped(env: BEnv, receipt: Any) -> list[tuple[int, int]]:
    """(request id, SkipReason) of every RequestSkipped, in slot order."""
    return [
        (e.args.requestId, e.args.reason) for e in events(env.oracle, "RequestSkipped", receipt)
    ]


def fulfilled(env: BEnv, receipt: Any) -> dict[int, list[int]]:
    """Request id -> outputs, in slot order, from ``RequestFulfilled`` and ``BatchFulfilled``."""
    logs = [
        *events(env.oracle, "RequestFulfilled", receipt),
        *events(env.oracle, "BatchFulfilled", receipt),
    ]
    return {rid: list(out) for e in logs for rid, out in fulfilled_outputs(e).items()}


def batch_event(env: BEnv, receipt: Any) -> tuple[bytes, str, int, int]:
    (e,) = events(env.oracle, "BatchFulfilled", receipt)
    return (e.args.modelId, e.args.fulfiller, len(e.args.requestIds), e.args.skipped)


# --- registration ---


def test_the_batched_model_is_registered_with_its_batch_size(benv: BEnv) -> None:
    layout = benv.build.manifest.layout
    assert layout.batch == BATCH == benv.config[10]
    # [in_0 .. in_3 | out_0 .. out_3]: 4 public inputs and 2 outputs per slot, fixed params.
    assert benv.config[2:7] == (layout.total, 0, 4, 4 * BATCH, 2)
    model = benv.oracle.functions.getModel(benv.model).call()
    assert tuple(model[0]) == benv.config and model[1] is True
    assert len(benv.full.instances) == layout.total == 6 * BATCH


# --- fulfilBatch: the happy path ---


def test_one_proof_settles_four_requests(benv: BEnv) -> None:
    fees = [FEE, 2 * FEE, 0, 3 * FEE]
    ids = requests_for(benv, benv.full, fees)
    assert benv.batch_fn(ids, benv.full).call({"from": benv.relayer}) == BATCH
    receipt = benv.fulfill_batch(ids, benv.full)
    got = fulfilled(benv, receipt)
    assert list(got) == ids  # in slot order, each with its own slot's outputs
    assert [got[rid] for rid in ids] == benv.full.outputs
    assert len({tuple(o) for o in benv.full.outputs}) == BATCH  # four different answers
    scale = benv.config[7]
    for rid, sample in zip(ids, benv.full.result.samples, strict=True):
        assert [q / 2**scale for q in got[rid]] == pytest.approx(sample[0], abs=1e-9)
    # One log for the whole batch, naming every request: no RequestFulfilled per slot.
    assert not events(benv.oracle, "RequestFulfilled", receipt)
    assert batch_event(benv, receipt) == (benv.model, benv.relayer, BATCH, 0)
    assert skipped(benv, receipt) == []
    # Every fee credited to the fulfiller at once, every escrow released.
    assert benv.oracle.functions.pendingWithdrawal(benv.relayer).call() == sum(fees)
    assert [benv.status(rid) for rid in ids] == [FULFILLED] * BATCH
    assert benv.web3.eth.get_balance(benv.oracle.address) == sum(fees)


def test_a_batch_may_answer_fewer_requests_than_slots(benv: BEnv) -> None:
    """Slots past the request ids are never read: here they prove other real inputs."""
    ids = requests_for(benv, benv.full)[:2]
    receipt = benv.fulfill_batch(ids, benv.full)
    assert list(fulfilled(benv, receipt).values()) == benv.full.outputs[:2]
    assert batch_event(benv, receipt)[2:] == (2, 0)


def test_fulfil_on_a_batched_model_reads_slot_0(benv: BEnv) -> None:
    first, second = requests_for(benv, benv.full)[:2]
    fn = benv.oracle.functions.fulfill(
        committed(benv.oracle, second), benv.full.proof, benv.full.instances
    )
    assert tx_reverts(fn, benv.relayer) == ("ZkmlOracleInputMismatch", (second,))
    fn = benv.oracle.functions.fulfill(
        committed(benv.oracle, first), benv.full.proof, benv.full.instances
    )
    receipt = send(benv.web3, fn, benv.relayer)
    assert fulfilled(benv, receipt) == {first: benv.full.outputs[0]}
    assert not events(benv.oracle, "BatchFulfilled", receipt)


# --- fulfilBatch: adversarial cases (the whole batch is refused) ---


def test_a_tampered_batch_proof_is_refused(benv: BEnv) -> None:
    ids = requests_for(benv, benv.full)
    fn = benv.oracle.functions.fulfillBatch(
        benv.model,
        [terms(committed(benv.oracle, r)) for r in ids],
        benv.full.tampered(),
        benv.full.instances,
    )
    assert tx_reverts(fn, benv.relayer) == ("ZkmlOracleInvalidProof", (benv.model,))
    instances = list(benv.full.instances)
    instances[-1] = (instances[-1] + 1) % R  # the last slot's last output
    fn = benv.oracle.functions.fulfillBatch(
        benv.model, [terms(committed(benv.oracle, r)) for r in ids], benv.full.proof, instances
    )
    assert tx_reverts(fn, benv.relayer) == ("ZkmlOracleInvalidProof", (benv.model,))
    assert [benv.status(rid) for rid in ids] == [PENDING] * BATCH


def test_swapped_requests_are_refused(benv: BEnv) -> None:
    """Each slot binds its own request: the right proof with two ids swapped fails (the
    oracle recomputes each commitment with its slot's input hash: not the committed one)."""
    a, b, c, d = requests_for(benv, benv.full)
    assert benv.batch_reverts([b, a, c, d], benv.full) == ("ZkmlOracleRequestMismatch", (b,))
    assert benv.batch_reverts([a, b, d, c], benv.full) == ("ZkmlOracleRequestMismatch", (d,))
    # The input slice edited to match the swapped request: now the proof no longer holds.
    instances = list(benv.full.instances)
    instances[0:4], instances[4:8] = instances[4:8], instances[0:4]
    fn = benv.oracle.functions.fulfillBatch(
        benv.model,
        [terms(committed(benv.oracle, r)) for r in [b, a, c, d]],
        benv.full.proof,
        instances,
    )
    assert tx_reverts(fn, benv.relayer) == ("ZkmlOracleInvalidProof", (benv.model,))
    benv.fulfill_batch([a, b, c, d], benv.full)


def test_a_padded_slot_cannot_answer_another_request(benv: BEnv) -> None:
    """One sample proven (slots 1..3 repeat it): a second request for another input is
    refused with the whole batch, even though its slot holds a valid inference."""
    real = benv.request(benv.one.felts[0])
    other = benv.request(benv.full.felts[1])
    assert benv.batch_reverts([real, other], benv.one) == ("ZkmlOracleRequestMismatch", (other,))
    assert benv.status(real) == PENDING
    receipt = benv.fulfill_batch([real], benv.one)
    assert fulfilled(benv, receipt) == {real: benv.one.outputs[0]}


def test_a_wrong_instance_count_is_refused(benv: BEnv) -> None:
    ids = requests_for(benv, benv.full)
    n = len(benv.full.instances)
    for instances in (benv.full.instances[:-1], [*benv.full.instances, 0], []):
        fn = benv.oracle.functions.fulfillBatch(
            benv.model, [terms(committed(benv.oracle, r)) for r in ids], benv.full.proof, instances
        )
        assert tx_reverts(fn, benv.relayer) == ("ZkmlOracleWrongInstanceCount", (n, len(instances)))


def test_an_instance_outside_the_field_is_refused(benv: BEnv) -> None:
    ids = requests_for(benv, benv.full)
    last = len(benv.full.instances) - 1
    for index, value in ((last, R), (9, benv.full.instances[9] + R), (2, 2**256 - 1)):
        instances = list(benv.full.instances)
        instances[index] = value
        fn = benv.oracle.functions.fulfillBatch(
            benv.model, [terms(committed(benv.oracle, r)) for r in ids], benv.full.proof, instances
        )
        assert tx_reverts(fn, benv.relayer) == ("ZkmlOracleInstanceOutOfField", (index, value))


def test_a_request_of_another_model_is_refused(benv: BEnv) -> None:
    a, b, c, d = requests_for(benv, benv.full)
    foreign = benv.request(benv.full.felts[2], model=benv.other_model)
    # Its commitment, recomputed with the batch's model id, is not the committed one.
    got = benv.batch_reverts([a, b, foreign, d], benv.full)
    assert got == ("ZkmlOracleRequestMismatch", (foreign,))
    # The same requests under the other model's id: now a, b, d are the foreign ones.
    got = benv.batch_reverts([a, b, foreign, d], benv.full, model=benv.other_model)
    assert got == ("ZkmlOracleRequestMismatch", (a,))
    assert benv.status(c) == PENDING


def test_unknown_requests_and_models_are_refused(benv: BEnv) -> None:
    a, b, c, d = requests_for(benv, benv.full)
    assert benv.batch_reverts([a, b, 999, d], benv.full) == ("ZkmlOracleUnknownRequest", (999,))
    unknown = b"\x07" * 32
    assert benv.batch_reverts([a], benv.full, model=unknown) == (
        "ZkmlOracleUnknownModel",
        (unknown,),
    )
    send(benv.web3, benv.oracle.functions.setModelActive(benv.model, False), benv.admin)
    assert benv.batch_reverts([a], benv.full) == ("ZkmlOracleModelInactive", (benv.model,))
    send(benv.web3, benv.oracle.functions.setModelActive(benv.model, True), benv.admin)
    benv.fulfill_batch([a, b, c, d], benv.full)


def test_a_batch_must_have_1_to_batch_size_requests(benv: BEnv) -> None:
    ids = requests_for(benv, benv.full)
    extra = benv.request(benv.full.felts[0])
    assert benv.batch_reverts([*ids, extra], benv.full) == ("ZkmlOracleBadBatchSize", (5, BATCH))
    assert benv.batch_reverts([], benv.full) == ("ZkmlOracleBadBatchSize", (0, BATCH))


# --- fulfilBatch: skipped slots (the rest of the batch settles) ---


def test_a_request_fulfilled_in_an_earlier_batch_is_skipped(benv: BEnv) -> None:
    a, b, c, d = requests_for(benv, benv.full)
    benv.fulfill_batch([a, b], benv.full)
    paid = benv.oracle.functions.pendingWithdrawal(benv.relayer).call()
    assert paid == 2 * FEE
    receipt = benv.fulfill_batch([a, b, c, d], benv.full)
    assert skipped(benv, receipt) == [(a, SKIP_FULFILLED), (b, SKIP_FULFILLED)]
    # Slots 2 and 3's outputs, though the two skipped slots before them left room unused in
    # the hand-encoded BatchFulfilled.
    assert list(fulfilled(benv, receipt).items()) == [
        (c, benv.full.outputs[2]),
        (d, benv.full.outputs[3]),
    ]
    assert batch_event(benv, receipt)[2:] == (2, 2)
    assert benv.oracle.functions.pendingWithdrawal(benv.relayer).call() == 4 * FEE
    # A fulfilled request's half is cleared: its slot is skipped whatever it holds (nothing
    # is left to check, nothing to pay), so a batch of settled requests is refused at once.
    assert benv.batch_reverts([b, a, c, d], benv.full) == ("ZkmlOracleNothingToSettle", ())


def test_a_batch_with_nothing_left_to_settle_is_refused_before_verifying(benv: BEnv) -> None:
    ids = requests_for(benv, benv.full)
    benv.fulfill_batch(ids, benv.full)
    assert benv.batch_reverts(ids, benv.full) == ("ZkmlOracleNothingToSettle", ())
    # A relayer that lost every race pays little: the verifier was never run.
    tx = benv.batch_fn(ids, benv.full).transact({"from": benv.relayer, "gas": 3_000_000})
    receipt = benv.web3.eth.wait_for_transaction_receipt(tx)
    assert receipt.status == 0
    # Mostly the calldata's cost (the proof, and each request's committed fields, about 3 k
    # gas each since issue 16): a fraction of what verifying alone costs.
    print(f"\nNothingToSettle: {receipt.gasUsed:,} gas; verifyProof {verify_gas(benv):,}")
    assert receipt.gasUsed < verify_gas(benv) * 2 // 5


def test_cancelled_and_expired_requests_are_skipped(benv: BEnv) -> None:
    soon = latest_time(benv.web3) + 60
    cancelled = benv.request(benv.full.felts[0], deadline=soon)
    expired = benv.request(benv.full.felts[1], deadline=soon)
    c, d = (benv.request(felts) for felts in benv.full.felts[2:])
    advance(benv.url, 61)
    send(benv.web3, benv.oracle.functions.cancel(committed(benv.oracle, cancelled)), benv.requester)
    receipt = benv.fulfill_batch([cancelled, expired, c, d], benv.full)
    assert skipped(benv, receipt) == [(cancelled, SKIP_CANCELLED), (expired, SKIP_EXPIRED)]
    assert list(fulfilled(benv, receipt).items()) == [
        (c, benv.full.outputs[2]),
        (d, benv.full.outputs[3]),
    ]
    assert batch_event(benv, receipt)[2:] == (2, 2)
    assert [benv.status(r) for r in (cancelled, expired, c, d)] == [
        CANCELLED,
        PENDING,
        FULFILLED,
        FULFILLED,
    ]
    # The expired request keeps its escrow for its requester.
    assert benv.status(expired) == PENDING
    assert benv.oracle.functions.pendingWithdrawal(benv.relayer).call() == 2 * FEE
    send(benv.web3, benv.oracle.functions.cancel(committed(benv.oracle, expired)), benv.requester)
    assert benv.oracle.functions.pendingWithdrawal(benv.requester).call() == 2 * FEE
    assert benv.batch_reverts([cancelled, expired], benv.full) == ("ZkmlOracleNothingToSettle", ())


def test_a_duplicate_id_in_one_batch_is_settled_once(benv: BEnv) -> None:
    """The padded proof repeats its sample in every slot: the same id in two slots binds twice
    but settles (and pays) once."""
    rid = benv.request(benv.one.felts[0])
    receipt = benv.fulfill_batch([rid, rid, rid], benv.one)
    assert fulfilled(benv, receipt) == {rid: benv.one.outputs[0]}
    (batch,) = events(benv.oracle, "BatchFulfilled", receipt)
    assert list(batch.args.requestIds) == [rid]
    assert skipped(benv, receipt) == [(rid, SKIP_FULFILLED), (rid, SKIP_FULFILLED)]
    assert batch_event(benv, receipt)[2:] == (1, 2)
    assert benv.oracle.functions.pendingWithdrawal(benv.relayer).call() == FEE


# --- consumers inside a batch ---


def test_consumers_that_misbehave_do_not_undo_the_batch(benv: BEnv) -> None:
    modes = (RECORD, REVERT, BURN_GAS, REENTER)
    felts = benv.full.felts
    ids = [benv.consumer_request(mode, f) for mode, f in zip(modes, felts, strict=True)]
    receipt = benv.fulfill_batch(ids, benv.full)
    assert list(fulfilled(benv, receipt)) == ids
    assert [benv.status(rid) for rid in ids] == [FULFILLED] * BATCH
    (ok,) = events(benv.oracle, "CallbackSucceeded", receipt)
    assert ok.args.requestId == ids[0]
    calls, last_id, last_model, outputs = benv.consumers[RECORD].functions.last().call()
    assert (calls, last_id, last_model) == (1, ids[0], benv.model)
    assert list(outputs) == benv.full.outputs[0]  # its own slot's outputs
    failures = events(benv.oracle, "CallbackFailed", receipt)
    failed = {e.args.requestId: bytes(e.args.reason) for e in failures}
    assert list(failed) == ids[1:]
    refused = ("TestConsumerRefused", (ids[1], benv.full.outputs[1][0]))
    assert decode_error(failed[ids[1]]) == refused
    assert failed[ids[2]] == b""  # out of gas
    assert decode_error(failed[ids[3]]) == ("ReentrancyGuardReentrantCall", ())
    # The batch's one fulfilment log comes before the first callback.
    (batch,) = events(benv.oracle, "BatchFulfilled", receipt)
    first_callback = min(e.logIndex for e in [ok, *failures])
    assert batch.logIndex < first_callback


def test_every_callback_gets_its_whole_gas_limit_or_the_batch_reverts(benv: BEnv) -> None:
    limit = 1_000_000
    ids = [benv.consumer_request(BURN_GAS, felts, limit) for felts in benv.full.felts[:2]]
    fn = benv.batch_fn(ids, benv.full)
    # Enough for the proof and the first callback, not for the second.
    name, args = call_reverts(fn, {"from": benv.relayer, "gas": 2_300_000})
    # Reserved for every callback at once, before the first: the batch's first request names it.
    assert name == "ZkmlOracleInsufficientCallbackGas" and args[0] == ids[0]
    assert args[1] == 2 * (limit + limit // 63 + 10_000)
    receipt = send(benv.web3, fn, benv.relayer)  # estimated: enough for both
    assert receipt.gasUsed > 2 * limit
    assert len(events(benv.oracle, "CallbackFailed", receipt)) == 2


def test_a_callback_cheap_when_estimated_cannot_sink_the_batch(benv: BEnv) -> None:
    """Issue 14, row 4: a consumer spends little while the relayer estimates the gas, then
    its whole limit once mined. The batch, sent with the estimate, still settles every
    request: the estimate had to cover every callback's full limit."""
    limit = 500_000
    consumer = benv.consumers[RECORD]
    ids = [benv.consumer_request(RECORD, felts, limit) for felts in benv.full.felts[:3]]
    fn = benv.batch_fn(ids, benv.full)
    gas = fn.estimate_gas({"from": benv.relayer})
    send(benv.web3, consumer.functions.setMode(BURN_GAS), benv.admin)
    tx = fn.transact({"from": benv.relayer, "gas": gas})
    receipt = benv.web3.eth.wait_for_transaction_receipt(tx)
    assert receipt.status == 1
    assert list(fulfilled(benv, receipt)) == ids
    assert [e.args.requestId for e in events(benv.oracle, "CallbackFailed", receipt)] == ids


def test_a_copied_batch_does_not_earn_the_fees(benv: BEnv) -> None:
    """Issue 14, row 2, for fulfillBatch: during a request's grace period only a
    FULFILLER_ROLE holder settles it."""
    views = benv.oracle.functions
    send(benv.web3, views.grantRole(views.FULFILLER_ROLE().call(), benv.relayer), benv.admin)
    send(benv.web3, views.setSettings((2_500_000, 600, 30 * 24 * HOUR)), benv.admin)
    ids = requests_for(benv, benv.full)  # one block each: the first one's grace ends first
    got = tx_reverts(benv.batch_fn(ids, benv.full), benv.stranger)
    assert got[0] == "ZkmlOracleNotDesignatedFulfiller"
    assert got[1][:2] == (ids[0], benv.stranger) and got[1][2] > latest_time(benv.web3)
    receipt = benv.fulfill_batch(ids, benv.full)
    assert list(fulfilled(benv, receipt)) == ids
    assert views.pendingWithdrawal(benv.relayer).call() == FEE * BATCH


# --- hashed inputs ---


@dataclass(frozen=True)
class Hashed:
    model: bytes
    data: Batch


@pytest.fixture(scope="module")
def hashed(
    benv: BEnv, batch_hashed_built: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Hashed:
    config = model_config(
        batch_hashed_built, deploy_build_verifier(benv.web3, batch_hashed_built, benv.admin)
    )
    assert config[4] == 1 and config[8] is True and config[10] == BATCH  # a hash per slot
    send(benv.web3, benv.oracle.functions.registerModel(config), benv.admin)
    out = tmp_path_factory.mktemp("batch-hashed") / "full.json"
    return Hashed(model_id(config), batch_of(batch_hashed_built, benv.rows[:BATCH], out))


def test_hashed_batch_binds_each_request_to_its_own_commitment(benv: BEnv, hashed: Hashed) -> None:
    data = hashed.data
    # The proof's input instances are the four commitments, one per slot, in slot order.
    commitments = [felts[0] for felts in data.felts]
    assert data.instances[:BATCH] == commitments and len(set(commitments)) == BATCH
    ids = [benv.request(felts, model=hashed.model) for felts in data.felts]
    swapped = [ids[1], ids[0], *ids[2:]]
    assert benv.batch_reverts(swapped, data, model=hashed.model) == (
        "ZkmlOracleRequestMismatch",
        (ids[1],),
    )
    fn = benv.oracle.functions.fulfillBatch(
        hashed.model, [terms(committed(benv.oracle, r)) for r in ids], data.proof, data.instances
    )
    receipt = send(benv.web3, fn, benv.relayer)
    assert [fulfilled(benv, receipt)[rid] for rid in ids] == data.outputs
    # Same model, same weights: the hashed circuit's outputs equal the public one's.
    assert data.outputs == benv.full.outputs


# --- push feed ---


def test_submit_result_batch_is_one_round_with_every_slot_indexed(benv: BEnv) -> None:
    views = benv.oracle.functions
    fn = views.submitResultBatch(benv.model, benv.full.proof, benv.full.instances, 3)
    receipt = send(benv.web3, fn, benv.admin)
    t = benv.web3.eth.get_block(receipt.blockNumber)["timestamp"]
    hashes = [input_hash(felts) for felts in benv.full.felts]
    (round_,) = events(benv.oracle, "ResultSubmitted", receipt)
    assert (round_.args.round, round_.args.inputHash) == (1, hashes[2])
    assert list(round_.args.outputs) == benv.full.outputs[2]
    slots = events(benv.oracle, "SlotResultSubmitted", receipt)
    assert [(e.args.round, e.args.slot, e.args.inputHash) for e in slots] == [
        (1, i, hashes[i]) for i in range(3)
    ]
    assert [list(e.args.outputs) for e in slots] == benv.full.outputs[:3]
    # One round, valued at its last slot; every slot under its own input hash.
    assert views.latestRound(benv.model).call() == 1
    assert tuple(views.latestResult(benv.model).call()) == (1, t, hashes[2], benv.full.outputs[2])
    assert tuple(views.getResult(benv.model, 1).call()) == (1, t, hashes[2], benv.full.outputs[2])
    for i in range(3):
        got = tuple(views.resultOf(benv.model, hashes[i]).call())
        assert got == (1, t, hashes[i], benv.full.outputs[i])
    # Slot 3 was padding here: not indexed.
    assert call_reverts(views.resultOf(benv.model, hashes[3])) == (
        "ZkmlOracleNoResult",
        (benv.model,),
    )
    # The next round: one more, still one per block; a plain submitResult reads slot 0.
    advance(benv.url, 30)
    fn = views.submitResultBatch(benv.model, benv.full.proof, benv.full.instances, BATCH)
    t2 = benv.web3.eth.get_block(send(benv.web3, fn, benv.admin).blockNumber)["timestamp"]
    assert views.latestRound(benv.model).call() == 2
    for i in (0, 3):
        got = tuple(views.resultOf(benv.model, hashes[i]).call())
        assert got == (2, t2, hashes[i], benv.full.outputs[i])
    assert tuple(views.getResult(benv.model, 1).call()) == (1, t, hashes[2], benv.full.outputs[2])
    advance(benv.url, 30)
    fn = views.submitResult(benv.model, benv.full.proof, benv.full.instances)
    receipt = send(benv.web3, fn, benv.admin)
    (round_,) = events(benv.oracle, "ResultSubmitted", receipt)
    assert (round_.args.round, round_.args.inputHash) == (3, hashes[0])
    assert [e.args.slot for e in events(benv.oracle, "SlotResultSubmitted", receipt)] == [0]
    assert tuple(views.latestResult(benv.model).call())[2:] == (hashes[0], benv.full.outputs[0])


def test_submit_result_batch_refuses_what_submit_result_refuses(benv: BEnv) -> None:
    def refused(slots: int, proof: bytes | None = None, instances: list[int] | None = None) -> Any:
        fn = benv.oracle.functions.submitResultBatch(
            benv.model, proof or benv.full.proof, instances or benv.full.instances, slots
        )
        return tx_reverts(fn, benv.admin)

    assert refused(0) == ("ZkmlOracleBadBatchSize", (0, BATCH))
    assert refused(BATCH + 1) == ("ZkmlOracleBadBatchSize", (BATCH + 1, BATCH))
    assert refused(2, benv.full.tampered()) == ("ZkmlOracleInvalidProof", (benv.model,))
    n = len(benv.full.instances)
    short = benv.full.instances[:-1]
    assert refused(2, None, short) == ("ZkmlOracleWrongInstanceCount", (n, n - 1))
    assert refused(2, None, [*benv.full.instances[:-1], R]) == (
        "ZkmlOracleInstanceOutOfField",
        (n - 1, R),
    )
    assert benv.oracle.functions.latestRound(benv.model).call() == 0


# --- gas ---


def test_gas_of_batching(benv: BEnv) -> None:
    """fulfillBatch against bare verifyProof: what each further request adds (no callback)."""
    w3 = benv.web3
    bare = verify_gas(benv)
    ids = requests_for(benv, benv.full)
    # The relayer already holds a credit (the steady state of a working relayer).
    warm = benv.request(benv.one.felts[0])
    benv.fulfill_batch([warm], benv.one)

    def used(fn: Any) -> int:
        snap = rpc(benv.url, "evm_snapshot")
        gas = int(send(w3, fn, benv.relayer).gasUsed)
        assert rpc(benv.url, "evm_revert", [snap]) is True
        return gas

    single = used(
        benv.oracle.functions.fulfill(
            committed(benv.oracle, ids[0]), benv.full.proof, benv.full.instances
        )
    )
    by_size = {k: used(benv.batch_fn(ids[:k], benv.full)) for k in (1, BATCH)}
    per_request = (by_size[BATCH] - by_size[1]) / (BATCH - 1)
    print(
        f"\nverifyProof {bare:,}; fulfill {single:,} (+{single - bare:,}); "
        f"fulfillBatch x1 {by_size[1]:,} (+{by_size[1] - bare:,}), "
        f"x{BATCH} {by_size[BATCH]:,} (+{by_size[BATCH] - bare:,}, "
        f"{(by_size[BATCH] - bare) / BATCH:,.0f} per request); "
        f"each further request {per_request:,.0f}"
    )
    assert per_request <= 14_000  # issue 8's budget for bookkeeping, events and storage
    assert single - bare <= 40_000  # was ~68 000 before the storage was repacked
    assert by_size[BATCH] < single * 1.1
