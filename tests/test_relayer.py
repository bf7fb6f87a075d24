"""The relayer (zkml_oracle.relayer): journal unit tests, and fault tests on real Anvil nodes
started here, each asserting that every request ends fulfilled exactly once with the outputs
of the genuine proof.

The fault tests run ``zkml-oracle relay`` as a child process, as an operator does, and crash
it with SIGKILL; they poll the journal and the chain with deadlines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from zkml_oracle import field
from zkml_oracle.chain import ChainOptions, LocalNode, connect, free_port, sender
from zkml_oracle.deployments import DeploymentStore
from zkml_oracle.relayer import journal as J
from zkml_oracle.relayer.inputs import Rejected, sample_from_felts
from zkml_oracle.relayer.journal import Journal, JournalError, RequestEvent
from zkml_oracle.relayer.signer import ANVIL_DEV_KEYS, NonceManager
from zkml_oracle.types import BuildResult, ProofResult, Visibility

EXE = Path(sys.executable).parent / "zkml-oracle"
#: Anvil's dev key #2 makes the requests, so the relayer's account (dev key #0) is its own.
REQUESTER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
RELAYER_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RELAYER_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


# --- the journal, alone ---


def _event(rid: int, block: int = 1) -> RequestEvent:
    return RequestEvent(rid, "0x" + "ab" * 32, (1, 2, 3, 4), 10**10, 0, block, rid)


def test_the_journal_records_once_and_keeps_the_cursor(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j:
        assert j.cursor() is None
        assert j.record([_event(1), _event(2)], 5) == 2
        assert j.record([_event(2), _event(3, block=6)], 6) == 1  # a known request stays as is
        assert j.cursor() == 6
        assert [e.request_id for e in j.in_state(J.SEEN)] == [1, 2, 3]
        j.update(1, state=J.PROVING, attempts=1)
        j.update(2, state=J.PROVED, proof=b"\x01\x02", instances=[5, field.FIELD_MODULUS - 1])
    with Journal(tmp_path / "j.sqlite") as j:  # reopened, as after a crash
        assert j.resume() == 1
        one, two = j.get(1), j.get(2)
        assert one is not None and one.state == J.SEEN and one.attempts == 1
        assert two is not None and two.proof == b"\x01\x02"
        assert two.instances == (5, field.FIELD_MODULUS - 1)
        j.finish(3, J.REJECTED, error="bad input")
        summary = j.summary()
        assert summary["counts"]["seen"] == 1 and summary["counts"]["rejected"] == 1
        assert summary["last_errors"][0]["error"] == "bad input"
        with pytest.raises(ValueError, match="not journal columns"):
            j.update(1, colour="red")
        with pytest.raises(ValueError, match="not a final state"):
            j.finish(1, J.SENT)


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
    hashed = dataclasses.replace(m, visibility=Visibility("hashed", "fixed", "public"))
    with pytest.raises(Rejected, match="hashed-input model"):
        sample_from_felts(hashed, felts)


def test_nonces_count_up_and_resync_from_the_chain() -> None:
    chain = iter([7, 9])
    nonces = NonceManager(lambda: next(chain))
    assert [nonces.take(), nonces.take()] == [7, 8]
    nonces.resync()
    assert nonces.take() == 9


# --- on a real Anvil ---


@dataclass
class Env:
    node: LocalNode
    port: int
    work: Path
    build_dir: Path
    model_id: str
    oracle: str
    web3: Any
    contract: Any

    def relay(
        self,
        *args: str,
        db: str = "j.sqlite",
        env: dict[str, str] | None = None,
        log: str = "relay.log",
    ) -> subprocess.Popen[bytes]:
        out = open(self.work / log, "ab")  # noqa: SIM115
        return subprocess.Popen(
            [
                str(EXE),
                "relay",
                "--model",
                str(self.build_dir),
                "--rpc-url",
                self.node.url,
                "--deployments",
                str(self.work / "deployments"),
                "--db",
                str(self.work / db),
                "--poll-interval",
                "0.2",
                *args,
            ],
            cwd=self.work,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )

    def request(self, felts: list[int]) -> int:
        from eth_account import Account

        account = Account.from_key(REQUESTER_KEY)
        now = int(self.web3.eth.get_block("latest")["timestamp"])
        fn = self.contract.functions.requestInference(
            self.model_id, felts, "0x" + "00" * 20, 0, now + 3600
        )
        tx = fn.build_transaction(
            {
                "from": account.address,
                "nonce": self.web3.eth.get_transaction_count(account.address, "pending"),
            }
        )
        raw = account.sign_transaction(tx).raw_transaction
        receipt = self.web3.eth.wait_for_transaction_receipt(
            self.web3.eth.send_raw_transaction(raw)
        )
        assert receipt["status"] == 1
        logs = self.contract.events.InferenceRequested().process_receipt(receipt)
        return int(logs[0]["args"]["requestId"])

    def states(self, db: str = "j.sqlite") -> dict[int, str]:
        path = self.work / db
        if not path.is_file():
            return {}
        try:
            with Journal(path, readonly=True) as j:
                return {e.request_id: e.state for e in j.all()}
        except Exception:
            return {}

    def fulfil_txs(self) -> dict[str, list[int]]:
        """Every mined fulfill transaction to the oracle: sender → request ids (reverted too)."""
        sent: dict[str, list[int]] = {}
        for n in range(self.web3.eth.block_number + 1):
            for tx in self.web3.eth.get_block(n, full_transactions=True)["transactions"]:
                if tx["to"] and tx["to"].lower() == self.oracle.lower():
                    fn, args = self.contract.decode_function_input(tx["input"])
                    if fn.fn_name == "fulfill":
                        sent.setdefault(tx["from"], []).append(int(args["requestId"]))
        return sent

    def assert_exactly_once(self, rids: list[int], outputs: list[int]) -> None:
        event = self.contract.events.RequestFulfilled()
        for rid in rids:
            logs = event.get_logs(from_block=0, argument_filters={"requestId": rid})
            assert len(logs) == 1, f"request {rid} fulfilled {len(logs)} times"
            assert list(logs[0]["args"]["outputs"]) == outputs
            assert self.contract.functions.getRequest(rid).call()[5] == 2  # Fulfilled
        for who, ids in self.fulfil_txs().items():
            assert len(ids) == len(set(ids)), f"{who} sent fulfill twice for a request: {ids}"


def _deploy(url: str, build_dir: Path, work: Path) -> tuple[str, str]:
    from zkml_oracle.oracle import deploy_and_register

    store = DeploymentStore(work / "deployments")
    with connect(ChainOptions(rpc_url=url)) as chain:
        deployed = deploy_and_register(chain, build_dir, sender(chain, None), store=store)
    return deployed.oracle, deployed.model_id


def _env(node: LocalNode, port: int, built: BuildResult, work: Path) -> Env:
    from web3 import Web3

    from zkml_oracle.contracts import oracle as oracle_artifact

    oracle, model_id = _deploy(node.url, built.build_dir, work)
    web3 = Web3(Web3.HTTPProvider(node.url))
    contract = web3.eth.contract(address=oracle, abi=oracle_artifact().abi)
    return Env(node, port, work, built.build_dir, model_id, oracle, web3, contract)


@pytest.fixture
def env(built: BuildResult, tmp_path: Path) -> Iterator[Env]:
    port = free_port()
    node = LocalNode.start(port=port)
    yield _env(node, port, built, tmp_path)
    node.stop()


@pytest.fixture(scope="module")
def good(
    built: BuildResult, proof: ProofResult, example: dict[str, Path]
) -> tuple[list[int], list[int]]:
    """The example input's felts and the signed outputs its genuine proof carries."""
    m = built.manifest
    values = json.loads(example["input"].read_text())["input_data"][0]
    felts = [field.encode(v, m.inputs[0].scale) for v in values]
    lay = m.layout
    outputs = [field.felt_to_int(f) for f in proof.instances[lay.outputs.offset : lay.outputs.end]]
    return felts, outputs


def _finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def _log(env: Env, name: str = "relay.log") -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (env.work / name).read_text().splitlines()
        if line.startswith("{")
    ]


def test_once_fulfils_exactly_once_rejects_malformed_and_resumes(
    env: Env, good: tuple[list[int], list[int]], built: BuildResult
) -> None:
    felts, outputs = good
    scale = built.manifest.inputs[0].scale
    first = env.request(felts)
    outside = env.request([field.encode(1e7, scale), *felts[1:]])  # beyond calibration
    inexact = env.request([2**200 + 1, *felts[1:]])  # a felt no real value at scale encodes to
    second = env.request(felts)

    assert _finish(env.relay("--once")) == 0, (env.work / "relay.log").read_text()
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
    assert _finish(env.relay("--once")) == 0
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
    _wait_for("a proof in a worker", lambda: J.PROVING in env.states().values())
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    assert not set(env.states().values()) & {J.FULFILLED}  # killed before any fulfilment

    assert _finish(env.relay("--once")) == 0
    assert env.states() == {rid: J.FULFILLED for rid in rids}
    env.assert_exactly_once(rids, outputs)
    assert any(r["event"] == "relayer.start" and r["requeued"] == 1 for r in _log(env))


@pytest.mark.slow
def test_kill9_after_sending_before_journaling_sends_nothing_twice(
    env: Env, good: tuple[list[int], list[int]]
) -> None:
    felts, outputs = good
    rid = env.request(felts)
    crashed = env.relay("--once", env={"ZKML_RELAYER_TEST_CRASH": "after-broadcast"})
    assert _finish(crashed) == -signal.SIGKILL
    with Journal(env.work / "j.sqlite", readonly=True) as j:
        entry = j.get(rid)
    # The journal holds the signed transaction but not that it was sent; the chain has it.
    assert entry is not None and entry.state == J.SIGNED and entry.tx_hash
    assert env.web3.eth.get_transaction_receipt(entry.tx_hash)["status"] == 1

    assert _finish(env.relay("--once")) == 0
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
    assert _finish(a) == 0 and _finish(b) == 0
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
    env = _env(node, port, built, tmp_path)
    proc = None
    try:
        first = env.request(felts)
        proc = env.relay()
        _wait_for("a proof in a worker", lambda: J.PROVING in env.states().values())
        node.stop()  # Anvil dumps its state on SIGTERM
        down = time.monotonic()
        _wait_for(
            "the relayer to notice", lambda: any(r["event"] == "rpc.unavailable" for r in _log(env))
        )
        assert proc.poll() is None
        time.sleep(max(0.0, 20 - (time.monotonic() - down)))  # the outage itself, not a poll
        node = env.node = LocalNode.start(port=port, extra_args=("--load-state", str(state)))
        second = env.request(felts)
        _wait_for(
            "both fulfilled",
            lambda: env.states() == {first: J.FULFILLED, second: J.FULFILLED},
            timeout=90,
        )
        assert any(r["event"] == "rpc.recovered" for r in _log(env))
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

    _wait_for("a proof in a worker", lambda: env.states().get(rid) == J.PROVING)
    assert "zkml_relayer_requests_seen_total 1.0" in scrape()
    proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    assert proc.wait(20) == 0
    assert time.monotonic() - start < 20
    assert env.states() == {rid: J.FULFILLED}  # the in-flight proof was finished and sent
    env.assert_exactly_once([rid], outputs)
    assert any(r["event"] == "relayer.draining" for r in _log(env))


def test_a_request_for_a_model_no_longer_served_is_rejected(
    built: BuildResult, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from zkml_oracle.relayer.service import Relayer, RelayerConfig, ServedModel
    from zkml_oracle.relayer.signer import Signer

    served = "0x" + "cd" * 32
    oracle = SimpleNamespace(web3=SimpleNamespace(eth=SimpleNamespace(chain_id=31337)))
    with Journal(tmp_path / "j.sqlite") as j:
        j.record([_event(1)], 1)  # journaled by an earlier run that served model 0xabab…
        relayer = Relayer(
            config=RelayerConfig(),
            oracle=oracle,  # type: ignore[arg-type]
            signer=Signer(None),
            models={served: ServedModel(served, built.build_dir, built.manifest)},
            backend=None,  # type: ignore[arg-type]
            journal=j,
        )
        relayer._dispatch()
        entry = j.get(1)
    assert entry is not None and entry.state == J.REJECTED
    assert entry.error is not None and entry.error.startswith("unknown model 0xabab")
