"""The relayer end to end on a local Anvil: request → fulfilment latency and queue throughput.

Goals (issue 6): the median latency from a request being mined to its fulfilment being mined is
at most the bare proving time of the same model + 2 s; throughput is reported for 20 queued
requests with ``--workers`` 1 and 2.

Batching (issue 8): on the same model built with ``--batch 8``, requests arriving spread over
time (Poisson, mean ``--spread`` s apart, seeded) are served by ``relay --batch-size 8
--max-wait W`` for W = 0 and 5 s; goal: the median latency is at most W + the bare proving
time of a full batch + 2 s. The relayer runs as ``zkml-oracle relay``, a child process, as an
operator runs it. Usage:

    .venv/bin/python benchmarks/relayer.py [--rounds 5] [--queue 20] [--batched 24]
        [--spread 1.0] [--max-waits 0,5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scratch import KEEP_HINT, scratch

from zkml_oracle.testing.relay import relay_argv

GOAL_SLACK = 2.0
REQUESTER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"


class Chain:
    """A fresh Anvil with the oracle deployed and the model registered."""

    def __init__(self, build_dir: Path, work: Path) -> None:
        from web3 import Web3

        from zkml_oracle.chain import ChainOptions, LocalNode, connect, sender
        from zkml_oracle.chain.contracts import oracle as oracle_artifact
        from zkml_oracle.chain.deployments import DeploymentStore
        from zkml_oracle.chain.oracle import deploy_and_register

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
        return int(self.contract.functions.requestStatus(rid).call()) == 2

    def fulfilled_since(self, block: int) -> tuple[list[int], int]:
        """Requests fulfilled in blocks ``block``.., and the next block to look from."""
        head = int(self.web3.eth.block_number)
        if head < block:
            return [], block
        from zkml_oracle.chain.oracle import fulfilled_by_request

        found = fulfilled_by_request(self.contract, block, head)
        return list(found), head + 1

    def relay(self, *args: str, db: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            relay_argv(self.build_dir, self.node.url, self.work, *args, db=db),
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / f"{db}.log", "wb"),
        )


def ezkl_prover(build_dir: Path, input_file: Path, work: Path) -> Callable[[], float]:
    """A timer of ezkl's own ``prove`` in this process on one fixed witness: the floor under
    any relayer's latency (no witness, no check, no process hand-over, no transaction)."""
    import ezkl

    from zkml_oracle.prover import Circuit

    circuit = Circuit.open(build_dir)
    witness = work / "ezkl-witness.json"
    ezkl.gen_witness(str(input_file), circuit.path("compiled"), str(witness))

    def once() -> float:
        start = time.perf_counter()
        ezkl.prove(
            str(witness),
            circuit.path("compiled"),
            circuit.path("pk"),
            str(work / "ezkl-proof.json"),
            srs_path=str(circuit.srs_path),
        )
        return time.perf_counter() - start

    return once


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def batched_latency(
    build_dir: Path,
    work: Path,
    felts: list[list[int]],
    batch: int,
    max_wait: float,
    count: int,
    spread: float,
    workers: int = 1,
) -> dict[str, Any]:
    """``count`` requests arriving ~``spread`` s apart to ``relay --batch-size batch --max-wait
    max_wait``: each one's latency from its request mined to its fulfilment seen mined."""
    from zkml_oracle.relayer.journal import Journal

    chain = Chain(build_dir, work)
    relayer = chain.relay(
        "--workers",
        str(workers),
        "--batch-size",
        str(batch),
        "--max-wait",
        str(max_wait),
        db="r.sqlite",
    )
    arrivals = random.Random(8)
    mined: dict[int, float] = {}
    done: dict[int, float] = {}
    try:
        warm, _ = chain.request(felts[0])  # also pays for the worker's start-up
        _wait(lambda: chain.fulfilled(warm), 300, "the warm-up request")
        block = int(chain.web3.eth.block_number) + 1
        next_at = time.perf_counter()
        deadline = time.monotonic() + 600
        while len(done) < count:
            now = time.perf_counter()
            if len(mined) < count and now >= next_at:
                rid, at = chain.request(felts[len(mined) % len(felts)])
                mined[rid] = at
                next_at = now + arrivals.expovariate(1 / spread)
            found, block = chain.fulfilled_since(block)
            seen = time.perf_counter()
            for rid in found:
                if rid in mined:
                    done.setdefault(rid, seen)
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {len(done)} of {count} fulfilled ({KEEP_HINT})")
            time.sleep(0.05)
    finally:
        relayer.terminate()
        relayer.wait(30)
        chain.node.stop()
    with Journal(work / "r.sqlite", readonly=True) as journal:
        entries = [e for e in journal.all() if e.request_id in mined]
    per_tx: dict[str, int] = {}
    for e in entries:
        per_tx[str(e.tx_hash)] = per_tx.get(str(e.tx_hash), 0) + 1
    relayed = {e.batch: e.prove_seconds for e in entries if e.prove_seconds is not None}
    latencies = [done[rid] - mined[rid] for rid in mined]
    return {
        "max_wait": max_wait,
        "requests": count,
        "latency_seconds": {
            "median": statistics.median(latencies),
            "max": max(latencies),
            "samples": latencies,
        },
        "relayer_prove_seconds": statistics.median(relayed.values()) if relayed else None,
        "transactions": len(per_tx),
        "requests_per_transaction": sorted(per_tx.values(), reverse=True),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="latency samples (0: skip)")
    parser.add_argument(
        "--queue", type=int, default=20, help="requests queued for throughput (0: skip)"
    )
    parser.add_argument("--build", type=Path, help="an existing build directory (public input)")
    parser.add_argument("--input", type=Path, help="input file for --build")
    parser.add_argument(
        "--batched", type=int, default=24, help="requests per batched latency run (0: skip)"
    )
    parser.add_argument("--batch", type=int, default=8, help="slots of the batched circuit")
    parser.add_argument(
        "--spread", type=float, default=1.0, help="mean seconds between batched requests"
    )
    parser.add_argument(
        "--max-waits", default="0,5", help="comma-separated --max-wait values (seconds)"
    )
    parser.add_argument(
        "--batched-workers", type=int, default=1, help="--workers of the batched relayer"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("APE_DATA_FOLDER", str(scratch("zkml-bench-ape-")))
    from zkml_oracle import field
    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.circuit.data import dump, split_samples
    from zkml_oracle.prover import prove
    from zkml_oracle.types import Manifest

    work = scratch("zkml-bench-relayer-")
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
    latencies: list[float] = []
    bare: list[float] = []
    floor: list[float] = []
    if args.rounds:
        ezkl_prove = ezkl_prover(build_dir, Path(input_file), work)
        chain = Chain(build_dir, work / "latency")
        relayer = chain.relay("--workers", "1", db="latency.sqlite")
        try:
            warm, _ = chain.request(felts)  # the first one also pays for the workers' start-up
            _wait(lambda: chain.fulfilled(warm), 300, "the warm-up request")
            for i in range(args.rounds):
                # Bare proving time, alternating with the relayed requests so both see the same
                # machine: the prover in this process, same model, same input.
                start = time.perf_counter()
                prove(build_dir, input_file, work / f"bare-{i}.json")
                bare.append(time.perf_counter() - start)
                floor.append(ezkl_prove())
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
            raise SystemExit(f"relay --once --workers {workers} failed ({KEEP_HINT})")
        seconds = time.perf_counter() - start
        assert all(chain.fulfilled(r) for r in rids)
        chain.node.stop()
        throughput[str(workers)] = {
            "seconds": seconds,
            "per_minute": 60 * len(rids) / seconds,
        }

    # Batching: the credit MLP built with --batch N, requests spread over time.
    batched: dict[str, Any] = {}
    if args.batched:
        files = write_credit_mlp(work / "batch-model")
        batch_dir = build(
            files["model"],
            files["calibration"],
            work / "batch-build",
            BuildOptions(dev_srs=True, batch=args.batch),
        ).build_dir
        specs = Manifest.load(batch_dir).inputs
        calibration = json.loads(Path(files["calibration"]).read_text())["input_data"]
        samples = split_samples(calibration, specs, Path(files["calibration"]))
        rows = [
            [
                field.encode(v, spec.scale)
                for tensor, spec in zip(sample, specs, strict=True)
                for v in tensor
            ]
            for sample in samples
        ]
        # A full batch: the first N samples back to back, as `prove` takes them.
        full = work / "batch-full.json"
        first = samples[: args.batch]
        full.write_text(dump([[v for s in first for v in s[k]] for k in range(len(specs))]))

        def bare_batch() -> float:
            start = time.perf_counter()
            prove(batch_dir, full, work / "batch-bare.json")
            return time.perf_counter() - start

        batch_bare = [bare_batch()]  # also warms the page cache
        runs = []
        for wait in (float(w) for w in args.max_waits.split(",")):
            # Bare proving time of a full batch just before and after the run, as the machine
            # is then: the goal of the run is W + their mean + 2 s.
            before = bare_batch()
            run = batched_latency(
                batch_dir,
                work / f"batched-{wait:g}",
                rows,
                args.batch,
                wait,
                args.batched,
                args.spread,
                args.batched_workers,
            )
            after = bare_batch()
            batch_bare += [before, after]
            run["prove_seconds"] = (before + after) / 2
            run["goal_latency"] = wait + run["prove_seconds"] + GOAL_SLACK
            run["goal_met"] = run["latency_seconds"]["median"] <= run["goal_latency"]
            runs.append(run)
        batched = {
            "batch": args.batch,
            "spread_seconds": args.spread,
            "prove_seconds": {"median": statistics.median(batch_bare), "samples": batch_bare},
            "runs": runs,
        }

    prove_median = statistics.median(bare) if bare else None
    latency_median = statistics.median(latencies) if latencies else None
    single_met = (
        latency_median <= prove_median + GOAL_SLACK
        if latency_median is not None and prove_median is not None
        else None
    )
    result = {
        "model": str(build_dir),
        "cores": os.cpu_count(),
        "prove_seconds": {"median": prove_median, "samples": bare},
        "ezkl_prove_seconds": {
            "median": statistics.median(floor) if floor else None,
            "samples": floor,
        },
        "latency_seconds": {"median": latency_median, "samples": latencies},
        "goal_latency": prove_median + GOAL_SLACK if prove_median is not None else None,
        "goal_met": single_met,
        "queue": args.queue,
        "throughput": throughput,
        "batched": batched,
    }
    goals = [single_met is not False, *(r["goal_met"] for r in batched.get("runs", []))]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if prove_median is not None and latency_median is not None:
            print(f"prove (bare)   median {prove_median:.2f} s over {len(bare)}")
            print(f"ezkl.prove     median {statistics.median(floor):.2f} s (in this process)")
            print(
                f"latency        median {latency_median:.2f} s over {len(latencies)} "
                f"(goal <= {prove_median + GOAL_SLACK:.2f} s: "
                f"{'met' if single_met else 'MISSED'})"
            )
        for workers, t in throughput.items():
            print(
                f"throughput     {args.queue} queued, --workers {workers}: {t['seconds']:.1f} s "
                f"({t['per_minute']:.1f} requests/min)"
            )
        if batched:
            print(
                f"batch {batched['batch']} prove (bare, full batch) median "
                f"{batched['prove_seconds']['median']:.2f} s; {args.batched} requests per run, "
                f"~{args.spread:g} s apart (Poisson)"
            )
            for r in batched["runs"]:
                print(
                    f"batched        --batch-size {batched['batch']} --max-wait {r['max_wait']:g}: "
                    f"median {r['latency_seconds']['median']:.2f} s, max "
                    f"{r['latency_seconds']['max']:.2f} s; {r['transactions']} transactions "
                    f"{r['requests_per_transaction']} (goal <= W + prove "
                    f"{r['prove_seconds']:.2f} + 2 = {r['goal_latency']:.2f} s: "
                    f"{'met' if r['goal_met'] else 'MISSED'})"
                )
    return 0 if all(goals) else 1


if __name__ == "__main__":
    sys.exit(main())
