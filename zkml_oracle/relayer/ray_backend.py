"""Proving on a Ray cluster (``relay --backend ray [--ray-address ADDR]``).

Ray only proves: the journal, exactly-once and crash recovery stay the relayer's. Each node of
the cluster with room for one gets a **prover actor** that opens every served circuit once
(:func:`.backend.open_circuits`) and then proves job after job (:func:`.backend.prove_job`).
An actor reserves Ray ``memory`` from the proving key's size (:func:`prover_memory`), so Ray
never places more provers on a node than fit; a node that joins gets its provers within a
second, and a node that dies takes only its running proof with it: that job is proven again
on another node, unseen by the relayer's loop.

The Ray driver runs in a **bridge process**, not in the relayer: a Ray driver whose cluster
disappears can hang or be ended by Ray itself, and the relayer must outlive its cluster. The
bridge talks to the relayer over a pipe (jobs in; outcomes, starts and worker lists out, and a
heartbeat). When the bridge dies or stops beating, the relayer logs ``ray.unavailable``,
keeps every unfinished job, starts a new bridge with capped backoff, and sends them again once
it connects (``ray.connected``). Jobs are plain data, so a job sent twice is at worst proven
twice; the relayer's journal sends one transaction per proof it collects.

A job crosses the cluster **sealed to the actor that proves it** (:class:`SealedJob`): each
actor makes a secp256k1 key in its own memory when it starts and answers ``ready`` with its
public key; the driver seals the job's samples to it (ECIES, AES-GCM). Ray's protocol, its
object store and any object it spills to disk carry only ciphertext, so a requester-bound
model's private input, decrypted by the relayer, is in the clear only in the relayer and in
the prover that proves it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import InputError
from . import job_folders
from .backend import ProofJob, ProofOutcome, WorkerStatus, _die_with, open_circuits, prove_job
from .log import emit

#: Ray ``memory`` reserved per prover: a proof's peak is a few times its proving key (ezkl
#: reads and expands the key on every proof), plus the interpreter, ezkl and the circuits.
PK_FACTOR = 3
BASE_MEMORY = 256 << 20

#: A job whose prover died this many times is reported failed (the relayer retries it later).
MAX_LOSSES = 3
#: Seconds without a heartbeat from the bridge before it is taken for hung and replaced
#: (connecting: starting Python, importing Ray and joining the cluster, on a busy machine).
HEARTBEAT_TIMEOUT = 20.0
CONNECT_TIMEOUT = 90.0
#: Seconds before a node whose prover failed to start is given another.
NODE_COOLDOWN = 30.0
#: Backoff between attempts to (re)connect to the cluster.
RETRY_MIN, RETRY_MAX = 1.0, 5.0
#: How often the bridge looks for new or lost nodes.
NODES_EVERY = 1.0


def prover_memory(build_dirs: list[str]) -> int:
    """Bytes of Ray ``memory`` one prover reserves: ``PK_FACTOR`` x the largest proving key
    it serves, plus ``BASE_MEMORY``."""
    from ..prover import Circuit

    largest = max(os.path.getsize(Circuit.open(Path(d)).path("pk")) for d in build_dirs)
    return PK_FACTOR * largest + BASE_MEMORY


@dataclass
class _Pending:
    job: ProofJob
    future: Future[ProofOutcome]


class RayBackend:
    """A :class:`.backend.ProverBackend` on a Ray cluster (``address``), or on a Ray started
    for this relayer alone (``address`` None: this machine, every server on 127.0.0.1)."""

    def __init__(
        self, build_dirs: list[str], address: str | None = None, *, per_node: int = 1
    ) -> None:
        if per_node < 1:
            raise InputError(f"{per_node} provers per node: give at least 1")
        if importlib.util.find_spec("ray") is None:  # Ray itself runs in the bridge process
            raise InputError(
                "--backend ray needs Ray: `make setup` installs it (requirements-ray.lock)"
            )
        self._args = (list(build_dirs), address, per_node, prover_memory(build_dirs), os.getpid())
        self.address = address or "local"
        self._pending: dict[tuple[int, ...], _Pending] = {}
        self._workers: list[WorkerStatus] = []
        self._lock = threading.Lock()
        self._conn: Any = None
        self._closed = threading.Event()
        self.connected = False
        self._thread = threading.Thread(target=self._supervise, name="zkml-ray", daemon=True)
        self._thread.start()

    # --- the ProverBackend interface ---

    def submit(self, job: ProofJob) -> Future[ProofOutcome]:
        future: Future[ProofOutcome] = Future()
        with self._lock:
            self._pending[job.request_ids] = _Pending(job, future)
            if self._conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._conn.send(("job", job))
        return future

    def close(self, *, cancel: bool) -> None:
        if not cancel:
            while self._pending and not self._closed.is_set():
                time.sleep(0.2)
        self._closed.set()
        self._thread.join(30)

    def status(self) -> list[WorkerStatus]:
        with self._lock:
            return list(self._workers)

    # --- the bridge, seen from the relayer ---

    def _supervise(self) -> None:
        delay = RETRY_MIN
        while not self._closed.is_set():
            started = time.monotonic()
            error = self._run_bridge()
            if self._closed.is_set():
                break
            if time.monotonic() - started > 30:
                delay = RETRY_MIN  # it had been up a while: this is a new outage
            with self._lock:
                self._workers = []
                waiting = sorted(rid for ids in self._pending for rid in ids)
            self.connected = False
            emit(
                "ray.unavailable",
                logging.WARNING,
                address=self.address,
                error=error,
                waiting=waiting,
                retry_in=delay,
            )
            self._closed.wait(delay)
            delay = min(RETRY_MAX, delay * 2)

    def _run_bridge(self) -> str:
        """One bridge process, until it dies, hangs or the backend closes; why it ended."""
        context = multiprocessing.get_context("spawn")  # a clean interpreter for Ray's driver
        ours, theirs = context.Pipe()
        proc = context.Process(target=_bridge, args=(theirs, *self._args), daemon=True)
        proc.start()
        theirs.close()
        last_beat = time.monotonic()
        timeout = CONNECT_TIMEOUT
        why = "the Ray driver exited"
        try:
            while not self._closed.is_set():
                if not ours.poll(0.2):
                    if not proc.is_alive():
                        break
                    if time.monotonic() - last_beat > timeout:
                        why = f"no answer from the Ray driver for {timeout:.0f} s"
                        break
                    continue
                try:
                    kind, *body = ours.recv()
                except (EOFError, OSError):
                    break
                last_beat = time.monotonic()
                if kind == "ready":
                    timeout = HEARTBEAT_TIMEOUT
                    with self._lock:  # every unfinished job, again: the new driver has none
                        self._conn = ours
                        for pending in self._pending.values():
                            ours.send(("job", pending.job))
                    self.connected = True
                    emit("ray.connected", address=self.address, cluster=body[0])
                elif kind == "failed":
                    why = str(body[0])
                    break
                elif kind == "workers":
                    with self._lock:
                        self._workers = list(body[0])
                elif kind == "started":
                    emit("ray.proof_started", requests=list(body[0]), node=body[1])
                elif kind == "prover_failed":
                    emit("ray.prover_failed", logging.WARNING, node=body[0], error=body[1])
                elif kind == "lost":
                    emit(
                        "ray.prover_lost",
                        logging.WARNING,
                        requests=list(body[0]),
                        node=body[1],
                        error=body[2],
                    )
                elif kind == "done":
                    ids, outcome, node = body
                    with self._lock:
                        found = self._pending.pop(tuple(ids), None)
                    if found is not None and not found.future.done():
                        emit("ray.proof_done", requests=list(ids), node=node, ok=outcome.ok)
                        found.future.set_result(outcome)
        finally:
            with self._lock:
                self._conn = None
            with contextlib.suppress(OSError, ValueError):
                ours.send(("stop",))
            proc.join(15)  # a Ray of its own stops with it
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            ours.close()
        return why


# --- the bridge process: Ray's driver ---


@dataclass(frozen=True)
class SealedJob:
    """A :class:`ProofJob` as it travels to a Ray prover: the samples sealed (ECIES over
    secp256k1, AES-GCM) to that prover's key, the rest (public) as it is."""

    request_ids: tuple[int, ...]
    model_id: str
    build_dir: str
    samples: bytes

    @classmethod
    def seal(cls, job: ProofJob, public_key: str) -> SealedJob:
        import ecies

        plain = json.dumps(job.samples).encode()
        return cls(job.request_ids, job.model_id, job.build_dir, ecies.encrypt(public_key, plain))

    def open(self, secret: bytes) -> ProofJob:
        import ecies

        samples = json.loads(ecies.decrypt(secret, self.samples))
        return ProofJob(self.request_ids, self.model_id, self.build_dir, samples)


class _Prover:
    """A Ray actor: every served circuit opened once, then proofs one at a time; its jobs
    arrive sealed to a key that exists only in this actor's memory."""

    def __init__(self, build_dirs: list[str]) -> None:
        import coincurve

        job_folders.sweep()  # on its node, a prover killed mid-job left its job's files
        open_circuits(build_dirs)
        self._secret = coincurve.PrivateKey().secret

    def ready(self) -> str:
        """The public key to seal this actor's jobs to (hex, compressed)."""
        import coincurve

        return coincurve.PrivateKey(self._secret).public_key.format(compressed=True).hex()

    def prove(self, job: SealedJob) -> ProofOutcome:
        return prove_job(job.open(self._secret))


@dataclass
class _Actor:
    name: str
    handle: Any
    node: str
    where: str
    ready: Any  # ObjectRef until the actor has opened its circuits, then None
    public_key: str = ""  # what its jobs are sealed to, from its ready()
    job: ProofJob | None = None
    ref: Any = None
    proofs: int = 0


@dataclass
class _Driver:
    conn: Any
    build_dirs: list[str]
    per_node: int
    memory: int
    actors: dict[str, _Actor] = field(default_factory=dict)
    queue: deque[ProofJob] = field(default_factory=deque)
    losses: dict[tuple[int, ...], int] = field(default_factory=dict)
    cooldown: dict[str, float] = field(default_factory=dict)  # node → when it may try again
    count: int = 0
    reported: list[WorkerStatus] = field(default_factory=list)

    def nodes(self, ray: Any, prover: Any) -> None:
        """A prover on each alive node with room for one (up to ``per_node``); forget provers
        whose node is gone."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
        for key, actor in list(self.actors.items()):
            if actor.node not in alive:
                self.lose(ray, key, "its node left the cluster")
        for node_id, node in alive.items():
            if self.cooldown.get(node_id, 0.0) > time.monotonic():
                continue
            room = int(node["Resources"].get("memory", 0) // self.memory)
            have = sum(1 for a in self.actors.values() if a.node == node_id)
            for _ in range(min(room, self.per_node) - have):
                self.count += 1
                handle = prover.options(
                    num_cpus=1,
                    memory=self.memory,
                    max_restarts=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote(self.build_dirs)
                name = f"prover-{self.count}"
                where = f"{node_id[:8]} ({node['NodeManagerAddress']})"
                self.actors[name] = _Actor(name, handle, node_id, where, handle.ready.remote())

    def lose(self, ray: Any, key: str, error: str) -> None:
        """A prover is gone: its job goes back to the front of the queue (or fails, after
        ``MAX_LOSSES``)."""
        actor = self.actors.pop(key)
        with contextlib.suppress(Exception):
            ray.kill(actor.handle)
        if actor.ready is not None:  # it never opened the circuits there: wait before again
            self.cooldown[actor.node] = time.monotonic() + NODE_COOLDOWN
            self.conn.send(("prover_failed", actor.where, error))
        job = actor.job
        if job is None:
            return
        self.conn.send(("lost", job.request_ids, actor.where, error))
        losses = self.losses.get(job.request_ids, 0) + 1
        self.losses[job.request_ids] = losses
        if losses >= MAX_LOSSES:
            outcome = ProofOutcome(
                job.request_ids, error=f"{losses} Ray provers died proving it (last: {error})"
            )
            self.conn.send(("done", job.request_ids, outcome, actor.where))
        else:
            self.queue.appendleft(job)

    def assign(self) -> None:
        for actor in self.actors.values():
            if not self.queue:
                return
            if actor.ready is None and actor.job is None:
                job = self.queue.popleft()
                sealed = SealedJob.seal(job, actor.public_key)
                actor.job, actor.ref = job, actor.handle.prove.remote(sealed)
                self.conn.send(("started", job.request_ids, actor.where))

    def settle(self, ray: Any) -> None:
        """Wait a little for a prover to start or a proof to finish, and act on it."""
        refs = {}
        for key, actor in self.actors.items():
            ref = actor.ready if actor.ready is not None else actor.ref
            if ref is not None:
                refs[ref] = key
        if not refs:
            time.sleep(0.2)
            return
        done, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
        for ref in done:
            key = refs[ref]
            actor = self.actors[key]
            try:
                value = ray.get(ref)
            except ray.exceptions.RayError as e:
                self.lose(ray, key, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                continue
            if actor.ready is not None:
                actor.ready, actor.public_key = None, value
                continue
            job = actor.job
            assert job is not None
            actor.job, actor.ref = None, None
            actor.proofs += 1
            self.losses.pop(job.request_ids, None)
            self.conn.send(("done", job.request_ids, value, actor.where))

    def report(self) -> None:
        workers = [
            WorkerStatus(
                a.name,
                a.where,
                "starting" if a.ready is not None else "proving" if a.job else "idle",
                a.proofs,
                self.memory,
            )
            for a in self.actors.values()
        ]
        if workers != self.reported:
            self.reported = workers
            self.conn.send(("workers", workers))


def _bridge(
    conn: Any, build_dirs: list[str], address: str | None, per_node: int, memory: int, relayer: int
) -> None:
    _die_with(relayer)
    if address is None:
        # A Ray of the relayer's own: every server on loopback, nothing reachable from outside.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    logging.getLogger("ray").setLevel(logging.ERROR)
    import ray

    try:
        if address is None:
            # Provers at the relayer's own priority, as the local pool's (Ray's default 15
            # would let any other load on this machine starve them).
            ray.init(
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
                _system_config={"worker_niceness": 0},
            )
        else:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as e:
        conn.send(("failed", f"cannot connect to Ray at {address or 'a local start'}: {e}"))
        return
    prover = ray.remote(_Prover)
    driver = _Driver(conn, build_dirs, per_node, memory)
    conn.send(("ready", ray.get_runtime_context().gcs_address))
    next_nodes = 0.0
    while True:
        while conn.poll(0):
            kind, *body = conn.recv()
            if kind == "stop":
                ray.shutdown()
                return
            driver.queue.append(body[0])
        if time.monotonic() >= next_nodes:
            driver.nodes(ray, prover)
            next_nodes = time.monotonic() + NODES_EVERY
        driver.assign()
        driver.settle(ray)
        driver.report()
        conn.send(("beat",))
