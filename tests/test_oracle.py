"""ZkmlOracle and FieldEncoding on a real Anvil, with real ezkl proofs and verifiers.

Every adversarial case of shared/specs/oracle-protocol.md is a test here, asserting the exact
custom error decoded with its arguments. The contracts are compiled once (Ape, in-process),
deployed once per module; each test runs between an ``evm_snapshot`` and an ``evm_revert``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.oracle_helpers import (
    CANCELLED,
    FULFILLED,
    HOUR,
    PENDING,
    ZERO,
    Env,
    ProofData,
    R,
    advance,
    call_reverts,
    decode_error,
    deploy,
    deploy_build_verifier,
    events,
    input_hash,
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
from zkml_oracle.prover import prove
from zkml_oracle.testing import committed
from zkml_oracle.types import BuildResult, ProofResult

# --- FieldEncoding against zkml_oracle.field ---

# The module fixture is not reset between examples: these tests only make calls.
FIXTURE_CHECK = HealthCheck.function_scoped_fixture
signed = st.integers(min_value=-field.MAX_SIGNED, max_value=field.MAX_SIGNED)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=signed)
@example(q=0)
@example(q=1)
@example(q=-1)
@example(q=field.MAX_SIGNED)
@example(q=-field.MAX_SIGNED)
def test_field_encoding_matches_python_over_the_signed_range(env: Env, q: int) -> None:
    h = env.harness.functions
    felt = field.int_to_felt(q)
    assert h.fromSigned(q).call() == felt
    assert h.toSigned(felt).call() == field.felt_to_int(felt) == q
    assert h.isFelt(felt).call() is True


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(felt=st.integers(min_value=0, max_value=R - 1))
@example(felt=field.MAX_SIGNED)
@example(felt=field.MAX_SIGNED + 1)
@example(felt=R - 1)
def test_field_encoding_decodes_every_felt_as_python_does(env: Env, felt: int) -> None:
    h = env.harness.functions
    assert h.toSigned(felt).call() == field.felt_to_int(felt)
    assert h.fromSigned(field.felt_to_int(felt)).call() == felt


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(felts=st.lists(st.integers(min_value=0, max_value=R - 1), max_size=12))
@example(felts=[])
@example(felts=[0, 1, field.MAX_SIGNED, field.MAX_SIGNED + 1, R - 1])
def test_field_encoding_decodes_arrays_as_python_does(env: Env, felts: list[int]) -> None:
    """toSignedArray, the oracle's decoder of every output (assembly), against toSigned."""
    got = env.harness.functions.toSignedArray(felts).call()
    assert list(got) == [field.felt_to_int(f) for f in felts]


@pytest.mark.parametrize("value", [R, R + 1, 2**256 - 1])
def test_field_encoding_refuses_non_felts(env: Env, value: int) -> None:
    h = env.harness.functions
    assert h.fieldModulus().call() == R
    assert h.isFelt(value).call() is False
    assert call_reverts(h.toSigned(value)) == ("FieldEncodingNotAFelt", (value,))
    got = call_reverts(h.toSignedArray([1, R - 1, value, R + 5]))
    assert got == ("FieldEncodingNotAFelt", (value,))  # the first non-felt
    with pytest.raises(field.FieldError):
        field.felt_to_int(value)


@pytest.mark.parametrize("q", [field.MAX_SIGNED + 1, -field.MAX_SIGNED - 1, 2**255 - 1, -(2**255)])
def test_field_encoding_refuses_out_of_range_integers(env: Env, q: int) -> None:
    assert call_reverts(env.harness.functions.fromSigned(q)) == ("FieldEncodingOutOfRange", (q,))
    with pytest.raises(field.FieldError):
        field.int_to_felt(q)


def test_a_wrong_expectation_fails(env: Env) -> None:
    """The decoding helpers are strict: a different error or argument does not pass."""
    got = call_reverts(env.oracle.functions.latestResult(env.model))
    assert got == ("ZkmlOracleNoResult", (env.model,))
    assert got != ("ZkmlOracleNoResult", (env.other_model,))
    assert got != ("ZkmlOracleUnknownModel", (env.model,))
    with pytest.raises(pytest.fail.Exception, match="did not revert"):
        call_reverts(env.oracle.functions.getModel(env.model))


# --- registry ---


def test_registration_binds_the_id_to_the_config(env: Env) -> None:
    model = env.oracle.functions.getModel(env.model).call()
    assert tuple(model[0]) == env.config and model[1] is True and model[2] > 0
    assert env.model == model_id(env.config) != env.other_model
    again = env.oracle.functions.registerModel(env.config)
    assert tx_reverts(again, env.admin) == ("ZkmlOracleModelExists", (env.model,))


def test_registration_emits_the_config(env: Env, built: BuildResult) -> None:
    config = (*env.config[:8], True, *env.config[9:])  # hashedInputs flipped
    receipt = send(env.web3, env.oracle.functions.registerModel(config), env.admin)
    (event,) = events(env.oracle, "ModelRegistered", receipt)
    assert event.args.modelId == model_id(config)
    assert event.args.verifier == env.config[0]
    assert event.args.artifactDigest == bytes.fromhex(built.manifest.artifact_digest)


def test_registration_by_a_non_admin_is_refused(env: Env) -> None:
    role = env.oracle.functions.REGISTRAR_ROLE().call()
    config = (*env.config[:7], env.config[7] + 1, *env.config[8:])
    got = tx_reverts(env.oracle.functions.registerModel(config), env.stranger)
    assert got == ("AccessControlUnauthorizedAccount", (env.stranger, role))
    got = tx_reverts(env.oracle.functions.setModelActive(env.model, False), env.stranger)
    assert got == ("AccessControlUnauthorizedAccount", (env.stranger, b"\0" * 32))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({0: "0x" + "11" * 20}, "verifier has no code"),
        ({1: b"\0" * 32}, "artifactDigest is zero"),
        ({2: 0}, "numInstances is zero"),
        ({6: 0}, "outputCount is zero"),
        ({4: 7}, "input segment past numInstances"),
        ({5: 5}, "output segment past numInstances"),
        ({5: 2}, "input and output segments overlap"),
        ({7: 200}, "outputScale too large"),
        # Batched (index 10): whole regions of batchSize slots (4 inputs, 2 outputs each).
        ({10: 0}, "batchSize is zero"),
        ({10: 2}, "input segment past numInstances"),
        ({2: 11, 5: 8, 10: 2}, "output segment past numInstances"),
        ({2: 12, 5: 6, 10: 2}, "input and output segments overlap"),
        ({2: 12, 3: 3, 5: 0, 10: 2}, "input and output segments overlap"),
    ],
)
def test_an_inconsistent_config_is_refused(env: Env, edit: dict[int, Any], reason: str) -> None:
    config = tuple(edit.get(i, v) for i, v in enumerate(env.config))
    got = tx_reverts(env.oracle.functions.registerModel(config), env.admin)
    assert got == ("ZkmlOracleInvalidConfig", (reason,))


def test_a_dev_srs_model_needs_a_dev_chain_or_the_override(
    remote_anvil: LocalNode, env: Env
) -> None:
    """Protocol guarantee 7, on a chain with Sepolia's id."""
    web3 = web3_of(remote_anvil.url)
    admin = web3.eth.accounts[0]
    assert web3.eth.chain_id == 11155111
    mock = deploy(web3, contracts.contract("MockVerifier"), admin)
    config = (mock.address, *env.config[1:])
    assert config[9] is True  # the session's builds use a dev SRS
    strict = deploy(web3, contracts.oracle(), admin, admin, False)
    assert strict.functions.devSrsAllowed().call() is False
    got = tx_reverts(strict.functions.registerModel(config), admin)
    assert got == ("ZkmlOracleDevSrsModel", (model_id(config),))
    ceremony = (*config[:9], False, *config[10:])  # a ceremony SRS
    send(web3, strict.functions.registerModel(ceremony), admin)
    lax = deploy(web3, contracts.oracle(), admin, admin, True)
    send(web3, lax.functions.registerModel(config), admin)
    assert lax.functions.getModel(model_id(config)).call()[1] is True


# --- request ---


def test_requests_are_refused_for_unknown_or_inactive_models(env: Env) -> None:
    felts = env.inputs
    deadline = latest_time(env.web3) + HOUR
    unknown = b"\x42" * 32
    fn = env.oracle.functions.requestInference(unknown, felts, env.stranger, 0, deadline)
    assert tx_reverts(fn, env.requester) == ("ZkmlOracleUnknownModel", (unknown,))
    receipt = send(env.web3, env.oracle.functions.setModelActive(env.model, False), env.admin)
    (event,) = events(env.oracle, "ModelActiveSet", receipt)
    assert event.args.modelId == env.model and event.args.active is False
    fn = env.oracle.functions.requestInference(env.model, felts, env.stranger, 0, deadline)
    assert tx_reverts(fn, env.requester) == ("ZkmlOracleModelInactive", (env.model,))
    send(env.web3, env.oracle.functions.setModelActive(env.model, True), env.admin)
    env.request()


def test_a_request_must_carry_the_models_input(env: Env) -> None:
    felts = env.inputs
    deadline = latest_time(env.web3) + HOUR
    zero = "0x" + "00" * 20

    def req(f: list[int], d: int = deadline) -> tuple[str, tuple[Any, ...]]:
        fn = env.oracle.functions.requestInference(env.model, f, zero, 0, d)
        return tx_reverts(fn, env.requester)

    assert req(felts[:3]) == ("ZkmlOracleWrongInputCount", (4, 3))
    assert req([*felts, 1]) == ("ZkmlOracleWrongInputCount", (4, 5))
    assert req([felts[0], felts[1], R, felts[3]]) == ("ZkmlOracleInstanceOutOfField", (2, R))
    now = latest_time(env.web3)
    assert req(felts, now) == ("ZkmlOracleBadDeadline", (now,))


def test_a_request_escrows_its_fee_and_records_its_input(env: Env) -> None:
    felts = env.inputs
    deadline = latest_time(env.web3) + HOUR
    fn = env.oracle.functions.requestInference(
        env.model, felts, env.consumer.address, 1234, deadline
    )
    receipt = send(env.web3, fn, env.requester, 10**15)
    (event,) = events(env.oracle, "InferenceRequested", receipt)
    rid = event.args.requestId
    assert rid == env.oracle.functions.requestCount().call() == 1
    assert list(event.args.inputFelts) == felts and event.args.fee == 10**15
    assert env.web3.eth.get_balance(env.oracle.address) == 10**15
    # Half a slot per request: the status and a commitment to the fields the event carries,
    # the last of which, the seed, is the hash of the block before the request's.
    request = committed(env.oracle, rid)
    parent = env.web3.eth.get_block(receipt.blockNumber - 1).hash
    assert event.args.seed == int.from_bytes(parent[-8:], "big")
    assert request == (
        rid,
        env.model,
        input_hash(felts),
        env.requester,
        env.requester,  # the refund address defaults to the payer
        env.consumer.address,
        1234,
        deadline,
        event.args.openAt,
        10**15,
        event.args.seed,
    )
    assert env.oracle.functions.requestStatus(rid).call() == PENDING
    assert env.oracle.functions.isCommitted(request).call() is True
    assert env.oracle.functions.isCommitted((*request[:9], 10**15 - 1, request[10])).call() is False
    assert env.oracle.functions.requestStatus(99).call() == 0  # None: never issued


def test_a_fee_must_fit_the_escrow(env: Env) -> None:
    """Escrows are uint96: a larger fee is refused rather than truncated."""
    rpc(env.url, "anvil_setBalance", [env.requester, hex(2**97)])
    deadline = latest_time(env.web3) + HOUR
    fn = env.oracle.functions.requestInference(env.model, env.inputs, ZERO, 0, deadline)
    assert tx_reverts(fn, env.requester, 2**96) == ("ZkmlOracleFeeTooLarge", (2**96,))
    rid = env.request(fee=2**96 - 1)
    assert committed(env.oracle, rid)[9] == 2**96 - 1
    env.fulfill(rid)
    assert env.oracle.functions.pendingWithdrawal(env.relayer).call() == 2**96 - 1


# --- fulfil: the happy path ---


def _request_half(env: Env, request_id: int) -> int:
    """Request ``request_id``'s half of ``_requests[pair]`` (the mapping is the oracle's slot
    3, after AccessControl's roles, the models and their count; ids 2k-1 and 2k share pair k,
    the odd id in the low 128 bits)."""
    pair = (request_id + 1) // 2
    slot = "0x" + keccak(abi_encode(["uint256", "uint256"], [pair, 3])).hex()
    word = int(rpc(env.url, "eth_getStorageAt", [env.oracle.address, slot, "latest"]), 16)
    return (word >> (0 if request_id % 2 else 128)) & (2**128 - 1)


def test_request_fulfil_callback_and_fee(env: Env, proof: ProofResult, built: BuildResult) -> None:
    fee = 3 * 10**15
    if env.oracle.functions.requestCount().call() % 2:
        env.request()  # the next id is odd: it and the one after share a slot
    rid = env.consumer_request(fee=fee)
    partner = env.request()
    pending = committed(env.oracle, partner)
    before_partner = _request_half(env, partner)
    receipt = env.fulfill(rid)
    (fulfilled,) = events(env.oracle, "RequestFulfilled", receipt)
    assert fulfilled.args.requestId == rid and fulfilled.args.modelId == env.model
    assert fulfilled.args.fulfiller == env.relayer
    assert list(fulfilled.args.outputs) == env.outputs
    scale = built.manifest.outputs[0].scale
    assert [q / 2**scale for q in env.outputs] == pytest.approx(proof.outputs[0], abs=1e-9)
    (ok,) = events(env.oracle, "CallbackSucceeded", receipt)
    assert ok.args.requestId == rid
    calls, last_id, last_model, outputs = env.consumer.functions.last().call()
    assert (calls, last_id, last_model, list(outputs)) == (1, rid, env.model, env.outputs)
    assert env.oracle.functions.requestStatus(rid).call() == FULFILLED
    # A fulfilled request's half is cleared: nothing of it is left to check; its neighbour's
    # half is untouched, still pending and committed.
    assert env.oracle.functions.isCommitted(committed(env.oracle, rid)).call() is False
    assert _request_half(env, rid) == 0
    assert _request_half(env, partner) == before_partner != 0
    assert env.oracle.functions.requestStatus(partner).call() == PENDING
    assert env.oracle.functions.isCommitted(pending).call() is True
    assert env.oracle.functions.pendingWithdrawal(env.relayer).call() == fee

    before = env.web3.eth.get_balance(env.relayer)
    receipt = send(env.web3, env.oracle.functions.withdraw(), env.relayer)
    (w,) = events(env.oracle, "Withdrawn", receipt)
    assert (w.args.account, w.args.amount) == (env.relayer, fee)
    spent = receipt.gasUsed * receipt.effectiveGasPrice
    assert env.web3.eth.get_balance(env.relayer) == before + fee - spent
    assert env.web3.eth.get_balance(env.oracle.address) == 0
    # A fee withdrawn twice.
    got = tx_reverts(env.oracle.functions.withdraw(), env.relayer)
    assert got == ("ZkmlOracleNothingToWithdraw", (env.relayer,))


def test_a_consumer_accepts_only_the_oracle(env: Env) -> None:
    fn = env.consumer.functions.onInferenceResult(1, env.model, env.consumer.address, [1, 2])
    assert tx_reverts(fn, env.stranger) == ("ZkmlConsumerNotOracle", (env.stranger,))


def test_hashed_inputs_bind_the_commitment(
    env: Env, hashed_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    """A private input: the request carries only its Poseidon commitment."""
    result = prove(hashed_built.build_dir, example["input"], tmp_path / "hashed.json")
    data = proof_data(hashed_built, result.proof_path)
    verifier = deploy_build_verifier(env.web3, hashed_built, env.admin)
    config = model_config(hashed_built, verifier)
    assert config[4] == 1 and config[8] is True  # one commitment, hashed inputs
    send(env.web3, env.oracle.functions.registerModel(config), env.admin)
    model = model_id(config)
    commitment = inputs_of(hashed_built, data.instances)
    wrong = env.request([(commitment[0] + 1) % R], model=model)
    assert env.fulfill_reverts(wrong, data.proof, data.instances) == (
        "ZkmlOracleInputMismatch",
        (wrong,),
    )
    rid = env.request(commitment, model=model)
    receipt = env.fulfill(rid, data)
    (event,) = events(env.oracle, "RequestFulfilled", receipt)
    assert list(event.args.outputs) == outputs_of(hashed_built, data.instances)


# --- fulfil: adversarial cases ---


def test_tampered_proof_bytes_are_refused(env: Env) -> None:
    rid = env.request()
    raw = bytearray(env.good.proof)
    raw[200] ^= 0x01
    got = env.fulfill_reverts(rid, bytes(raw), env.good.instances)
    assert got == ("ZkmlOracleInvalidProof", (env.model,))
    got = env.fulfill_reverts(rid, env.good.proof[:-32], env.good.instances)
    assert got == ("ZkmlOracleInvalidProof", (env.model,))
    assert env.oracle.functions.requestStatus(rid).call() == PENDING


def test_a_changed_output_instance_is_refused(env: Env, built: BuildResult) -> None:
    rid = env.request()
    instances = list(env.good.instances)
    last = built.manifest.layout.outputs.end - 1
    instances[last] = (instances[last] + 1) % R
    assert env.fulfill_reverts(rid, env.good.proof, instances) == (
        "ZkmlOracleInvalidProof",
        (env.model,),
    )


def test_a_valid_proof_for_another_input_is_refused(env: Env) -> None:
    felts = list(env.inputs)
    felts[0] = field.int_to_felt(field.felt_to_int(felts[0]) + 1)
    rid = env.request(felts)
    got = env.fulfill_reverts(rid, env.good.proof, env.good.instances)
    assert got == ("ZkmlOracleInputMismatch", (rid,))
    # The instance's input slice edited to match the request: now the proof no longer holds.
    instances = list(env.good.instances)
    instances[0] = felts[0]
    assert env.fulfill_reverts(rid, env.good.proof, instances) == (
        "ZkmlOracleInvalidProof",
        (env.model,),
    )


def test_a_valid_proof_of_another_model_is_refused(env: Env) -> None:
    assert env.inputs == env.other.instances[:4]  # same input, other weights
    rid = env.request()
    got = env.fulfill_reverts(rid, env.other.proof, env.other.instances)
    assert got == ("ZkmlOracleInvalidProof", (env.model,))
    other = env.request(model=env.other_model)
    env.fulfill(other, env.other)  # where it belongs, it is accepted
    got = env.fulfill_reverts(other, env.good.proof, env.good.instances)
    assert got == ("ZkmlOracleRequestNotPending", (other, FULFILLED))


def test_fulfilling_twice_is_refused(env: Env) -> None:
    rid = env.request()
    env.fulfill(rid)
    got = env.fulfill_reverts(rid, env.good.proof, env.good.instances)
    assert got == ("ZkmlOracleRequestNotPending", (rid, FULFILLED))
    assert env.fulfill_reverts(77, env.good.proof, env.good.instances) == (
        "ZkmlOracleUnknownRequest",
        (77,),
    )


def test_fulfilling_past_the_deadline_or_after_cancel_is_refused(env: Env) -> None:
    deadline = latest_time(env.web3) + HOUR
    rid = env.request(fee=10**15, deadline=deadline)
    advance(env.url, HOUR + 1)
    got = env.fulfill_reverts(rid, env.good.proof, env.good.instances)
    assert got == ("ZkmlOracleRequestExpired", (rid, deadline))
    send(env.web3, env.oracle.functions.cancel(committed(env.oracle, rid)), env.requester)
    got = env.fulfill_reverts(rid, env.good.proof, env.good.instances)
    assert got == ("ZkmlOracleRequestNotPending", (rid, CANCELLED))


def test_an_instance_outside_the_field_is_refused(env: Env) -> None:
    rid = env.request()
    for index, value in ((5, R), (5, env.good.instances[5] + R), (1, 2**256 - 1)):
        instances = list(env.good.instances)
        instances[index] = value
        got = env.fulfill_reverts(rid, env.good.proof, instances)
        assert got == ("ZkmlOracleInstanceOutOfField", (index, value))


def test_a_wrong_instance_count_is_refused(env: Env) -> None:
    rid = env.request()
    n = len(env.good.instances)
    for instances in (env.good.instances[:-1], [*env.good.instances, 0], []):
        got = env.fulfill_reverts(rid, env.good.proof, instances)
        assert got == ("ZkmlOracleWrongInstanceCount", (n, len(instances)))


def test_a_deactivated_model_cannot_be_fulfilled(env: Env) -> None:
    rid = env.request()
    send(env.web3, env.oracle.functions.setModelActive(env.model, False), env.admin)
    got = env.fulfill_reverts(rid, env.good.proof, env.good.instances)
    assert got == ("ZkmlOracleModelInactive", (env.model,))
    send(env.web3, env.oracle.functions.setModelActive(env.model, True), env.admin)
    env.fulfill(rid)


@pytest.mark.parametrize(
    "answer", [1, 2, 3], ids=["returns-false", "reverts-with-data", "short-return"]
)
def test_any_verifier_answer_but_true_is_invalid(env: Env, answer: int) -> None:
    mock = env.mock_verifier
    config = (mock.address, *env.config[1:])
    send(env.web3, env.oracle.functions.registerModel(config), env.admin)
    model = model_id(config)
    rid = env.request(model=model)
    # The stand-in verifier is stateless (the oracle refuses any other): a one-byte proof
    # picks its answer, any other proof is accepted.
    got = env.fulfill_reverts(rid, bytes([answer]), env.good.instances)
    assert got == ("ZkmlOracleInvalidProof", (model,))
    env.fulfill(rid)


# --- consumers that misbehave ---


def _callback_failed(env: Env, receipt: Any, rid: int) -> bytes:
    (failed,) = events(env.oracle, "CallbackFailed", receipt)
    assert failed.args.requestId == rid
    assert not events(env.oracle, "CallbackSucceeded", receipt)
    assert env.oracle.functions.requestStatus(rid).call() == FULFILLED
    (done,) = events(env.oracle, "RequestFulfilled", receipt)
    assert done.args.fulfiller == env.relayer
    return bytes(failed.args.reason)


def test_a_consumer_that_reverts_does_not_undo_the_fulfilment(env: Env) -> None:
    send(env.web3, env.consumer.functions.setMode(1), env.admin)
    rid = env.consumer_request(fee=10**15)
    receipt = env.fulfill(rid)
    reason = _callback_failed(env, receipt, rid)
    assert decode_error(reason) == ("TestConsumerRefused", (rid, env.outputs[0]))
    assert events(env.oracle, "RequestFulfilled", receipt)
    assert env.oracle.functions.pendingWithdrawal(env.relayer).call() == 10**15
    assert env.consumer.functions.last().call()[0] == 0


def test_a_long_revert_reason_is_truncated(env: Env) -> None:
    send(env.web3, env.consumer.functions.setMode(2), env.admin)
    rid = env.consumer_request()
    reason = _callback_failed(env, env.fulfill(rid), rid)
    limit = env.oracle.functions.MAX_CALLBACK_REASON().call()
    assert len(reason) == limit == 256
    assert reason[:4] == keccak(text="Error(string)")[:4]


def test_a_consumer_that_burns_all_its_gas(env: Env) -> None:
    send(env.web3, env.consumer.functions.setMode(3), env.admin)
    limit = 300_000
    rid = env.consumer_request(gas_limit=limit)
    receipt = env.fulfill(rid)
    assert _callback_failed(env, receipt, rid) == b""
    assert receipt.gasUsed > limit  # the consumer got (and burnt) its whole limit


def test_the_callback_gets_its_whole_gas_limit_or_fulfil_reverts(env: Env) -> None:
    """EIP-150: a fulfiller cannot starve the callback by sending too little gas."""
    send(env.web3, env.consumer.functions.setMode(3), env.admin)
    limit = 1_000_000
    rid = env.consumer_request(gas_limit=limit)
    fn = env.oracle.functions.fulfill(
        committed(env.oracle, rid), env.good.proof, env.good.instances
    )
    needed = limit + limit // 63 + env.oracle.functions.CALLBACK_GAS_OVERHEAD().call()
    name, args = call_reverts(fn, {"from": env.relayer, "gas": 1_100_000})
    assert name == "ZkmlOracleInsufficientCallbackGas"
    assert args[0] == rid and args[1] == needed and args[2] < needed
    assert env.oracle.functions.requestStatus(rid).call() == PENDING


@pytest.mark.parametrize("mode", [4, 5, 6], ids=["fulfill", "requestInference", "cancel"])
def test_a_consumer_that_reenters_the_oracle_is_refused(env: Env, mode: int) -> None:
    """Whether the entry point calls out (fulfil: it takes the lock) or not (a request,
    cancel: they only check it), a callback cannot enter it."""
    send(env.web3, env.consumer.functions.setMode(mode), env.admin)
    rid = env.consumer_request()
    receipt = env.fulfill(rid)
    reason = _callback_failed(env, receipt, rid)
    assert decode_error(reason) == ("ReentrancyGuardReentrantCall", ())
    assert len(events(env.oracle, "RequestFulfilled", receipt)) == 1


def test_a_callback_without_code_is_recorded_as_failed(env: Env) -> None:
    rid = env.request(callback=env.stranger, gas_limit=50_000)
    assert _callback_failed(env, env.fulfill(rid), rid) == b""


# --- cancel and payments ---


def test_cancel_refund_and_withdraw(env: Env) -> None:
    fee = 5 * 10**15
    deadline = latest_time(env.web3) + HOUR
    rid = env.request(fee=fee, deadline=deadline)
    cancel = env.oracle.functions.cancel(committed(env.oracle, rid))
    assert tx_reverts(cancel, env.requester) == ("ZkmlOracleRequestNotExpired", (rid, deadline))
    advance(env.url, HOUR + 1)
    assert tx_reverts(cancel, env.stranger) == ("ZkmlOracleNotRequester", (rid, env.stranger))
    receipt = send(env.web3, cancel, env.requester)
    (event,) = events(env.oracle, "RequestCancelled", receipt)
    assert (event.args.requestId, event.args.refund) == (rid, fee)
    assert env.oracle.functions.requestStatus(rid).call() == CANCELLED
    assert tx_reverts(cancel, env.requester) == ("ZkmlOracleRequestNotPending", (rid, CANCELLED))
    assert env.oracle.functions.pendingWithdrawal(env.requester).call() == fee
    before = env.web3.eth.get_balance(env.requester)
    receipt = send(env.web3, env.oracle.functions.withdraw(), env.requester)
    spent = receipt.gasUsed * receipt.effectiveGasPrice
    assert env.web3.eth.get_balance(env.requester) == before + fee - spent
    got = tx_reverts(env.oracle.functions.withdraw(), env.requester)
    assert got == ("ZkmlOracleNothingToWithdraw", (env.requester,))


def test_fields_other_than_the_committed_ones_are_refused(env: Env) -> None:
    """The oracle stores one commitment per request: every field passed back on fulfil or
    cancel must be the committed one, or a fulfiller could raise the fee it is credited, drop
    the callback or move the deadline, and a canceller redirect the refund."""
    rid = env.consumer_request(fee=10**15)
    request = committed(env.oracle, rid)
    tampered = [
        (*request[:3], env.stranger, *request[4:]),  # requester
        (*request[:4], env.stranger, *request[5:]),  # refund address
        (*request[:5], ZERO, *request[6:]),  # callback dropped
        (*request[:6], 0, *request[7:]),  # callback gas limit
        (*request[:7], request[7] + HOUR, *request[8:]),  # deadline
        (*request[:8], 0, *request[9:]),  # grace period skipped
        (*request[:9], 2 * 10**15, request[10]),  # fee
        (*request[:10], request[10] ^ 1),  # seed
    ]
    advance(env.url, HOUR + 1)  # expired: cancel would otherwise pass
    for fields in tampered:
        fn = env.oracle.functions.fulfill(fields, env.good.proof, env.good.instances)
        assert tx_reverts(fn, env.relayer) == ("ZkmlOracleRequestMismatch", (rid,))
        fn = env.oracle.functions.cancel(fields)
        assert tx_reverts(fn, env.requester) == ("ZkmlOracleRequestMismatch", (rid,))
    assert env.oracle.functions.requestStatus(rid).call() == PENDING


def test_a_request_may_name_its_refund_address(env: Env) -> None:
    fee = 10**15
    deadline = latest_time(env.web3) + HOUR
    fn = env.oracle.functions.requestInferenceWithRefund(
        env.model, env.inputs, ZERO, 0, deadline, env.stranger
    )
    (event,) = events(env.oracle, "InferenceRequested", send(env.web3, fn, env.requester, fee))
    assert event.args.refundTo == env.stranger
    refused = env.oracle.functions.requestInferenceWithRefund(
        env.model, env.inputs, ZERO, 0, deadline, ZERO
    )
    assert tx_reverts(refused, env.requester) == ("ZkmlOracleZeroRefundAddress", ())
    rid = int(event.args.requestId)
    advance(env.url, HOUR + 1)
    cancel = env.oracle.functions.cancel(committed(env.oracle, rid))
    assert tx_reverts(cancel, env.relayer) == ("ZkmlOracleNotRequester", (rid, env.relayer))
    before = env.oracle.functions.pendingWithdrawal(env.requester).call()
    send(env.web3, cancel, env.stranger)  # the refund address may cancel too
    assert env.oracle.functions.pendingWithdrawal(env.stranger).call() == fee
    assert env.oracle.functions.pendingWithdrawal(env.requester).call() == before


def test_a_fulfilled_request_cannot_be_cancelled(env: Env) -> None:
    rid = env.request(fee=10**15)
    env.fulfill(rid)
    advance(env.url, HOUR + 1)
    got = tx_reverts(env.oracle.functions.cancel(committed(env.oracle, rid)), env.requester)
    assert got == ("ZkmlOracleRequestNotPending", (rid, FULFILLED))


# --- push feed ---


def submit(env: Env, data: ProofData | None = None, model: bytes | None = None) -> Any:
    data = data or env.good
    fn = env.oracle.functions.submitResult(model or env.model, data.proof, data.instances)
    return send(env.web3, fn, env.admin)


def test_push_feed_rounds(env: Env) -> None:
    views = env.oracle.functions
    assert call_reverts(views.latestResult(env.model)) == ("ZkmlOracleNoResult", (env.model,))
    assert call_reverts(views.getResult(env.model, 1)) == ("ZkmlOracleUnknownRound", (env.model, 1))
    unknown = b"\x01" * 32
    assert call_reverts(views.latestResult(unknown)) == ("ZkmlOracleUnknownModel", (unknown,))
    h = input_hash(env.inputs)
    assert call_reverts(views.resultOf(env.model, h)) == ("ZkmlOracleNoResult", (env.model,))

    first = submit(env)
    (event,) = events(env.oracle, "ResultSubmitted", first)
    assert event.args.round == 1 and event.args.inputHash == h
    assert list(event.args.outputs) == env.outputs and event.args.submitter == env.admin
    (slot,) = events(env.oracle, "SlotResultSubmitted", first)  # an unbatched round: one slot
    assert (slot.args.modelId, slot.args.round, slot.args.slot) == (env.model, 1, 0)
    assert slot.args.inputHash == h and list(slot.args.outputs) == env.outputs
    t1 = env.web3.eth.get_block(first.blockNumber)["timestamp"]
    assert tuple(views.latestResult(env.model).call()) == (1, t1, h, env.outputs)
    advance(env.url, 30)
    second = submit(env)
    t2 = env.web3.eth.get_block(second.blockNumber)["timestamp"]
    assert t2 > t1
    assert tuple(views.latestResult(env.model).call()) == (2, t2, h, env.outputs)
    assert tuple(views.getResult(env.model, 1).call()) == (1, t1, h, env.outputs)
    assert tuple(views.resultOf(env.model, h).call()) == (2, t2, h, env.outputs)
    assert views.latestRound(env.model).call() == 2
    for r in (0, 3):
        assert call_reverts(views.getResult(env.model, r)) == (
            "ZkmlOracleUnknownRound",
            (env.model, r),
        )
    # Another model's feed is its own.
    assert call_reverts(views.latestResult(env.other_model)) == (
        "ZkmlOracleNoResult",
        (env.other_model,),
    )


def test_a_second_round_in_the_same_block_is_refused(env: Env) -> None:
    twice = deploy(env.web3, contracts.contract("DoubleSubmitter"), env.admin)
    send(env.web3, env.oracle.functions.setFeedPublisher(env.model, twice.address, True), env.admin)
    fn = twice.functions.submitTwice(
        env.oracle.address, env.model, env.good.proof, env.good.instances
    )
    name, args = tx_reverts(fn, env.admin)
    assert name == "ZkmlOracleRoundTooSoon" and args[0] == env.model
    assert args[1] >= latest_time(env.web3)  # the pending block's time: the same block
    receipt = submit(env)
    t = env.web3.eth.get_block(receipt.blockNumber)["timestamp"]
    got = tx_reverts(fn, env.admin)
    assert got[0] == "ZkmlOracleRoundTooSoon" and got[1][1] >= t


def test_push_feed_refuses_what_fulfil_refuses(env: Env) -> None:
    def refused(data: ProofData, model: bytes | None = None) -> tuple[str, tuple[Any, ...]]:
        fn = env.oracle.functions.submitResult(model or env.model, data.proof, data.instances)
        return tx_reverts(fn, env.admin)

    raw = bytearray(env.good.proof)
    raw[200] ^= 0x01
    tampered = ProofData(bytes(raw), env.good.instances, b"")
    assert refused(tampered) == ("ZkmlOracleInvalidProof", (env.model,))
    assert refused(env.other) == ("ZkmlOracleInvalidProof", (env.model,))
    short = ProofData(env.good.proof, env.good.instances[:-1], b"")
    assert refused(short) == ("ZkmlOracleWrongInstanceCount", (6, 5))
    big = ProofData(env.good.proof, [*env.good.instances[:5], R], b"")
    assert refused(big) == ("ZkmlOracleInstanceOutOfField", (5, R))
    unknown = b"\x02" * 32
    assert refused(env.good, unknown) == ("ZkmlOracleUnknownModel", (unknown,))
    send(env.web3, env.oracle.functions.setModelActive(env.model, False), env.admin)
    assert refused(env.good) == ("ZkmlOracleModelInactive", (env.model,))


# --- gas ---


def test_fulfil_costs_at_most_120_percent_of_verify_proof(env: Env) -> None:
    """The issue's goal, with no consumer callback: gas is deterministic, so it is asserted."""
    verifier = env.config[0]
    verify_gas = env.web3.eth.estimate_gas(
        {"from": env.relayer, "to": verifier, "data": "0x" + env.good.calldata.hex()}
    )
    rid = env.request(fee=10**15)
    fn = env.oracle.functions.fulfill(
        committed(env.oracle, rid), env.good.proof, env.good.instances
    )
    fulfil_gas = fn.estimate_gas({"from": env.relayer})
    ratio = fulfil_gas / verify_gas
    print(
        f"\nverifyProof {verify_gas:,} gas; fulfill {fulfil_gas:,} gas "
        f"(+{fulfil_gas - verify_gas:,}); ratio {ratio:.3f}"
    )
    assert ratio <= 1.20
    receipt = env.fulfill(rid)
    assert receipt.gasUsed <= fulfil_gas
