"""The relayer end to end on a local Anvil: request → fulfilment latency and queue throughput.

Goals (issue 6): the median latency from a request being mined to its fulfilment being mined is
at most the bare proving time of the same model + 2 s; throughput is reported for 20 queued
requests with ``--workers`` 1 and 2. The relayer runs as ``zkml-oracle relay``, a child
process, as an operator runs it. Usage:

    .venv/bin/python benchmarks/relayer.py [--rounds 5] [--queue 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_SLACK = 2.0
REQUESTER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
EXE = Path(sys.executable).parent / "zkml-oracle"


class Chain:
    """A fresh Anvil with the oracle deployed and the model registered."""

    def __init__(self, build_dir: Path, work: Path) -> None:
        from web3 import Web3

        from zkml_oracle.chain import ChainOptions, LocalNode, connect, sender
        from zkml_oracle.contracts import oracle as oracle_artifact
        from zkml_oracle.deployments import DeploymentStore
        from zkml_oracle.oracle import deploy_and_register

        self.work = work
        self.build_dir = build_dir
        self.node = LocalNode.start()
        with connect(ChainOptions(rpc_url=self.node.url)) as chain:
            deployed = deploy_and_register(
                chain, build_dir, sender(chain, None), store=DeploymentStore(work / "deployments")
            )
        self.model_id = deployed.model_id
        self.web3 = Web3(Web3.HTTPProvider(self.node.url))
        self.contract = self.web3.eth.contract(address=deployed.oracle, abi=oracle_artifact().abi)

    def request(self, felts: list[int]) -> tuple[int, float]:
        """A request; its id and when its transaction was mined."""
        from eth_account import Account

        account = Account.from_key(REQUESTER_KEY)
        now = int(self.web3.eth.get_block("latest")["timestamp"])
        tx = self.contract.functions.requestInference(
            self.model_id, felts, "0x" + "00" * 20, 0, now + 3600
        ).build_transaction(
            {
                "from": account.address,
                "nonce": self.web3.eth.get_transaction_count(account.address, "pending"),
            }
        )
        sent = self.web3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = self.web3.eth.wait_for_transaction_receipt(sent, poll_latency=0.02)
        mined = time.perf_counter()
        [log] = self.contract.events.InferenceRequested().process_receipt(receipt)
        return int(log["args"]["requestId"]), mined

    def fulfilled(self, rid: int) -> bool:
        return int(self.contract.functions.getRequest(rid).call()[5]) == 2

    def relay(self, *args: str, db: str) -> subprocess.Popen[bytes]:
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
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / f"{db}.log", "wb"),
        )


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="latency samples")
    parser.add_argument(
        "--queue", type=int, default=20, help="requests queued for throughput (0: skip)"
    )
    parser.add_argument("--build", type=Path, help="an existing build directory (public input)")
    parser.add_argument("--input", type=Path, help="input file for --build")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("APE_DATA_FOLDER", tempfile.mkdtemp(prefix="zkml-bench-ape-"))
    from zkml_oracle import field
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.examples import write_credit_mlp
    from zkml_oracle.prover import prove
    from zkml_oracle.types import Manifest

    work = Path(tempfile.mkdtemp(prefix="zkml-bench-relayer-"))
    if args.build:
        build_dir, input_file = args.build.resolve(), args.input
    else:
        files = write_credit_mlp(work / "model")
        build_dir = build(
            files["model"], files["calibration"], work / "build", BuildOptions(dev_srs=True)
        ).build_dir
        input_file = files["input"]
    manifest = Manifest.load(build_dir)
    values = json.loads(Path(input_file).read_text())["input_data"]
    felts = [
        field.encode(v, spec.scale)
        for tensor, spec in zip(values, manifest.inputs, strict=True)
        for v in tensor
    ]

    # Latency: one request at a time to a running relayer.
    chain = Chain(build_dir, work / "latency")
    relayer = chain.relay("--workers", "1", db="latency.sqlite")
    latencies: list[float] = []
    bare: list[float] = []
    try:
        warm, _ = chain.request(felts)  # the first one also pays for the workers' start-up
        _wait(lambda: chain.fulfilled(warm), 300, "the warm-up request")
        for i in range(args.rounds):
            # Bare proving time, alternating with the relayed requests so both see the same
            # machine: the prover in this process, same model, same input.
            start = time.perf_counter()
            prove(build_dir, input_file, work / f"bare-{i}.json")
            bare.append(time.perf_counter() - start)
            rid, mined = chain.request(felts)
            _wait(lambda rid=rid: chain.fulfilled(rid), 300, f"request {rid}")
            latencies.append(time.perf_counter() - mined)
    finally:
        relayer.terminate()
        relayer.wait(30)
        chain.node.stop()

    # Throughput: `--queue` requests waiting, then `relay --once`, per worker count.
    throughput: dict[str, Any] = {}
    for workers in (1, 2) if args.queue else ():
        chain = Chain(build_dir, work / f"queue-{workers}")
        rids = [chain.request(felts)[0] for _ in range(args.queue)]
        start = time.perf_counter()
        proc = chain.relay("--once", "--workers", str(workers), db=f"queue-{workers}.sqlite")
        if proc.wait(1800) != 0:
            raise SystemExit(f"relay --once --workers {workers} failed: see {chain.work}")
        seconds = time.perf_counter() - start
        assert all(chain.fulfilled(r) for r in rids)
        chain.node.stop()
        throughput[str(workers)] = {
            "seconds": seconds,
            "per_minute": 60 * len(rids) / seconds,
        }

    prove_median = statistics.median(bare)
    latency_median = statistics.median(latencies)
    result = {
        "model": str(build_dir),
        "cores": os.cpu_count(),
        "prove_seconds": {"median": prove_median, "samples": bare},
        "latency_seconds": {"median": latency_median, "samples": latencies},
        "goal_latency": prove_median + GOAL_SLACK,
        "goal_met": latency_median <= prove_median + GOAL_SLACK,
        "queue": args.queue,
        "throughput": throughput,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"prove (bare)   median {prove_median:.2f} s over {len(bare)}")
        print(
            f"latency        median {latency_median:.2f} s over {len(latencies)} "
            f"(goal <= {prove_median + GOAL_SLACK:.2f} s: "
            f"{'met' if result['goal_met'] else 'MISSED'})"
        )
        for workers, t in throughput.items():
            print(
                f"throughput     {args.queue} queued, --workers {workers}: {t['seconds']:.1f} s "
                f"({t['per_minute']:.1f} requests/min)"
            )
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
