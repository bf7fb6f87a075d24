"""The relayer soak (issue 15): many requests through a hostile chain, nothing lost, nothing
twice, memory flat.

A real Anvil mining a block every second; ``zkml-oracle relay --batch-size 64
--confirmations 2`` behind the fault proxy (:mod:`zkml_oracle.testing.faults`) that fails
1 % of all JSON-RPC calls at random (HTTP 502, dropped connections, malformed bodies); a
reorg of 1-2 blocks every 50 blocks (``evm_snapshot`` / ``evm_revert``; the requester's
orphaned transactions are sent again, as a real chain's mempool would re-include them); one
``kill -9`` of the relayer (restarted at once); one funding gap (the relayer's balance at 0
for 30 s). Requests arrive spread over time (Poisson, seeded). At the end: every request on
the canonical chain fulfilled exactly once, none pending, and the relayer's resident memory
sampled over its run.

    nice .venv/bin/python benchmarks/relayer_soak.py [--requests 500] [--spread 0.8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scratch import scratch

from zkml_oracle.testing.faults import FaultProxy, rpc
from zkml_oracle.testing.relay import relay_argv

REQUESTER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
RELAYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BATCH = 64


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Soak:
    def __init__(self, build_dir: Path, work: Path, seed: int) -> None:
        from eth_account import Account
        from web3 import Web3

        from zkml_oracle.chain import ChainOptions, LocalNode, connect, sender
        from zkml_oracle.chain.contracts import oracle as oracle_artifact
        from zkml_oracle.chain.deployments import DeploymentStore
        from zkml_oracle.chain.oracle import deploy_and_register

        self.work = work
        self.build_dir = build_dir
        self.node = LocalNode.start(extra_args=("--block-time", "1"))
        try:
            with connect(ChainOptions(rpc_url=self.node.url)) as chain:
                deployed = deploy_and_register(
                    chain,
                    build_dir,
                    sender(chain, None),
                    store=DeploymentStore(work / "deployments"),
                )
        except BaseException:
            self.node.stop()
            raise
        self.model_id = deployed.model_id
        self.web3 = Web3(Web3.HTTPProvider(self.node.url))
        self.contract = self.web3.eth.contract(address=deployed.oracle, abi=oracle_artifact().abi)
        self.account = Account.from_key(REQUESTER_KEY)
        self.nonce = self.web3.eth.get_transaction_count(self.account.address)
        self.raw: list[tuple[int, bytes, str]] = []  # (nonce, raw, hash) of every request
        self.proxy = FaultProxy(self.node.url, error_rate=0.01, seed=seed)
        self.relayer: subprocess.Popen[bytes] | None = None
        self.log = open(work / "relay.log", "ab")  # noqa: SIM115

    def relay(self) -> None:
        self.relayer = subprocess.Popen(
            relay_argv(
                self.build_dir,
                self.proxy.url,
                self.work,
                "--batch-size",
                str(BATCH),
                "--max-wait",
                "5",
                "--confirmations",
                "2",
                poll_interval=0.3,
            ),
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )

    def request(self, felts: list[int]) -> None:
        """Sent, not waited for (blocks come every second)."""
        now = int(self.web3.eth.get_block("latest")["timestamp"])
        tx = self.contract.functions.requestInference(
            self.model_id, felts, "0x" + "00" * 20, 0, now + 7200
        ).build_transaction({"from": self.account.address, "nonce": self.nonce, "gas": 400_000})
        signed = self.account.sign_transaction(tx)
        self.raw.append((self.nonce, bytes(signed.raw_transaction), signed.hash.hex()))
        self.web3.eth.send_raw_transaction(signed.raw_transaction)
        self.nonce += 1

    def resend_orphaned(self) -> int:
        """After a reorg: the requester's transactions that are no longer mined, again, in
        nonce order (a real chain puts them back in its mempool)."""
        mined = self.web3.eth.get_transaction_count(self.account.address)
        again = 0
        for nonce, raw, _ in self.raw:
            if nonce >= mined:
                try:
                    self.web3.eth.send_raw_transaction(raw)
                    again += 1
                except Exception as e:  # still in the pool, or mined meanwhile
                    message = str(e).lower()
                    if "already" not in message and "nonce too low" not in message:
                        raise
        return again

    def tally(self) -> dict[str, int]:
        event = self.contract.events.InferenceRequested()
        requested = [int(r["args"]["requestId"]) for r in event.get_logs(from_block=0)]
        from zkml_oracle.chain.oracle import fulfilled_by_request

        fulfilled = {rid: len(got) for rid, got in fulfilled_by_request(self.contract).items()}
        pending = sum(
            1 for rid in requested if self.contract.functions.requestStatus(rid).call() == 1
        )
        return {
            "made": len(requested),
            "fulfilled": sum(1 for rid in requested if rid in fulfilled),
            "duplicated": sum(1 for n in fulfilled.values() if n > 1),
            "lost": pending,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--spread", type=float, default=0.5, help="mean seconds between requests")
    parser.add_argument("--reorg-every", type=int, default=50, help="blocks between reorgs")
    parser.add_argument("--timeout", type=float, default=5400, help="seconds, at most")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--build", type=Path, help="an existing build made with --batch 64")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("APE_DATA_FOLDER", str(scratch("zkml-soak-ape-")))
    from zkml_oracle import field
    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.relayer.journal import Journal
    from zkml_oracle.types import Manifest

    work = scratch("zkml-soak-")
    files = write_credit_mlp(work / "model")
    build_dir = (
        args.build
        or build(
            files["model"],
            files["calibration"],
            work / "build",
            BuildOptions(dev_srs=True, batch=BATCH),
        ).build_dir
    )
    manifest = Manifest.load(build_dir)
    rows = json.loads(Path(files["calibration"]).read_text())["input_data"][0]
    width = manifest.inputs[0].size
    samples = [rows[i : i + width] for i in range(0, len(rows) - width + 1, width)][:32]
    felts = [[field.encode(v, manifest.inputs[0].scale) for v in s] for s in samples]

    rng = random.Random(args.seed)
    soak = Soak(build_dir, work, args.seed)
    soak.relay()
    started = time.monotonic()
    next_at = started
    reorgs: list[dict[str, int]] = []
    next_reorg = soak.web3.eth.block_number + args.reorg_every
    snapshot: tuple[str, int, int] | None = None
    kill_at, gap_at = int(args.requests * 0.4), int(args.requests * 0.6)
    killed = gap_started = gap_ended = None
    memory: list[tuple[float, float]] = []
    last_sample = 0.0
    balance = soak.web3.eth.get_balance(RELAYER)
    result: dict[str, Any] = {}
    try:
        while True:
            now = time.monotonic()
            if now - started > args.timeout:
                result["timed_out"] = True
                break
            sent = len(soak.raw)
            if sent < args.requests and now >= next_at:
                soak.request(felts[sent % len(felts)])
                next_at = now + rng.expovariate(1 / args.spread)
            head = soak.web3.eth.block_number
            if snapshot is None and head >= next_reorg:
                snapshot = (rpc(soak.node.url, "evm_snapshot"), head, rng.choice((1, 2)))
            elif snapshot is not None and head >= snapshot[1] + snapshot[2]:
                rpc(soak.node.url, "evm_revert", snapshot[0])
                again = soak.resend_orphaned()
                reorgs.append({"at": snapshot[1], "depth": snapshot[2], "resent": again})
                next_reorg = snapshot[1] + args.reorg_every
                snapshot = None
            if killed is None and sent >= kill_at:
                assert soak.relayer is not None
                soak.relayer.send_signal(signal.SIGKILL)
                soak.relayer.wait()
                killed = now - started
                soak.relay()
            if gap_started is None and sent >= gap_at:
                rpc(soak.node.url, "anvil_setBalance", RELAYER, "0x0")
                gap_started = now
            if gap_started is not None and gap_ended is None and now - gap_started > 30:
                rpc(soak.node.url, "anvil_setBalance", RELAYER, hex(balance))
                gap_ended = now
            if now - last_sample > 5 and soak.relayer is not None:
                mb = rss_mb(soak.relayer.pid)
                if mb is not None and killed is not None:  # the restarted relayer's run
                    memory.append((now - started, mb))
                last_sample = now
            if sent >= args.requests and gap_ended is not None and snapshot is None:
                t = soak.tally()
                if t["made"] >= args.requests and t["lost"] == 0:
                    break
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        soak.proxy.clear()
        result.update(soak.tally())
    finally:
        if soak.relayer is not None and soak.relayer.poll() is None:
            soak.relayer.send_signal(signal.SIGTERM)
            soak.relayer.wait(60)
        soak.proxy.close()
        soak.node.stop()
    with Journal(work / "j.sqlite", readonly=True) as journal:
        summary = journal.summary()
    quarter = max(1, len(memory) // 4)
    early = statistics.median(m for _, m in memory[:quarter]) if memory else None
    late = statistics.median(m for _, m in memory[-quarter:]) if memory else None
    events: dict[str, int] = {}
    for line in (work / "relay.log").read_text().splitlines():
        if line.startswith("{"):
            name = json.loads(line)["event"]
            events[name] = events.get(name, 0) + 1
    result.update(
        {
            "requests_sent": len(soak.raw),
            "seconds": round(elapsed, 1),
            "reorgs": len(reorgs),
            "reorg_depths": [r["depth"] for r in reorgs],
            "rpc_faults_injected": sum(soak.proxy.injected.values()),
            "rpc_calls": sum(soak.proxy.calls.values()),
            "kill9_at_s": round(killed or 0, 1),
            "funding_gap_s": round((gap_ended or 0) - (gap_started or 0), 1),
            "journal_counts": {k: v for k, v in summary["counts"].items() if v},
            "fulfil_transactions": summary["fulfil_transactions"],
            "deep_reorgs_reported": summary["deep_reorgs"],
            "rss_mb_early_median": early,
            "rss_mb_late_median": late,
            "rss_late_over_early": (late / early) if early and late else None,
            "events": {k: events[k] for k in sorted(events) if not k.startswith("request.")},
            "work": str(work),
        }
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")
    ok = result.get("lost") == 0 and result.get("duplicated") == 0
    return 0 if ok and not result.get("timed_out") else 1


if __name__ == "__main__":
    sys.exit(main())
