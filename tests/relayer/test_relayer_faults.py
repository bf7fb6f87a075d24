"""The relayer on an operator's bad day (issue 15): each test is one row of the issue's table,
on a real Anvil, behind the fault proxy (:mod:`zkml_oracle.testing.faults`) where it needs one,
and asserts what was made, fulfilled on-chain, duplicated and lost: lost 0 and duplicated 0 in
every row (a reorg deeper than --confirmations is reported, and what it orphaned is sent again).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BATCH
from tests.relayer.helpers import (
    EXE,
    RELAYER_0,
    REQUESTER_KEY,
    Env,
    Rows,
    finish,
    relay_log,
    request_event,
    start_env,
    wait_for,
)
from zkml_oracle.chain import LocalNode, contracts, free_port
from zkml_oracle.chain.oracle import fulfilled_by_request
from zkml_oracle.relayer import journal as J
from zkml_oracle.relayer.journal import Journal
from zkml_oracle.testing.faults import Fault, FaultProxy, rpc
from zkml_oracle.types import BuildResult

Good = tuple[list[int], list[int]]
SMALL_BLOCK = 12_000_000  # block gas limit of the callback-gas rows' chains


# --- helpers ---


def _send(env: Env, fn: Any, value: int = 0, key: str = REQUESTER_KEY) -> Any:
    from eth_account import Account

    account = Account.from_key(key)
    tx = fn.build_transaction(
        {
            "from": account.address,
            "value": value,
            "nonce": env.web3.eth.get_transaction_count(account.address, "pending"),
        }
    )
    raw = account.sign_transaction(tx).raw_transaction
    receipt = env.web3.eth.wait_for_transaction_receipt(env.web3.eth.send_raw_transaction(raw))
    assert receipt["status"] == 1
    return receipt


def _request(
    env: Env,
    felts: list[int],
    *,
    fee: int = 0,
    consumer: Any = None,
    gas: int = 0,
    model_id: str | None = None,
) -> int:
    """A request (through a TestConsumer with ``gas`` callback gas, if given), paying ``fee``."""
    deadline = int(env.web3.eth.get_block("latest")["timestamp"]) + 3600
    model = model_id or env.model_id
    if consumer is not None:
        fn = consumer.functions.request(model, felts, gas, deadline)
    else:
        fn = env.contract.functions.requestInference(model, felts, "0x" + "00" * 20, 0, deadline)
    receipt = _send(env, fn, fee)
    logs = env.contract.events.InferenceRequested().process_receipt(receipt)
    return int(logs[0]["args"]["requestId"])


def _consumer(env: Env) -> Any:
    artifact = contracts.contract("TestConsumer")
    factory = env.web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = _send(env, factory.constructor(env.oracle))
    return env.web3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def _tally(env: Env, made: list[int]) -> dict[str, int]:
    """made / fulfilled on-chain / duplicated (fulfilled more than once) / lost (still
    pending on-chain, or its journal row not final)."""
    answers = fulfilled_by_request(env.contract)
    states = env.states()
    fulfilled = duplicated = lost = 0
    for rid in made:
        n = len(answers.get(rid, []))
        fulfilled += n >= 1
        duplicated += n > 1
        on_chain = env.contract.functions.requestStatus(rid).call()
        lost += on_chain == 1 or states.get(rid) not in J.TERMINAL_STATES
    return {"made": len(made), "fulfilled": fulfilled, "duplicated": duplicated, "lost": lost}


def _status(env: Env) -> dict[str, Any]:
    done = subprocess.run(
        [str(EXE), "relay-status", "--db", "j.sqlite", "--json"],
        cwd=env.work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _events(env: Env, name: str, log: str = "relay.log") -> list[dict[str, Any]]:
    return [r for r in relay_log(env, log) if r["event"] == name]


@pytest.fixture
def proxied(env: Env) -> Iterator[tuple[Env, FaultProxy]]:
    with FaultProxy(env.node.url) as proxy:
        env.rpc_url = proxy.url
        yield env, proxy


class Miner:
    """Mines a block every ``interval`` seconds (the chain moves on with automine off)."""

    def __init__(self, url: str, interval: float = 0.4) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, interval), daemon=True)
        self._thread.start()

    def _run(self, url: str, interval: float) -> None:
        while not self._stop.wait(interval):
            rpc(url, "evm_mine")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- row 1: a 502 right after eth_estimateGas ---


def test_a_502_after_the_gas_estimate_leaves_no_nonce_gap(
    proxied: tuple[Env, FaultProxy], good: Good
) -> None:
    env, proxy = proxied
    felts, outputs = good
    made = [env.request(felts), env.request(felts)]
    # The first fee lookup after the first estimate fails with a 502.
    proxy.add(Fault("eth_getBlockByNumber", "http", status=502, after="eth_estimateGas"))
    assert finish(env.relay("--once"), timeout=400) == 0, (env.work / "relay.log").read_text()
    assert proxy.injected["eth_getBlockByNumber:http"] == 1
    assert _tally(env, made) == {"made": 2, "fulfilled": 2, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)


# --- row 2: a reorg that removes the relayer's fulfilment ---


@pytest.mark.slow
@pytest.mark.parametrize("confirmations", [0, 2])
def test_a_reorg_of_the_fulfilment_is_settled_again(
    env: Env, good: Good, confirmations: int
) -> None:
    felts, outputs = good
    url = env.node.url
    made = [env.request(felts), env.request(felts)]
    rpc(url, "evm_setAutomine", False)
    for _ in range(confirmations):
        rpc(url, "evm_mine")
    proc = env.relay("--confirmations", str(confirmations))
    miner = None
    try:
        wait_for(
            "the fulfilment in the pool",
            lambda: set(env.states().values()) == {J.SENT} and len(env.states()) == 2,
            timeout=400,
        )
        snapshot = rpc(url, "evm_snapshot")
        rpc(url, "evm_mine")  # the fulfilment's block
        if confirmations == 0:  # final at once: the journal says fulfilled
            wait_for("fulfilled", lambda: set(env.states().values()) == {J.FULFILLED}, 90)
        else:
            wait_for("the transaction mined", lambda: _receipt_seen(env), 90)
            time.sleep(1)  # the relayer sees it mined, not yet final
        head_before = env.web3.eth.block_number
        rpc(url, "evm_revert", snapshot)  # the block is orphaned: a 1-block reorg
        assert env.web3.eth.block_number == head_before - 1
        rpc(url, "evm_setAutomine", True)
        late = env.request(felts)  # mined at the orphaned block's height, under the cursor
        made.append(late)
        rpc(url, "evm_setAutomine", False)
        miner = Miner(url)
        _fulfilled_then_stopped(env, proc, made, timeout=400)
    finally:
        if miner is not None:
            miner.stop()
        if proc.poll() is None:
            proc.kill()
    assert _tally(env, made) == {"made": 3, "fulfilled": 3, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)
    deep = _events(env, "chain.deep_reorg")
    status = _status(env)
    if confirmations == 0:  # deeper than the setting: reported, and sent again
        assert deep and status["deep_reorgs"] >= 1
        assert set(status["last_deep_reorg"]["requeued"]) <= set(made)
        assert _events(env, "chain.reorg")  # the cursor followed the chain back
    else:  # within the setting: handled quietly (the cursor was below the orphaned block)
        assert not deep and status["deep_reorgs"] == 0
        assert _events(env, "tx.rebroadcast")


def test_a_deep_reorg_is_found_though_the_first_look_failed(
    proxied: tuple[Env, FaultProxy], good: Good
) -> None:
    """The recheck of final fulfilments fails once on a transient RPC error (a 502 on its read
    of the fulfilment's block) right after a reorg orphaned that block, and no new block comes:
    the next turn looks again (the head is the same, but it was never checked) and sends the
    request again."""
    env, proxy = proxied
    felts, outputs = good
    url = env.node.url
    made = [env.request(felts)]
    rpc(url, "evm_setAutomine", False)
    proc = env.relay("--confirmations", "0")
    miner = None
    try:
        wait_for("the fulfilment in the pool", lambda: env.states() == {made[0]: J.SENT}, 400)
        snapshot = rpc(url, "evm_snapshot")
        rpc(url, "evm_mine")  # the fulfilment's block: final at once
        mined = env.web3.eth.block_number
        wait_for("fulfilled", lambda: env.states() == {made[0]: J.FULFILLED}, 90)
        for _ in range(2):  # the scan moves past it, so only the recheck reads it again
            rpc(url, "evm_mine")
        journal = env.work / "j.sqlite"

        def scanned() -> bool:
            with Journal(journal, readonly=True) as j:
                return (j.cursor() or 0) >= mined + 2

        wait_for("the scan past the fulfilment", scanned, 60)
        fault = proxy.add(
            Fault("eth_getBlockByNumber", "http", when=lambda params: params[0] == hex(mined))
        )
        rpc(url, "evm_revert", snapshot)  # the head is now the block before it, and stays
        wait_for("the deep reorg", lambda: _events(env, "chain.deep_reorg"), 60)
        assert fault.hits == 1
        rpc(url, "evm_setAutomine", True)
        miner = Miner(url)
        _fulfilled_then_stopped(env, proc, made, timeout=120)
    finally:
        if miner is not None:
            miner.stop()
        if proc.poll() is None:
            proc.kill()
    assert _tally(env, made) == {"made": 1, "fulfilled": 1, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)


def _fulfilled_then_stopped(
    env: Env, proc: subprocess.Popen[bytes], made: list[int], timeout: float
) -> None:
    """Every request fulfilled on-chain and final in the journal; then the relayer stops
    cleanly on SIGTERM."""
    wait_for(
        "all fulfilled",
        lambda: (
            env.states() == {rid: J.FULFILLED for rid in made}
            and _tally(env, made)["fulfilled"] == len(made)
        ),
        timeout=timeout,
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def _receipt_seen(env: Env) -> bool:
    """Both requests' transaction mined (the relayer waits for its confirmations)."""
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        hashes = {e.tx_hash for e in j.all() if e.tx_hash}
    return bool(hashes) and all(env.web3.eth.get_transaction_receipt(h) for h in hashes)


# --- row 3: the relayer's account runs dry for a while ---


@pytest.mark.slow
def test_a_relayer_without_funds_pauses_and_keeps_its_attempts(env: Env, good: Good) -> None:
    felts, outputs = good
    url = env.node.url
    balance = env.web3.eth.get_balance(RELAYER_0)
    rpc(url, "anvil_setBalance", RELAYER_0, "0x0")
    made = [env.request(felts), env.request(felts)]
    proc = env.relay()
    try:
        wait_for("a pause", lambda: _events(env, "relayer.paused"), timeout=300)
        time.sleep(8)  # the first relayer had spent every attempt (3, 0.5-2 s apart) by now
        assert set(env.states().values()) <= set(J.OPEN_STATES), env.states()
        assert _status(env)["alert"].startswith("sending paused")
        rpc(url, "anvil_setBalance", RELAYER_0, hex(balance))
        wait_for("both fulfilled", lambda: env.states() == dict.fromkeys(made, J.FULFILLED), 400)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _tally(env, made) == {"made": 2, "fulfilled": 2, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        assert all(e.attempts == 1 for e in j.all())  # one proof each, no attempt spent
    assert _events(env, "relayer.resumed") and not _status(env)["alert"]
    # The top-up ended the pause at once, not at the end of its backoff (the first relayer
    # waited out a backoff of up to 60 s after the operator had paid).
    last_pause = _events(env, "relayer.paused")[-1]
    [resumed] = _events(env, "relayer.resumed")
    assert resumed["ts"] < last_pause["ts"] + last_pause["retry_in"]


def test_retry_failed_puts_failed_requests_back(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        j.record([request_event(1), request_event(2)], 1)
        j.transition(1, J.PROVING, attempts=3)
        j.transition(1, J.FAILED, error="gave up")
        with pytest.raises(J.JournalError, match="failed -> proved is not an allowed"):
            j.transition(1, J.PROVED)
        assert j.retry_failed() == [1]
        entry = j.get(1)
        assert entry is not None and entry.state == J.SEEN and entry.attempts == 0


# --- row 4: one request in a batch whose callback makes fulfillBatch revert ---


@pytest.fixture
def small_benv(batch_built: BuildResult, tmp_path: Path) -> Iterator[Env]:
    yield from _small_blocks(batch_built, tmp_path, SMALL_BLOCK - 1_000_000)


@pytest.fixture
def small_env(built: BuildResult, tmp_path: Path) -> Iterator[Env]:
    yield from _small_blocks(built, tmp_path, SMALL_BLOCK - 1_000_000)


def test_a_poison_request_in_a_batch_is_rejected_alone(small_benv: Env, rows: Rows) -> None:
    """The oracle caps callback gas (issue 14), but an admin may allow callbacks close to a
    block (here 11 M gas on 12 M blocks); such a request cannot share a proof with others."""
    benv = small_benv
    consumer = _consumer(benv)
    poison = _request(benv, rows.felts[1], consumer=consumer, gas=SMALL_BLOCK - 1_000_000)
    healthy = [benv.request(rows.felts[i]) for i in (0, 2, 3)]
    done = benv.relay("--once", "--batch-size", str(BATCH))
    assert finish(done, timeout=400) == 0, (benv.work / "relay.log").read_text()
    entries = {e.request_id: e for e in _all(benv)}
    assert entries[poison].state == J.REJECTED
    assert "callback gas cannot fit a block" in str(entries[poison].error)
    assert all(entries[r].state == J.FULFILLED for r in healthy)
    assert len(_events(benv, "proof.started")) == 1  # the rest proven once, together
    assert _tally(benv, healthy) == {"made": 3, "fulfilled": 3, "duplicated": 0, "lost": 0}
    assert benv.contract.functions.requestStatus(poison).call() == 1  # left to its requester


def _small_blocks(built: BuildResult, tmp_path: Path, callback_cap: int) -> Iterator[Env]:
    """A fresh Anvil whose blocks hold SMALL_BLOCK gas, with an oracle whose admin allows
    callbacks of up to ``callback_cap`` gas (the oracle caps it below any block: issue 14)."""
    port = free_port()
    node = LocalNode.start(port=port, extra_args=("--gas-limit", str(SMALL_BLOCK)))
    env = None
    try:
        env = start_env(node, port, built, tmp_path)
        settings = env.contract.functions.settings().call()
        fn = env.contract.functions.setSettings((callback_cap, settings[1], settings[2]))
        receipt = env.web3.eth.wait_for_transaction_receipt(
            fn.transact({"from": env.web3.eth.accounts[0]})
        )
        assert receipt["status"] == 1
        yield env
    finally:
        if env is not None:
            env.stop()
        else:
            node.stop()


def _all(env: Env) -> list[J.Entry]:
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        return j.all()


# --- row 5: SIGTERM at a random moment, 200 ms RPC latency ---


@pytest.mark.slow
def test_sigterm_at_any_moment_exits_cleanly(proxied: tuple[Env, FaultProxy], good: Good) -> None:
    env, proxy = proxied
    felts, outputs = good
    proxy.latency = 0.2
    made = [env.request(felts), env.request(felts)]
    # One moment in each quarter of the loop's first 2.5 s (scanning, proving, sending),
    # jittered: the span six uniform draws covered, in four starts.
    jitter = random.Random(15)
    for attempt in range(4):
        log = f"term{attempt}.log"
        proc = env.relay("--drain-timeout", "3", log=log)
        try:
            wait_for("the loop", lambda log=log: _events(env, "relayer.start", log), 120)
            time.sleep((attempt + jitter.random()) * 2.5 / 4)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        text = (env.work / log).read_text()
        assert code == 0 and "Traceback" not in text, text[-3000:]
    assert all(e.attempts <= 1 for e in _all(env))  # a cancelled proof is not an attempt
    proxy.latency = 0.0
    assert finish(env.relay("--once", log="last.log"), timeout=400) == 0
    assert _tally(env, made) == {"made": 2, "fulfilled": 2, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)
    assert all(e.attempts == 1 for e in _all(env))


# --- row 6: a bad journal, and one that fails while running ---


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (a disk that can fill up, or be made read-only, for real)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


@pytest.mark.slow
def test_journal_faults_are_one_line_and_exit_2(env: Env, good: Good, small_disk: Path) -> None:
    import sqlite3

    felts, outputs = good

    def refused(db: str, match: str) -> None:
        done = env.relay("--once", db=db, log="refused.log")
        assert finish(done) == 2
        text = (env.work / "refused.log").read_text()
        (env.work / "refused.log").unlink()
        assert "Traceback" not in text and f"error: the relayer journal {env.work / db}" in text
        assert match in text, text

    (env.work / "garbage.sqlite").write_bytes(os.urandom(8192))
    refused("garbage.sqlite", "not an SQLite database")
    other = sqlite3.connect(env.work / "other.sqlite")
    other.execute("CREATE TABLE accounts (id INTEGER)")
    other.commit()
    other.close()
    done = env.relay("--once", db="other.sqlite", log="other.log")
    assert finish(done) == 2
    assert "not a relayer journal" in (env.work / "other.log").read_text()

    # Read-only at start.
    db = small_disk / "j.sqlite"
    rel = os.path.relpath(db, env.work)
    assert finish(env.relay("--once", db=rel)) == 0  # an empty journal, bound to the oracle
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused(rel, "read-only")
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)

    # The disk fills up while a proof is made: the relayer stops cleanly, no SIGBUS.
    made = [env.request(felts)]
    proc = env.relay(db=rel, log="full.log")
    try:
        wait_for("a proof in a worker", lambda: J.PROVING in env.states(rel).values(), 300)
        _fill(small_disk)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (env.work / "full.log").read_text()
    assert code == 2, (code, text[-2000:])
    assert "Traceback" not in text and "relayer.journal_failed" in text
    assert "free space on its disk" in text
    (small_disk / "filler").unlink()
    assert finish(env.relay("--once", db=rel, log="after.log"), timeout=400) == 0
    assert _tally_db(env, made, rel) == {"made": 1, "fulfilled": 1, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)

    # The journal vanishes while running.
    proc = env.relay(db=rel, log="vanish.log")
    try:
        wait_for("the loop", lambda: _events(env, "relayer.start", "vanish.log"), 120)
        shutil.move(db, env.work / "moved.sqlite")
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 2 and "vanished" in (env.work / "vanish.log").read_text()


def _tally_db(env: Env, made: list[int], db: str) -> dict[str, int]:
    saved = env.states
    env.states = lambda db_=db: saved(db_)  # type: ignore[method-assign]
    try:
        return _tally(env, made)
    finally:
        env.states = saved  # type: ignore[method-assign]


# --- rows 7 and 8: callback gas near a block, and requests that cannot pay ---


def test_a_callback_needing_most_of_a_block_is_fulfilled(small_env: Env, good: Good) -> None:
    """9.5 M callback gas on 12 M blocks: the estimate + 20 % is past the block gas limit,
    though the fulfilment fits (the issue's 25 M on 30 M blocks, at the oracle's cap)."""
    env = small_env
    felts, outputs = good
    consumer = _consumer(env)
    made = [_request(env, felts, consumer=consumer, gas=9_500_000)]
    assert finish(env.relay("--once"), timeout=400) == 0, (env.work / "relay.log").read_text()
    assert _tally(env, made) == {"made": 1, "fulfilled": 1, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)
    assert consumer.functions.last().call()[0] == 1  # the callback ran


def test_unaffordable_requests_are_rejected_before_proving(small_env: Env, good: Good) -> None:
    env = small_env
    felts, outputs = good
    consumer = _consumer(env)
    greedy = _request(env, felts, consumer=consumer, gas=SMALL_BLOCK - 1_000_000, fee=10**15)
    unpaid = _request(env, felts)
    paying = _request(env, felts, fee=10**15)
    done = env.relay("--once", "--min-fee", str(10**14))
    assert finish(done, timeout=400) == 0, (env.work / "relay.log").read_text()
    entries = {e.request_id: e for e in _all(env)}
    assert entries[greedy].state == J.REJECTED and entries[unpaid].state == J.REJECTED
    assert "callback gas cannot fit a block" in str(entries[greedy].error)
    assert "fee too low: 0 wei escrowed" in str(entries[unpaid].error)
    assert [r["requests"] for r in _events(env, "proof.started")] == [[paying]]
    assert _tally(env, [paying]) == {"made": 1, "fulfilled": 1, "duplicated": 0, "lost": 0}
    env.assert_exactly_once([paying], outputs)


# --- row 9: a transaction mined while it is being settled ---


def test_a_transaction_mined_during_settlement_is_not_taken_as_replaced(
    proxied: tuple[Env, FaultProxy], good: Good
) -> None:
    env, proxy = proxied
    felts, outputs = good
    made = [env.request(felts)]
    url = env.node.url
    rpc(url, "evm_setAutomine", False)  # blocks come when they come (here: exactly then)
    proxy.add(
        Fault(
            "eth_getTransactionCount",
            "hook",
            hook=lambda: rpc(url, "evm_mine"),
            when=lambda params: len(params) > 1 and params[1] == "latest",
            after="eth_sendRawTransaction",
        )
    )
    assert finish(env.relay("--once"), timeout=400) == 0, (env.work / "relay.log").read_text()
    assert proxy.injected["eth_getTransactionCount:hook"] == 1
    [entry] = _all(env)
    assert entry.state == J.FULFILLED and entry.attempts == 1 and entry.error is None
    assert not _events(env, "request.retry")
    assert _tally(env, made) == {"made": 1, "fulfilled": 1, "duplicated": 0, "lost": 0}
    env.assert_exactly_once(made, outputs)


# --- row 10: a request for a model this relayer does not serve ---


def test_requests_for_models_not_served_are_journalled_as_ignored(env: Env, good: Good) -> None:
    felts, outputs = good
    [registered] = env.contract.events.ModelRegistered().get_logs(from_block=0)
    config = dict(registered["args"]["config"])
    config["artifactDigest"] = b"\x01" * 32  # the same circuit registered again: another id
    receipt = _send(
        env,
        env.contract.functions.registerModel(config),
        key="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    )
    [other] = env.contract.events.ModelRegistered().process_receipt(receipt)
    other_id = "0x" + bytes(other["args"]["modelId"]).hex()
    foreign = _request(env, felts, model_id=other_id)
    served = env.request(felts)
    assert finish(env.relay("--once"), timeout=400) == 0, (env.work / "relay.log").read_text()
    assert env.states() == {foreign: J.IGNORED, served: J.FULFILLED}
    assert _status(env)["counts"]["ignored"] == 1
    env.assert_exactly_once([served], outputs)


def test_job_folders_are_private_and_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prover's job folder is private to the user; the folders of provers that are gone
    (a pid that ended, or a reused pid with another start time) are swept, a live one kept;
    a shared folder in its place is refused in one line."""
    from zkml_oracle.exceptions import ProvingError
    from zkml_oracle.relayer import job_folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = job_folders.mine()
    assert mine.parent.stat().st_mode & 0o777 == 0o700
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = [mine.parent / f"{gone.pid}-1", mine.parent / f"{os.getpid()}-1"]
    for folder in dead:
        (folder / "job").mkdir(parents=True)
        (folder / "job" / "input.json").write_text("{}")
    job_folders.sweep()
    assert list(mine.parent.iterdir()) == [mine]
    mine.parent.chmod(0o777)
    with pytest.raises(ProvingError, match="not a folder private to this user"):
        job_folders.mine()


def test_a_prover_that_stalls_is_stopped_and_its_pool_replaced(
    built: BuildResult, example: dict[str, Path]
) -> None:
    """A pool worker that stops using CPU mid-proof (frozen here with SIGSTOP, as ezkl's
    deadlocked prove nearly is) is killed after the stall window: its job's outcome says so,
    the job queued behind it is proven on a new pool, by a new process; and the killed job's
    files (its input: for a requester-bound model the decrypted private input) are gone."""
    from zkml_oracle.relayer.backend import LocalPoolBackend, ProofJob

    sample = json.loads(example["input"].read_text())["input_data"]
    # Each job's input is told apart by a last digit far below the circuit's scale.
    salt = random.randrange(10**6) * 1e-13

    def marked(rid: int) -> list[list[float]]:
        return [[sample[0][0] + salt + rid * 1e-14, *sample[0][1:]], *sample[1:]]

    def job(rid: int) -> ProofJob:
        return ProofJob((rid,), "credit", str(built.build_dir), [marked(rid)])

    def left_behind(rid: int) -> list[Path]:
        """Files in the temporary folder that hold the input of job ``rid``."""
        value = json.dumps(marked(rid)[0][0])
        return [
            path
            for path in Path(tempfile.gettempdir()).glob("zkml-relay*/**/*.json")
            if value in path.read_text(errors="replace")
        ]

    backend = LocalPoolBackend([str(built.build_dir)], workers=1, stall_seconds=2)
    try:
        for rid in range(1, 6):  # until a job is frozen while it proves (a proof is short)
            frozen, frozen_rid = backend.submit(job(rid)), rid
            worker = wait_for(
                "a proof", lambda: next((w for w in backend.status() if w.state == "proving"), None)
            )
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGSTOP)
            if not frozen.done():
                break
            os.kill(worker.pid, signal.SIGCONT)
        queued = backend.submit(job(99))
        stopped = frozen.result(timeout=120)
        assert not stopped.ok and stopped.error is not None
        assert "stopped making progress" in stopped.error
        proven = queued.result(timeout=300)
        assert proven.ok and proven.request_ids == (99,) and len(proven.instances) > 0
        assert all(w.pid != worker.pid for w in backend.status())
        assert left_behind(frozen_rid) == []
    finally:
        backend.close(cancel=True)
