"""Issue 14, oracle hardening: each attack of the review, replayed on a real Anvil with real
ezkl proofs (a stand-in verifier only where no proof is needed), refused by the oracle.

Rows 1 (feeds) and 7 (answers) are in tests/test_feed_adapter.py, row 4 (batches) in
tests/test_oracle_batch.py, rows 3 and 9 (examples) in tests/test_examples.py.
"""

from __future__ import annotations

import json

from eth_utils.crypto import keccak

from tests.oracle_helpers import (
    CANCELLED,
    HOUR,
    Env,
    advance,
    decode_error,
    deploy,
    events,
    latest_time,
    send,
    tx_reverts,
)
from zkml_oracle.chain import contracts, rpc
from zkml_oracle.circuit.verifier import CompiledContract
from zkml_oracle.testing import committed

DAY = 24 * HOUR
FEE = 10**15
DEFAULT_SETTINGS = (
    2_500_000,
    0,
    30 * DAY,
)  # (maxCallbackGasLimit, fulfillerGracePeriod, maxRequestTtl)


def set_settings(env: Env, max_gas: int, grace: int, ttl: int) -> None:
    send(env.web3, env.oracle.functions.setSettings((max_gas, grace, ttl)), env.admin)


# --- row 1: who may move a feed ---


def test_only_a_models_publishers_move_its_feed(env: Env) -> None:
    """A stranger with a genuine proof on an input of their choice cannot push a round (nor
    take the block's only round from the honest publisher); the admin decides who may."""
    views = env.oracle.functions
    submit = views.submitResult(env.model, env.good.proof, env.good.instances)
    assert views.isFeedPublisher(env.model, env.admin).call() is True  # the registrar
    assert views.feedOpen(env.model).call() is False
    assert tx_reverts(submit, env.stranger) == ("ZkmlOracleNotPublisher", (env.model, env.stranger))
    assert views.latestRound(env.model).call() == 0
    # Only the admin sets the policy.
    got = tx_reverts(views.setFeedPublisher(env.model, env.stranger, True), env.stranger)
    assert got[0] == "AccessControlUnauthorizedAccount"
    receipt = send(env.web3, views.setFeedPublisher(env.model, env.relayer, True), env.admin)
    (ev,) = events(env.oracle, "FeedPublisherSet", receipt)
    assert (ev.args.modelId, ev.args.publisher, ev.args.allowed) == (env.model, env.relayer, True)
    send(env.web3, submit, env.relayer)
    assert views.latestRound(env.model).call() == 1
    # An open feed takes anyone's verified result.
    send(env.web3, views.setFeedOpen(env.model, True), env.admin)
    advance(env.url, 1)
    send(env.web3, submit, env.stranger)
    assert views.latestRound(env.model).call() == 2


# --- row 2: a fulfilment copied from the mempool does not earn the fee ---


def test_a_copied_fulfilment_does_not_earn_the_fee(env: Env) -> None:
    views = env.oracle.functions
    assert tuple(views.settings().call()) == DEFAULT_SETTINGS
    role = views.FULFILLER_ROLE().call()
    send(env.web3, views.grantRole(role, env.relayer), env.admin)
    set_settings(env, 2_500_000, 600, 30 * DAY)
    rid = env.request(fee=FEE)
    open_at = latest_time(env.web3) + 600
    # The stranger replays the relayer's transaction (same proof, same instances) first.
    copied = views.fulfill(committed(env.oracle, rid), env.good.proof, env.good.instances)
    assert tx_reverts(copied, env.stranger) == (
        "ZkmlOracleNotDesignatedFulfiller",
        (rid, env.stranger, open_at),
    )
    receipt = env.fulfill(rid)
    (done,) = events(env.oracle, "RequestFulfilled", receipt)
    assert done.args.fulfiller == env.relayer
    assert views.pendingWithdrawal(env.relayer).call() == FEE
    assert views.pendingWithdrawal(env.stranger).call() == 0
    # The open fallback: once the grace period is over, anyone may serve the request.
    rid = env.request(fee=FEE)
    advance(env.url, 601)
    send(
        env.web3,
        views.fulfill(committed(env.oracle, rid), env.good.proof, env.good.instances),
        env.stranger,
    )
    assert views.pendingWithdrawal(env.stranger).call() == FEE


def test_settings_are_bounded_and_admin_only(env: Env) -> None:
    views = env.oracle.functions
    got = tx_reverts(views.setSettings(DEFAULT_SETTINGS), env.stranger)
    assert got[0] == "AccessControlUnauthorizedAccount"
    cases = [
        ((15_000_001, 0, DAY), "maxCallbackGasLimit above the cap"),
        ((100_000, 0, 0), "maxRequestTtl is zero"),
        ((100_000, DAY, DAY), "fulfillerGracePeriod not below maxRequestTtl"),
    ]
    for settings, reason in cases:
        got = tx_reverts(views.setSettings(settings), env.admin)
        assert got == ("ZkmlOracleInvalidSettings", (reason,))
    receipt = send(env.web3, views.setSettings((300_000, 60, DAY)), env.admin)
    (ev,) = events(env.oracle, "SettingsSet", receipt)
    assert tuple(ev.args.settings.values()) == (300_000, 60, DAY)


# --- row 4 (single requests): the callback gas limit is capped ---


def test_a_callback_gas_limit_above_the_cap_is_refused(env: Env) -> None:
    """2**32-1 gas could never be reserved in a block: every batch holding it would fail."""
    deadline = latest_time(env.web3) + HOUR
    fn = env.oracle.functions.requestInference(
        env.model, env.inputs, env.consumer.address, 2**32 - 1, deadline
    )
    got = tx_reverts(fn, env.requester)
    assert got == ("ZkmlOracleCallbackGasLimitTooHigh", (2**32 - 1, 2_500_000))
    set_settings(env, 300_000, 0, 30 * DAY)
    fn = env.oracle.functions.requestInference(
        env.model, env.inputs, env.consumer.address, 300_001, deadline
    )
    assert tx_reverts(fn, env.requester) == (
        "ZkmlOracleCallbackGasLimitTooHigh",
        (300_001, 300_000),
    )
    env.request(callback=env.consumer.address, gas_limit=300_000)


# --- row 5: escrow never waits unboundedly ---


def test_deadlines_are_capped(env: Env) -> None:
    now = latest_time(env.web3)
    for deadline in (2**64 - 1, now + 30 * DAY + 10):
        fn = env.oracle.functions.requestInference(
            env.model, env.inputs, env.consumer.address, 0, deadline
        )
        assert tx_reverts(fn, env.requester) == ("ZkmlOracleBadDeadline", (deadline,))
    env.request(deadline=now + 30 * DAY - 10)


def test_a_deactivated_models_requests_are_cancelled_at_once(env: Env) -> None:
    rid = env.request(fee=FEE, deadline=latest_time(env.web3) + 29 * DAY)
    views = env.oracle.functions
    send(env.web3, views.setModelActive(env.model, False), env.admin)
    assert tx_reverts(views.cancel(committed(env.oracle, rid)), env.stranger) == (
        "ZkmlOracleNotRequester",
        (rid, env.stranger),
    )
    receipt = send(env.web3, views.cancel(committed(env.oracle, rid)), env.requester)
    (ev,) = events(env.oracle, "RequestCancelled", receipt)
    assert (ev.args.requestId, ev.args.refund) == (rid, FEE)
    assert views.requestStatus(rid).call() == CANCELLED
    assert views.pendingWithdrawal(env.requester).call() == FEE
    # Reactivated, a pending request is again cancellable only after its deadline.
    send(env.web3, views.setModelActive(env.model, True), env.admin)
    rid = env.request(fee=FEE)
    assert (
        tx_reverts(views.cancel(committed(env.oracle, rid)), env.requester)[0]
        == "ZkmlOracleRequestNotExpired"
    )


# --- row 6: a consumer acts only on its own requests ---


def test_a_strangers_request_never_reaches_a_consumers_logic(env: Env) -> None:
    """Anyone may name the consumer as the callback of a request on an input of their choice:
    the consumer is told who asked and refuses; the oracle records that, the fee is paid."""
    rid = env.request(callback=env.consumer.address, gas_limit=200_000)  # by the requester EOA
    receipt = env.fulfill(rid)
    (failed,) = events(env.oracle, "CallbackFailed", receipt)
    assert decode_error(failed.args.reason) == (
        "ZkmlConsumerForeignRequest",
        (rid, env.requester),
    )
    assert env.consumer.functions.last().call()[0] == 0
    # Its own request goes through.
    own = env.consumer_request()
    env.fulfill(own)
    assert env.consumer.functions.last().call()[:2] == [1, own]


# --- row 8: the verifier bound to a model cannot change ---


def oz_artifact(name: str) -> CompiledContract:
    """An OpenZeppelin contract as its npm package ships it compiled (the proxies need solc
    0.8.22; the project's is 0.8.20)."""
    path = contracts.PROJECT_ROOT / "node_modules/@openzeppelin/contracts/build/contracts"
    d = json.loads((path / f"{name}.json").read_text())
    return CompiledContract(name, d["abi"], bytes.fromhex(d["bytecode"][2:]), b"")


def test_an_upgradeable_proxy_is_refused_as_a_verifier(env: Env) -> None:
    """OpenZeppelin's ERC1967Proxy, pointing at the model's genuine verifier (it verifies the
    same proofs), could be re-pointed after registration without changing its code hash: the
    oracle refuses it at registration (its SLOAD of the implementation slot), and still
    accepts the genuine verifier behind it."""
    genuine = env.config[0]
    proxy = deploy(env.web3, oz_artifact("ERC1967Proxy"), env.admin, genuine, b"")
    views = env.oracle.functions
    assert views.getModel(env.model).call()[0][0] == genuine  # the genuine one: accepted
    config = (proxy.address, *env.config[1:])
    got = tx_reverts(views.registerModel(config), env.admin)
    assert got[0] == "ZkmlOracleMutableVerifier"
    assert got[1][0] == proxy.address and got[1][2] == 0x54  # SLOAD
    # No code at all (as before), and hand-written bytecode without solc's metadata
    # trailer (it returns true to anything): the scan cannot delimit its code, refused.
    rpc(env.url, "anvil_setCode", [proxy.address, "0x"])
    got = tx_reverts(views.registerModel(config), env.admin)
    assert got == ("ZkmlOracleInvalidConfig", ("verifier has no code",))
    # ... and code whose end runs on into what its trailer claims is metadata (PUSH1 1, then
    # a "CBOR map" holding a DELEGATECALL, its length 3): no 0xfe ends the scanned code.
    for code in ("600160005260206000f3", "6001a2f4000003"):
        rpc(env.url, "anvil_setCode", [proxy.address, "0x" + code])
        got = tx_reverts(views.registerModel(config), env.admin)
        assert got == ("ZkmlOracleUnrecognisedVerifier", (proxy.address,))


def test_a_verifier_whose_code_changed_is_refused(env: Env) -> None:
    """The code hash recorded at registration is checked at every verification (here the
    code is replaced with Anvil's anvil_setCode, as a metamorphic contract would)."""
    verifier = env.config[0]
    views = env.oracle.functions
    registered = views.verifierCodehash(env.model).call()
    assert registered == keccak(bytes(env.web3.eth.get_code(verifier)))
    rid = env.request()
    mock_code = bytes(env.web3.eth.get_code(env.mock_verifier.address))
    rpc(env.url, "anvil_setCode", [verifier, "0x" + mock_code.hex()])
    got = env.fulfill_reverts(rid, b"\x00" * 32, env.good.instances)
    assert got == ("ZkmlOracleVerifierChanged", (env.model, registered, keccak(mock_code)))
    submit = views.submitResult(env.model, b"", env.good.instances)
    assert tx_reverts(submit, env.admin)[0] == "ZkmlOracleVerifierChanged"
