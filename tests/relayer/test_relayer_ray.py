"""The Ray backend (``relay --backend ray``) on a real multi-node Ray cluster on this machine.

``ray.cluster_utils.Cluster`` starts a head and worker nodes as separate Ray processes, every
server on 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, set here before Ray is
imported). The head has too little Ray memory for a prover, each worker node room for exactly
one: the relayer's provers land on the worker nodes, one each. One relayer, one Anvil and one
cluster serve the whole scenario (Ray's start-up is the cost): proving, a node added while it
runs, a node killed mid-proof, the whole cluster gone and back. Every request must end
fulfilled exactly once with the genuine proof's outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.relayer.helpers import (
    Env,
    finish,
    relay_log,
    wait_for,
)
from zkml_oracle.chain import free_port
from zkml_oracle.relayer import journal as J
from zkml_oracle.types import BuildResult

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

MiB = 1 << 20


class RayCluster:
    """A head (no room for a prover) and worker nodes (room for one each), all on loopback."""

    def __init__(self, prover_bytes: int, port: int) -> None:
        self.prover_bytes = prover_bytes
        self.port = port
        self.start()

    def start(self) -> None:
        from ray.cluster_utils import Cluster

        self.cluster: Any = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 0,
                "memory": 64 * MiB,
                "include_dashboard": False,
                "gcs_server_port": self.port,
                # Provers at normal priority: Ray's default niceness 15 starves them on a
                # machine as busy as a CI runner.
                "_system_config": {"worker_niceness": 0},
            },
        )
        self.address = str(self.cluster.address)

    def add_worker(self) -> Any:
        return self.cluster.add_node(num_cpus=1, memory=self.prover_bytes + 64 * MiB)

    def kill(self, node: Any) -> None:
        self.cluster.remove_node(node, allow_graceful=False)

    def shutdown(self) -> None:
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None


def _events(on: Env, name: str, rid: int | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in relay_log(on)
        if r["event"] == name and (rid is None or rid in r.get("requests", []))
    ]


def _status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def _freeze_the_proving_actor() -> int | None:
    """SIGSTOP the Ray actor that is proving (Ray titles it ``ray::_Prover.prove``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::_Prover.prove"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGSTOP)
                return int(entry.name)
    return None


def _fulfilled(on: Env, *rids: int) -> bool:
    states = on.states()
    return all(states.get(rid) == J.FULFILLED for rid in rids)


def test_ray_address_without_the_ray_backend_is_one_clear_line(tmp_path: Path) -> None:
    out = run_cli("relay", "--model", tmp_path, "--ray-address", "127.0.0.1:6379")
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "error: --ray-address is for --backend ray: add --backend ray, or drop --ray-address"
    ]
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_job_crosses_the_cluster_sealed_to_the_prover_that_proves_it() -> None:
    """What the driver hands Ray for a job (Ray pickles it into the task it sends to the
    prover's node, or into its object store) holds no sample in the clear: a requester-bound
    model's samples are the decrypted private input. The driver and the prover actor are the
    real classes; only Ray's transport is stood in for, by a handle that keeps what it is given
    and the two calls of Ray's API the driver makes."""
    import pickle
    import struct
    from multiprocessing import Pipe
    from types import SimpleNamespace

    from zkml_oracle.relayer.backend import ProofJob
    from zkml_oracle.relayer.ray_backend import _Actor, _Driver, _Prover

    secret_value = 0.7071067811865476
    job = ProofJob((7,), "0x" + "ab" * 32, "/nowhere", [[[secret_value, 1.5], [123456789]]])
    prover = _Prover([])  # the actor's class, in this process; no circuit to open
    carried: list[Any] = []
    handle = SimpleNamespace(
        ready=SimpleNamespace(remote=lambda: "ready-ref"),
        prove=SimpleNamespace(remote=lambda arg: carried.append(arg) or "proof-ref"),
    )
    ray = SimpleNamespace(wait=lambda refs, **_: (refs, []), get=lambda ref: prover.ready())
    ours, _theirs = Pipe()
    driver = _Driver(ours, [], per_node=1, memory=1)
    driver.actors["prover-1"] = _Actor("prover-1", handle, "node", "where", "ready-ref")
    driver.settle(ray)  # the actor answers ready
    driver.queue.append(job)
    driver.assign()

    assert len(carried) == 1
    wire = pickle.dumps(carried[0], protocol=5)
    # Each value as pickle writes it (a binary double, a 4-byte int) and as text.
    as_pickled = (struct.pack(">d", secret_value), struct.pack("<i", 123456789))
    for clear in (*as_pickled, str(secret_value).encode(), b"123456789"):
        assert clear not in wire
    assert carried[0].open(prover._secret) == job  # the prover gets the job back whole
    assert driver.actors["prover-1"].job == job  # the driver keeps it to requeue on a loss


@pytest.mark.slow
def test_ray_backend_proves_across_nodes_and_survives_node_and_cluster_loss(
    env: Env,
    good: tuple[list[int], list[int]],
    built: BuildResult,
) -> None:
    from zkml_oracle.relayer.ray_backend import prover_memory

    felts, outputs = good
    ray = RayCluster(prover_memory([str(built.build_dir)]), free_port())
    status_port = free_port()
    proc = None
    try:
        first = ray.add_worker()
        proc = env.relay(
            "--backend",
            "ray",
            "--ray-address",
            ray.address,
            "--workers",
            "2",
            "--status-port",
            str(status_port),
        )

        # Proves and fulfils on the cluster.
        r1 = env.request(felts)
        wait_for(f"request {r1} fulfilled", lambda: _fulfilled(env, r1), 180)
        [done] = _events(env, "ray.proof_done", r1)
        assert done["node"].startswith(first.node_id[:8])
        workers = _status(status_port)["workers"]
        assert len(workers) == 1 and workers[0]["memory_bytes"] == ray.prover_bytes

        # A node added while running: it gets a prover, and new proofs go to it.
        second = ray.add_worker()
        wait_for(
            "a prover on the new node",
            lambda: [w["state"] for w in _status(status_port)["workers"]] == ["idle", "idle"],
            120,
        )
        r2, r3 = env.request(felts), env.request(felts)
        wait_for("both fulfilled", lambda: _fulfilled(env, r2, r3), 180)
        nodes = {_events(env, "ray.proof_done", rid)[0]["node"][:8] for rid in (r2, r3)}
        assert nodes == {first.node_id[:8], second.node_id[:8]}

        # A worker node killed mid-proof: proven on the other node, fulfilled once. A proof
        # of this model takes under a second, so the prover is frozen first and the kill
        # lands while it proves (a request whose proof ended before is fulfilled and counted).
        early: list[int] = []
        for _ in range(5):
            r4 = env.request(felts)
            started = wait_for("r4 started", lambda r=r4: _events(env, "ray.proof_started", r), 60)
            frozen = _freeze_the_proving_actor()
            if frozen is not None:
                break
            wait_for(f"request {r4} fulfilled", lambda r=r4: _fulfilled(env, r), 180)
            early.append(r4)
        else:
            pytest.fail("no proof caught in flight in 5 requests")
        victim = first if started[0]["node"].startswith(first.node_id[:8]) else second
        survivor = second if victim is first else first
        ray.kill(victim)
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGKILL)  # a stopped process cannot see its node go
        wait_for(f"request {r4} fulfilled", lambda: _fulfilled(env, r4), 180)
        assert _events(env, "ray.prover_lost", r4)
        [done4] = _events(env, "ray.proof_done", r4)
        assert done4["node"].startswith(survivor.node_id[:8])

        # The whole cluster gone: the relayer says so, keeps the request, and proves it once
        # a cluster answers at the same address again.
        ray.shutdown()
        r5 = env.request(felts)
        wait_for("ray.unavailable logged", lambda: _events(env, "ray.unavailable"), 90)
        time.sleep(5)  # several reconnection attempts
        assert env.states()[r5] in (J.SEEN, J.PROVING)
        assert proc.poll() is None
        ray.start()
        back = ray.add_worker()
        wait_for(f"request {r5} fulfilled", lambda: _fulfilled(env, r5), 240)
        assert _events(env, "ray.proof_done", r5)[0]["node"].startswith(back.node_id[:8])
        assert len(_events(env, "ray.connected")) >= 2

        rids = [r1, r2, r3, *early, r4, r5]
        env.assert_exactly_once(rids, outputs)
        assert env.states() == {rid: J.FULFILLED for rid in rids}
        os.kill(proc.pid, signal.SIGTERM)
        assert finish(proc, 60) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ray.shutdown()
