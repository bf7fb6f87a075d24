"""Relayer throughput with the Ray backend, 1 and 2 Ray workers, against the local pool.

Each configuration gets a fresh Anvil and a running ``zkml-oracle relay`` (warmed up by one
request, so start-up is not counted); then ``--queue`` requests are sent at once and the
clock runs from the first being mined to the last fulfilment seen mined. Configurations:

- ``local``: the default backend, ``--workers 1`` (the baseline of this run);
- ``ray-1``: ``--backend ray`` on a ``ray.cluster_utils.Cluster`` with one worker node;
- ``ray-2``: the same with two worker nodes (``--workers 2``).

Honestly: every Ray node here is a process group on the **same 2 cores**, and ezkl already
uses both cores for one proof, so two workers cannot be much faster than one on this machine;
the figure that carries over to real nodes is the per-node rate and the Ray overhead against
the local pool. Ray's workers run at niceness 0 here (``worker_niceness``), as the local
pool's. Every server listens on 127.0.0.1. Usage:

    .venv/bin/python benchmarks/relayer_scale.py [--queue 16] [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from scratch import KEEP_HINT, scratch

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import relayer as single


def _cluster(workers: int, prover_bytes: int) -> Any:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "memory": 64 << 20,
            "include_dashboard": False,
            "_system_config": {"worker_niceness": 0},
        },
    )
    for _ in range(workers):
        cluster.add_node(num_cpus=1, memory=prover_bytes + (64 << 20))
    return cluster


def run(build_dir: Path, work: Path, felts: list[int], queue: int, name: str) -> dict[str, Any]:
    from zkml_oracle.relayer.ray_backend import prover_memory

    cluster = None
    args = ["--workers", "1"]
    if name.startswith("ray"):
        workers = int(name.split("-")[1])
        cluster = _cluster(workers, prover_memory([str(build_dir)]))
        args = ["--backend", "ray", "--ray-address", str(cluster.address)]
        args += ["--workers", str(workers)]
    chain = single.Chain(build_dir, work)
    proc = chain.relay(*args, db="r.sqlite")
    try:
        warm, _ = chain.request(felts)
        single._wait(lambda: chain.fulfilled(warm), 600, "the warm-up request")
        block = int(chain.web3.eth.block_number) + 1
        mined = [chain.request(felts) for _ in range(queue)]
        start = min(at for _, at in mined)
        left = {rid for rid, _ in mined}
        deadline = time.monotonic() + 1800
        end = start
        while left:
            found, block = chain.fulfilled_since(block)
            if set(found) & left:
                end = time.perf_counter()
                left -= set(found)
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: timed out, {len(left)} left ({KEEP_HINT})")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        chain.node.stop()
        if cluster is not None:
            cluster.shutdown()
    seconds = end - start
    return {"seconds": seconds, "per_minute": 60 * queue / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=16, help="requests sent at once")
    parser.add_argument("--configs", default="local,ray-1,ray-2")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()

    os.environ.setdefault("APE_DATA_FOLDER", str(scratch("zkml-bench-ape-")))
    from zkml_oracle import field
    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.types import Manifest

    work = scratch("zkml-bench-scale-")
    files = write_credit_mlp(work / "model")
    build_dir = build(
        files["model"], files["calibration"], work / "build", BuildOptions(dev_srs=True)
    ).build_dir
    spec = Manifest.load(build_dir).inputs[0]
    values = json.loads(Path(files["input"]).read_text())["input_data"][0]
    felts = [field.encode(v, spec.scale) for v in values]
    results = {
        name: run(build_dir, work / name, felts, args.queue, name)
        for name in args.configs.split(",")
    }
    base = results.get("local", {}).get("per_minute")
    for r in results.values():
        r["ratio_to_local"] = r["per_minute"] / base if base else None
    doc = {"queue": args.queue, "cores": os.cpu_count(), "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for name, r in results.items():
            ratio = f" ({r['ratio_to_local']:.2f}x local)" if r["ratio_to_local"] else ""
            print(
                f"{name:6} {args.queue} requests in {r['seconds']:.1f} s: "
                f"{r['per_minute']:.1f} requests/min{ratio}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
