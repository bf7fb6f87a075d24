"""The relayer (zkml_oracle.relayer): journal unit tests, and fault tests on real Anvil nodes
started here, each asserting that every request ends fulfilled exactly once with the outputs
of the genuine proof.

The fault tests run ``zkml-oracle relay`` as a child process, as an operator does, and crash
it with SIGKILL; they poll the journal and the chain with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import BATCH, calibration_rows
from tests.relayer.helpers import (
    EXE,
    RELAYER_0,
    RELAYER_1,
    Env,
    Rows,
    finish,
    processes_in,
    relay_log,
    request_event,
    start_env,
    wait_for,
)
from zkml_oracle import field
from zkml_oracle.chain import LocalNode, free_port
from zkml_oracle.exceptions import IllegalTransition
from zkml_oracle.relayer import journal as J
from zkml_oracle.relayer.inputs import Rejected, sample_from_felts
from zkml_oracle.relayer.journal import Journal, JournalError
from zkml_oracle.relayer.signer import ANVIL_DEV_KEYS, NonceManager
from zkml_oracle.testing import committed
from zkml_oracle.types import BuildResult, Visibility

# --- the journal, alone ---


def test_the_journal_records_once_and_keeps_the_cursor(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        assert j.cursor() is None
        assert j.record([request_event(1), request_event(2)], 5) == 2
        assert (
            j.record([request_event(2), request_event(3, block=6)], 6) == 1
        )  # a known request stays as is
        assert j.cursor() == 6
        assert [e.request_id for e in j.in_state(J.SEEN)] == [1, 2, 3]
        j.transition(1, J.PROVING, attempts=1)
        j.transition(2, J.PROVED, proof=b"\x01\x02", instances=[5, field.FIELD_MODULUS - 1])
    with Journal(tmp_path / "j.sqlite") as j:  # reopened, as after a crash
        assert j.resume() == 1
        one, two = j.get(1), j.get(2)
        assert one is not None and one.state == J.SEEN and one.attempts == 1
        assert two is not None and two.proof == b"\x01\x02"
        assert two.instances == (5, field.FIELD_MODULUS - 1)
        j.transition(3, J.REJECTED, error="bad input")
        summary = j.summary()
        assert summary["counts"]["seen"] == 1 and summary["counts"]["rejected"] == 1
        assert summary["last_errors"][0]["error"] == "bad input"
        with pytest.raises(ValueError, match="not journal columns"):
            j.update(1, colour="red")
        assert isinstance(j.get(3).state, J.State)  # type: ignore[union-attr]


def test_every_state_change_goes_through_transition_and_only_an_allowed_one(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        j.record([request_event(1), request_event(2)], 1)
        with pytest.raises(ValueError, match="through Journal.transition"):
            j.update(1, state=J.PROVED)
        for state in (J.PROVING, J.PROVED, J.SIGNED, J.SENT, J.FULFILLED):  # the happy path
            j.transition(1, state)
        done = j.get(1)
        assert done is not None and done.state is J.State.FULFILLED and done.done_at
        for illegal in (J.IGNORED, J.FAILED, J.SIGNED):  # settled (a reorg may reopen it)
            with pytest.raises(IllegalTransition, match="fulfilled -> .* not an allowed"):
                j.transition(1, illegal)
        j.transition(2, J.REJECTED, error="bad input")
        with pytest.raises(IllegalTransition, match="rejected -> proved"):
            j.transition(2, J.PROVED)
        with pytest.raises(ValueError, match="'bogus' is not a valid State"):
            j.transition(2, "bogus")  # type: ignore[arg-type]
        with pytest.raises(JournalError, match="request 9 is not in"):
            j.transition(9, J.SEEN)
        # An illegal change leaves the row as it was.
        assert j.get(2).state is J.State.REJECTED  # type: ignore[union-attr]


def test_the_journal_is_bound_to_one_oracle_and_one_relayer(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.bind(31337, "0xAbC")
        j.bind(31337, "0xabc")
        with pytest.raises(JournalError, match="pass another --db"):
            j.bind(31337, "0xdef")
        j.bind(31337, "0xabc", "0x" + "11" * 32)
        with pytest.raises(JournalError, match="genesis_hash 0x1111.*pass another --db"):
            j.bind(31337, "0xabc", "0x" + "22" * 32)  # a fresh chain with the same addresses
        with pytest.raises(JournalError, match="another relayer is using"):
            Journal(path)
        with Journal(path, readonly=True) as ro:  # relay-status reads alongside
            assert ro.meta("oracle") == "0xabc"
    with pytest.raises(JournalError, match="no relayer journal"):
        Journal(tmp_path / "missing.sqlite", readonly=True)


def test_request_felts_decode_to_the_input_or_a_reason(built: BuildResult) -> None:
    m = built.manifest
    values = [0.5, -0.25, 0.125, 1.0]
    scale = m.inputs[0].scale
    felts = [field.encode(v, scale) for v in values]
    assert sample_from_felts(m, felts) == [values]
    with pytest.raises(Rejected, match="wrong input count: the model takes 4 values, got 3"):
        sample_from_felts(m, felts[:3])
    with pytest.raises(Rejected, match="value out of range"):
        sample_from_felts(m, [2**200 + 1, *felts[1:]])
    with pytest.raises(Rejected, match="value out of range"):
        sample_from_felts(m, [field.FIELD_MODULUS, *felts[1:]])
    hashed = m.model_copy(update={"visibility": Visibility("hashed", "fixed", "public")})
    with pytest.raises(Rejected, match="hashed-input model"):
        sample_from_felts(hashed, felts)


def test_nonces_count_up_and_resync_from_the_chain() -> None:
    chain = iter([7, 9])
    nonces = NonceManager(lambda: next(chain))
    assert [nonces.take(), nonces.take()] == [7, 8]
    nonces.resync()
    assert nonces.take() == 9


def test_once_fulfils_exactly_once_rejects_malformed_and_resumes(
    env: Env, good: tuple[list[int], list[int]], built: BuildResult
) -> None:
    felts, outputs = good
    scale = built.manifest.inputs[0].scale
    first = env.request(felts)
    outside = env.request([field.encode(1e7, scale), *felts[1:]])  # beyond calibration
    inexact = env.request([2**200 + 1, *felts[1:]])  # a felt no real value at scale encodes to
    second = env.request(felts)

    assert finish(env.relay("--once")) == 0, (env.work / "relay.log").read_text()
    states = env.states()
    assert states == {
        first: J.FULFILLED,
        outside: J.REJECTED,
        inexact: J.REJECTED,
        second: J.FULFILLED,
    }
    env.assert_exactly_once([first, second], outputs)
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        reasons = {rid: j.get(rid).error for rid in (outside, inexact)}  # type: ignore[union-attr]
        done = j.get(first)
        assert done is not None and done.tx_hash and done.outputs == tuple(outputs)
        assert done.fulfiller == RELAYER_0
    assert "cannot run on this input" in str(reasons[outside])
    assert "value out of range" in str(reasons[inexact])
    assert not any(
        ANVIL_DEV_KEYS[0][2:] in line for line in (env.work / "relay.log").read_text().splitlines()
    )

    # A second run finds nothing to do and sends nothing.
    third = env.request(felts)
    assert finish(env.relay("--once")) == 0
    assert env.states()[third] == J.FULFILLED
    env.assert_exactly_once([first, second, third], outputs)
    assert sorted(env.fulfil_txs()[RELAYER_0]) == [first, second, third]

    status = subprocess.run(
        [str(EXE), "relay-status", "--db", "j.sqlite", "--json"],
        cwd=env.work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["counts"]["fulfilled"] == 3 and doc["counts"]["rejected"] == 2
    assert doc["latency_seconds"]["count"] == 3 and doc["prove_seconds"]["median"] > 0
    assert {e["request_id"] for e in doc["last_errors"]} == {outside, inexact}


@pytest.mark.slow
def test_kill9_during_a_proof_loses_nothing(env: Env, good: tuple[list[int], list[int]]) -> None:
    felts, outputs = good
    rids = [env.request(felts), env.request(felts)]
    proc = env.relay()
    wait_for("a proof in a worker", lambda: J.PROVING in env.states().values())
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    assert not set(env.states().values()) & {J.FULFILLED}  # killed before any fulfilment

    assert finish(env.relay("--once")) == 0
    assert env.states() == {rid: J.FULFILLED for rid in rids}
    env.assert_exactly_once(rids, outputs)
    assert any(r["event"] == "relayer.start" and r["requeued"] == 1 for r in relay_log(env))


@pytest.mark.slow
def test_kill9_after_sending_before_journaling_sends_nothing_twice(
    env: Env, good: tuple[list[int], list[int]]
) -> None:
    felts, outputs = good
    rid = env.request(felts)
    crashed = env.relay("--once", env={"ZKML_RELAYER_TEST_CRASH": "after-broadcast"})
    assert finish(crashed) == -signal.SIGKILL
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        entry = j.get(rid)
    # The journal holds the signed transaction but not that it was sent; the chain has it.
    assert entry is not None and entry.state == J.SIGNED and entry.tx_hash
    assert env.web3.eth.get_transaction_receipt(entry.tx_hash)["status"] == 1

    assert finish(env.relay("--once")) == 0
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        after = j.get(rid)
    assert after is not None and after.state == J.FULFILLED and after.tx_hash == entry.tx_hash
    env.assert_exactly_once([rid], outputs)
    assert env.fulfil_txs() == {RELAYER_0: [rid]}


@pytest.mark.slow
def test_two_relayers_racing_fulfil_each_request_once(
    env: Env, good: tuple[list[int], list[int]]
) -> None:
    from eth_account import Account

    felts, outputs = good
    rids = [env.request(felts), env.request(felts)]
    keystore = env.work / "key1.json"
    keystore.write_text(
        json.dumps(Account.encrypt(ANVIL_DEV_KEYS[1], "pw", kdf="pbkdf2", iterations=2))
    )
    a = env.relay("--once", db="a.sqlite", log="a.log")
    b = env.relay(
        "--once",
        "--keystore",
        str(keystore),
        db="b.sqlite",
        log="b.log",
        env={"ZKML_RELAYER_PASSPHRASE": "pw"},
    )
    assert finish(a) == 0 and finish(b) == 0
    env.assert_exactly_once(rids, outputs)
    mine = {J.FULFILLED, J.FULFILLED_BY_OTHER}
    sa, sb = env.states("a.sqlite"), env.states("b.sqlite")
    assert set(sa.values()) <= mine and set(sb.values()) <= mine, (sa, sb)
    for rid in rids:  # exactly one of them claims each request
        assert [sa[rid], sb[rid]].count(J.FULFILLED) == 1, (sa, sb)
    sent = env.fulfil_txs()
    assert set(sent) <= {RELAYER_0, RELAYER_1}


@pytest.mark.slow
def test_the_rpc_down_for_20_seconds_delays_but_loses_nothing(
    built: BuildResult, good: tuple[list[int], list[int]], tmp_path: Path
) -> None:
    felts, outputs = good
    port = free_port()
    state = tmp_path / "anvil-state.json"
    node = LocalNode.start(port=port, extra_args=("--dump-state", str(state)))
    env = start_env(node, port, built, tmp_path)
    proc = None
    try:
        first = env.request(felts)
        proc = env.relay()
        wait_for("a proof in a worker", lambda: J.PROVING in env.states().values())
        node.stop()  # Anvil dumps its state on SIGTERM
        down = time.monotonic()
        wait_for(
            "the relayer to notice",
            lambda: any(r["event"] == "rpc.unavailable" for r in relay_log(env)),
        )
        assert proc.poll() is None
        time.sleep(max(0.0, 20 - (time.monotonic() - down)))  # the outage itself, not a poll
        node = env.node = LocalNode.start(port=port, extra_args=("--load-state", str(state)))
        second = env.request(felts)
        wait_for(
            "both fulfilled",
            lambda: env.states() == {first: J.FULFILLED, second: J.FULFILLED},
            timeout=90,
        )
        assert any(r["event"] == "rpc.recovered" for r in relay_log(env))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        env.assert_exactly_once([first, second], outputs)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        node.stop()


@pytest.mark.slow
def test_sigterm_drains_in_flight_work_and_serves_metrics(
    env: Env, good: tuple[list[int], list[int]]
) -> None:
    felts, outputs = good
    rid = env.request(felts)
    port = free_port()
    proc = env.relay("--metrics-port", str(port), "--drain-timeout", "15")

    def scrape() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    wait_for("a proof in a worker", lambda: env.states().get(rid) == J.PROVING)
    assert "zkml_relayer_requests_seen_total 1.0" in scrape()
    proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    assert proc.wait(20) == 0
    assert time.monotonic() - start < 20
    assert env.states() == {rid: J.FULFILLED}  # the in-flight proof was finished and sent
    env.assert_exactly_once([rid], outputs)
    assert any(r["event"] == "relayer.draining" for r in relay_log(env))


def test_a_request_for_a_model_no_longer_served_is_ignored(
    built: BuildResult, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from zkml_oracle.relayer.phases import prove
    from zkml_oracle.relayer.service import Relayer, ServedModel
    from zkml_oracle.relayer.settings import RelayerSettings
    from zkml_oracle.relayer.signer import Signer

    served = "0x" + "cd" * 32
    oracle = SimpleNamespace(web3=SimpleNamespace(eth=SimpleNamespace(chain_id=31337)))
    with Journal(tmp_path / "j.sqlite") as j:
        j.record([request_event(1)], 1)  # journaled by an earlier run that served model 0xabab…
        relayer = Relayer(
            config=RelayerSettings(),
            oracle=oracle,  # type: ignore[arg-type]
            signer=Signer(None),
            models={served: ServedModel(served, built.build_dir, built.manifest)},
            backend=None,  # type: ignore[arg-type]
            journal=j,
        )
        prove.dispatch(relayer)
        entry = j.get(1)
    assert entry is not None and entry.state == J.IGNORED


# --- batching: --batch-size N proves up to N requests of one model with one proof ---


def test_an_older_journal_gains_the_batch_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE requests (request_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, "
        "input_felts TEXT NOT NULL, deadline INTEGER NOT NULL, fee TEXT NOT NULL, "
        "block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, state TEXT NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, proof BLOB, instances TEXT, outputs TEXT, "
        "nonce INTEGER, raw_tx BLOB, tx_hash TEXT, fulfiller TEXT, error TEXT, "
        "prove_seconds REAL, seen_at REAL NOT NULL, proved_at REAL, sent_at REAL, "
        "done_at REAL, updated_at REAL NOT NULL)"
    )
    old.execute(
        "INSERT INTO requests (request_id, model_id, input_felts, deadline, fee, block_number, "
        "log_index, state, proof, instances, seen_at, updated_at) "
        "VALUES ('7', '0xab', ?, 9, '0', 1, 0, 'proved', x'01', ?, 1, 1)",
        ('["1"]', '["2"]'),
    )
    old.commit()
    old.close()
    with Journal(path) as j:
        entry = j.get(7)
        assert entry is not None and entry.state == J.PROVED and entry.batch is None
        with j.atomic():  # a batch's rows change together
            j.update(7, batch="k", slot=0)
            j.record([request_event(8)], 2)
            j.transition(8, J.PROVED, batch="k", slot=1)
        assert [e.request_id for e in j.members("k")] == [7, 8]
        with pytest.raises(RuntimeError), j.atomic():
            j.update(8, slot=5)
            raise RuntimeError
        assert j.get(8).slot == 1  # type: ignore[union-attr]  # rolled back


def test_a_batch_size_beyond_the_circuit_is_refused(built: BuildResult) -> None:
    from zkml_oracle.relayer.service import RelayerError, ServedModel, check_batch_size

    models = {"0x01": ServedModel("0x01", built.build_dir, built.manifest)}
    check_batch_size(models, 1)
    with pytest.raises(RelayerError, match="--batch-size 2: model 0x01 .* proves 1 request"):
        check_batch_size(models, 2)


def _entries(env: Env) -> dict[int, J.Entry]:
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        return {e.request_id: e for e in j.all()}


def test_a_full_batch_is_settled_by_one_fulfill_batch(benv: Env, rows: Rows) -> None:
    rids = [benv.request(f) for f in rows.felts]
    assert finish(benv.relay("--once", "--batch-size", str(BATCH))) == 0, (
        benv.work / "relay.log"
    ).read_text()
    entries = _entries(benv)
    assert {rid: e.state for rid, e in entries.items()} == {rid: J.FULFILLED for rid in rids}
    [(who, tx_hash, ids, status)] = benv.fulfil_calls()
    assert (who, ids, status) == (RELAYER_0, rids, 1)  # slot i answers rids[i]
    assert {e.tx_hash for e in entries.values()} == {tx_hash}
    assert {e.batch for e in entries.values()} != {None} and len(
        {e.batch for e in entries.values()}
    ) == 1
    assert [entries[r].slot for r in rids] == list(range(BATCH))
    assert all(entries[r].outputs == tuple(rows.outputs[i]) for i, r in enumerate(rids))
    benv.assert_answered(dict(zip(rids, rows.outputs, strict=True)))
    receipt = benv.web3.eth.get_transaction_receipt(tx_hash)
    [done] = benv.contract.events.BatchFulfilled().process_receipt(receipt)
    assert (len(done["args"]["requestIds"]), done["args"]["skipped"]) == (BATCH, 0)
    with Journal(benv.work / "j.sqlite", readonly=True) as j:
        assert j.summary()["fulfil_transactions"] == 1


def test_a_batch_not_filled_in_max_wait_is_proved_as_it_is(benv: Env, rows: Rows) -> None:
    proc = benv.relay("--batch-size", str(BATCH), "--max-wait", "2")
    try:
        rids = [benv.request(f) for f in rows.felts[:2]]
        wait_for(
            "both fulfilled",
            lambda: benv.states() == {rid: J.FULFILLED for rid in rids},
            timeout=90,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    entries = _entries(benv)
    [(_, tx_hash, ids, _)] = benv.fulfil_calls()
    assert ids == rids and {e.tx_hash for e in entries.values()} == {tx_hash}
    [started] = [r for r in relay_log(benv) if r["event"] == "proof.started"]
    assert started["requests"] == rids
    waited = started["ts"] - min(e.seen_at for e in entries.values())
    assert 1.8 <= waited < 10, waited  # proved once the oldest had waited max-wait, not before
    benv.assert_answered(dict(zip(rids, rows.outputs[:2], strict=True)))


def test_kill9_between_proof_and_send_sends_the_journaled_proof_once(benv: Env, rows: Rows) -> None:
    rids = [benv.request(f) for f in rows.felts]
    crashed = benv.relay(
        "--once", "--batch-size", str(BATCH), env={"ZKML_RELAYER_TEST_CRASH": "after-proof"}
    )
    assert finish(crashed) == -signal.SIGKILL
    proved = _entries(benv)
    assert {e.state for e in proved.values()} == {J.PROVED} and not benv.fulfil_calls()
    wait_for("the killed relayer's workers to exit", lambda: not processes_in(benv.work), 10)

    assert finish(benv.relay("--once", "--batch-size", str(BATCH), log="restart.log")) == 0
    assert not any(r["event"] == "proof.started" for r in relay_log(benv, "restart.log"))
    entries = _entries(benv)
    assert {rid: e.state for rid, e in entries.items()} == {rid: J.FULFILLED for rid in rids}
    [(who, tx_hash, ids, status)] = benv.fulfil_calls()
    assert (who, ids, status) == (RELAYER_0, rids, 1)
    assert {e.tx_hash for e in entries.values()} == {tx_hash}
    assert {e.batch for e in entries.values()} == {e.batch for e in proved.values()}
    benv.assert_answered(dict(zip(rids, rows.outputs, strict=True)))


def test_a_request_lost_between_proof_and_send_keeps_its_slot_and_is_skipped(
    benv: Env, rows: Rows
) -> None:
    rids = [benv.request(f) for f in rows.felts]
    crashed = benv.relay(
        "--once", "--batch-size", str(BATCH), env={"ZKML_RELAYER_TEST_CRASH": "after-proof"}
    )
    assert finish(crashed) == -signal.SIGKILL
    proved = _entries(benv)
    assert {e.state for e in proved.values()} == {J.PROVED}
    assert len({e.batch for e in proved.values()}) == 1 and not benv.fulfil_calls()

    # Meanwhile the first request is answered by hand (slot 0 of its own proof), with the
    # relayer's own key: a fulfilment the relayer did not send is not counted as its own.
    lost = rids[0]
    tx = benv.contract.functions.fulfill(
        committed(benv.contract, lost), rows.proof, rows.instances
    ).transact({"from": RELAYER_0})
    assert benv.web3.eth.wait_for_transaction_receipt(tx)["status"] == 1

    assert finish(benv.relay("--once", "--batch-size", str(BATCH), log="restart.log")) == 0
    assert not any(r["event"] == "proof.started" for r in relay_log(benv, "restart.log"))
    entries = _entries(benv)
    assert entries[lost].state == J.FULFILLED_BY_OTHER and entries[lost].fulfiller == RELAYER_0
    assert all(entries[r].state == J.FULFILLED for r in rids[1:])
    # The same proof, sent once, with the lost request's slot kept and skipped by the oracle.
    mine = [c for c in benv.fulfil_calls() if c[0] == RELAYER_0 and c[1] != tx.to_0x_hex()]
    [(_, tx_hash, ids, status)] = mine
    assert (ids, status) == (rids, 1)
    assert {entries[r].tx_hash for r in rids[1:]} == {tx_hash}
    assert {entries[r].batch for r in rids} == {proved[lost].batch}
    receipt = benv.web3.eth.get_transaction_receipt(tx_hash)
    [skipped] = benv.contract.events.RequestSkipped().process_receipt(receipt)
    assert (skipped["args"]["requestId"], skipped["args"]["reason"]) == (lost, 0)
    answers = dict(zip(rids, rows.outputs, strict=True))
    benv.assert_answered(answers, by_hand=frozenset({tx.to_0x_hex()}))


def test_batch_size_is_checked_against_the_circuit_and_1_serves_a_batched_one(
    benv: Env, rows: Rows
) -> None:
    refused = benv.relay("--once", "--batch-size", str(BATCH + 1), log="refused.log")
    assert finish(refused) != 0
    message = (benv.work / "refused.log").read_text()
    assert f"--batch-size {BATCH + 1}: model {benv.model_id}" in message
    assert f"proves {BATCH} request(s) per proof" in message and "Traceback" not in message
    assert not benv.states()

    rid = benv.request(rows.felts[2])  # batch size 1 on a batched circuit: slot 0, padded
    assert finish(benv.relay("--once")) == 0
    [(who, _, ids, status)] = benv.fulfil_calls()
    assert (who, ids, status) == (RELAYER_0, [rid], 1)
    tx = benv.web3.eth.get_transaction(benv.fulfil_calls()[0][1])
    assert benv.contract.decode_function_input(tx["input"])[0].fn_name == "fulfill"
    benv.assert_answered({rid: rows.outputs[2]})


def test_a_request_fulfilled_by_another_while_the_batch_is_in_flight_is_skipped(
    benv: Env, rows: Rows
) -> None:
    rids = [benv.request(f) for f in rows.felts]
    benv.web3.provider.make_request("evm_setAutomine", [False])  # transactions wait in the pool
    proc = benv.relay("--once", "--batch-size", str(BATCH))
    try:
        wait_for(
            "the batch transaction in the pool",
            lambda: set(benv.states().values()) == {J.SENT},
            timeout=90,
        )
        # A rival answers the first request with a higher tip: mined first in the same block.
        lost = rids[0]
        rival = benv.contract.functions.fulfill(
            committed(benv.contract, lost), rows.proof, rows.instances
        ).transact({"from": RELAYER_1, "maxPriorityFeePerGas": 10**11, "maxFeePerGas": 2 * 10**11})
        benv.web3.provider.make_request("evm_mine", [])
        benv.web3.provider.make_request("evm_setAutomine", [True])
        assert finish(proc) == 0, (benv.work / "relay.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert benv.web3.eth.get_transaction_receipt(rival)["status"] == 1
    entries = _entries(benv)
    assert entries[lost].state == J.FULFILLED_BY_OTHER and entries[lost].fulfiller == RELAYER_1
    assert all(entries[r].state == J.FULFILLED for r in rids[1:])
    [(_, tx_hash, ids, status)] = [c for c in benv.fulfil_calls() if c[0] == RELAYER_0]
    assert (ids, status) == (rids, 1)  # not reverted: the oracle skipped the lost slot
    receipt = benv.web3.eth.get_transaction_receipt(tx_hash)
    assert receipt["blockNumber"] == benv.web3.eth.get_transaction_receipt(rival)["blockNumber"]
    [done] = benv.contract.events.BatchFulfilled().process_receipt(receipt)
    assert (len(done["args"]["requestIds"]), done["args"]["skipped"]) == (BATCH - 1, 1)
    benv.assert_answered(dict(zip(rids, rows.outputs, strict=True)))
    assert not any(r["event"] == "request.retry" for r in relay_log(benv))


def test_a_batch_with_an_input_the_circuit_cannot_run_names_that_request(
    batch_built: BuildResult, example: dict[str, Path]
) -> None:
    from zkml_oracle.relayer.backend import ProofJob, prove_job

    good = [calibration_rows(example)[0]]
    bad = [[1e7, *good[0][1:]]]  # far beyond the calibrated range
    job = ProofJob((11, 12, 13), "0x01", str(batch_built.build_dir), [good, bad, good])
    outcome = prove_job(job)  # witnesses only: no proof is made
    assert not outcome.ok and not outcome.proof
    assert [rid for rid, _ in outcome.rejected] == [12]
    assert "cannot run on this input" in outcome.rejected[0][1]
