"""What the relayer's tests share: an Anvil with the oracle deployed and a model registered
(:class:`Env`), which starts ``zkml-oracle relay`` as an operator does, and waits with deadlines.
The fixtures built on it are in ``tests/relayer/conftest.py``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from zkml_oracle.chain import ChainOptions, LocalNode, connect, sender
from zkml_oracle.chain.deployments import DeploymentStore
from zkml_oracle.chain.oracle import RequestStatus, fulfilled_by_request
from zkml_oracle.relayer.journal import Journal, RequestEvent
from zkml_oracle.testing.relay import EXE as EXE
from zkml_oracle.testing.relay import relay_argv
from zkml_oracle.types import BuildResult

#: Anvil's dev key #2 makes the requests, so the relayer's account (dev key #0) is its own.
REQUESTER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
RELAYER_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RELAYER_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def request_event(rid: int, block: int = 1) -> RequestEvent:
    return RequestEvent(rid, "0x" + "ab" * 32, (1, 2, 3, 4), 10**10, 0, block, rid)


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
    #: Where the relayer connects (a fault proxy in front of the node), if not the node.
    rpc_url: str | None = None
    #: Every relayer started here: :meth:`stop` kills those a failed test left running.
    relayers: list[subprocess.Popen[bytes]] = dc_field(default_factory=list)

    def stop(self) -> None:
        """The relayers still running (a test that failed before it stopped them) and the node."""
        for proc in self.relayers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.node.stop()

    def relay(
        self,
        *args: str,
        db: str = "j.sqlite",
        env: dict[str, str] | None = None,
        log: str = "relay.log",
    ) -> subprocess.Popen[bytes]:
        out = open(self.work / log, "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            relay_argv(self.build_dir, self.rpc_url or self.node.url, self.work, *args, db=db),
            cwd=self.work,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
        self.relayers.append(proc)
        return proc

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

    def fulfil_calls(self) -> list[tuple[str, str, list[int], int]]:
        """Every mined fulfill/fulfillBatch transaction to the oracle (reverted too): sender,
        hash, request ids, receipt status."""
        calls = []
        for n in range(self.web3.eth.block_number + 1):
            for tx in self.web3.eth.get_block(n, full_transactions=True)["transactions"]:
                if tx["to"] and tx["to"].lower() == self.oracle.lower():
                    fn, args = self.contract.decode_function_input(tx["input"])
                    if fn.fn_name in ("fulfill", "fulfillBatch"):
                        batch = fn.fn_name == "fulfillBatch"
                        ids = [r["id"] for r in (args["requests"] if batch else [args["request"]])]
                        status = self.web3.eth.get_transaction_receipt(tx["hash"])["status"]
                        calls.append(
                            (tx["from"], "0x" + tx["hash"].hex().removeprefix("0x"), ids, status)
                        )
        return calls

    def fulfil_txs(self, by_hand: frozenset[str] = frozenset()) -> dict[str, list[int]]:
        """Every mined fulfil transaction to the oracle but those ``by_hand`` (hashes): sender
        → request ids (reverted too)."""
        sent: dict[str, list[int]] = {}
        for who, tx_hash, ids, _ in self.fulfil_calls():
            if tx_hash not in by_hand:
                sent.setdefault(who, []).extend(int(i) for i in ids)
        return sent

    def assert_answered(
        self, answers: dict[int, list[int]], by_hand: frozenset[str] = frozenset()
    ) -> None:
        """Each request fulfilled exactly once, with these outputs; no sender repeats a request
        (transactions ``by_hand`` aside)."""
        found = fulfilled_by_request(self.contract)
        for rid, outputs in answers.items():
            got = found.get(rid, [])
            assert len(got) == 1, f"request {rid} fulfilled {len(got)} times"
            assert list(got[0]) == outputs, rid
            assert self.contract.functions.requestStatus(rid).call() == RequestStatus.FULFILLED
        for who, ids in self.fulfil_txs(by_hand).items():
            assert len(ids) == len(set(ids)), f"{who} sent a request twice: {ids}"

    def assert_exactly_once(self, rids: list[int], outputs: list[int]) -> None:
        """:meth:`assert_answered`, every request with the same outputs."""
        self.assert_answered(dict.fromkeys(rids, outputs))


def deploy_oracle(url: str, build_dir: Path, work: Path) -> tuple[str, str]:
    from zkml_oracle.chain.oracle import deploy_and_register

    store = DeploymentStore(work / "deployments")
    with connect(ChainOptions(rpc_url=url)) as chain:
        deployed = deploy_and_register(chain, build_dir, sender(chain, None), store=store)
    return deployed.oracle, deployed.model_id


def start_env(node: LocalNode, port: int, built: BuildResult, work: Path) -> Env:
    from web3 import Web3

    from zkml_oracle.chain.contracts import oracle as oracle_artifact

    oracle, model_id = deploy_oracle(node.url, built.build_dir, work)
    web3 = Web3(Web3.HTTPProvider(node.url))
    contract = web3.eth.contract(address=oracle, abi=oracle_artifact().abi)
    return Env(node, port, work, built.build_dir, model_id, oracle, web3, contract)


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` (a relayer's, its workers')."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def relay_log(env: Env, name: str = "relay.log") -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (env.work / name).read_text().splitlines()
        if line.startswith("{")
    ]


@dataclass(frozen=True)
class Rows:
    """BATCH calibration rows: their felts, and the outputs a reference proof gives each."""

    felts: list[list[int]]
    outputs: list[list[int]]
    proof: bytes
    instances: list[int]
