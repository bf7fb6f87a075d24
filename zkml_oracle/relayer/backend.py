"""Proving behind one small interface: submit a job, get a future of its outcome.

The chain loop only sees :class:`ProverBackend`. The default, :class:`LocalPoolBackend`, is a
pool of worker processes on this machine, each of which opens every served circuit once
(manifest, artifacts and SRS checked once, ezkl imported once) and then proves job after job.
Another backend (Ray, Celery, a remote queue) implements the same two methods; see
``docs/relayer.md``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import signal
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..exceptions import InputError, ProvingError, ZkmlOracleError


@dataclass(frozen=True)
class ProofJob:
    """Prove ``samples`` (one per request, in slot order) with one proof of the circuit in
    ``build_dir`` (the model ``model_id``): slot ``i`` answers ``request_ids[i]``; a batched
    circuit's unused slots repeat the last sample (:func:`zkml_oracle.data.pack`)."""

    request_ids: tuple[int, ...]
    model_id: str
    build_dir: str
    samples: list[list[list[float]]]


@dataclass(frozen=True)
class ProofOutcome:
    """A proof as the oracle's ``fulfill``/``fulfillBatch`` take it, or why there is none.

    ``rejected`` lists the requests whose input itself cannot be proven, with the reason
    (retrying cannot help them; the job's other requests can be proven without them)."""

    request_ids: tuple[int, ...]
    proof: bytes = b""
    instances: tuple[int, ...] = ()
    seconds: float = 0.0
    error: str | None = None
    rejected: tuple[tuple[int, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.rejected


@dataclass(frozen=True)
class WorkerStatus:
    """One prover of a backend, as the status page shows it."""

    name: str
    where: str  # the machine or cluster node it runs on
    state: str  # "starting", "idle", "proving", "lost"
    proofs: int = 0
    memory_bytes: int | None = None  # reserved for it, where the backend reserves


class ProverBackend(Protocol):
    """What the relayer needs from a proving engine."""

    def submit(self, job: ProofJob) -> Future[ProofOutcome]:
        """Start proving; the future resolves to an outcome (errors are outcomes, not raises)."""
        ...

    def close(self, *, cancel: bool) -> None:
        """Stop: with ``cancel``, abandon queued and running jobs (the journal re-queues them)."""
        ...


# --- the default backend: worker processes on this machine ---

_CIRCUITS: dict[str, Any] = {}


def _die_with(relayer: int) -> None:
    """A worker ends when the relayer does, even by SIGKILL.

    Its parent is the forkserver, not the relayer, so ``PR_SET_PDEATHSIG`` alone would tie it
    to the forkserver, which outlives a killed relayer (a worker holds its "alive" pipe): a
    thread waits on a pidfd of the relayer (polling its pid where pidfds are missing)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    def watch() -> None:
        try:
            pidfd = os.pidfd_open(relayer)
        except ProcessLookupError:
            pass  # already gone
        except (AttributeError, OSError):
            while True:  # no pidfds here: poll
                try:
                    os.kill(relayer, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(1.0)
        else:
            select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="zkml-relayer-watch", daemon=True).start()


def _init_worker(build_dirs: list[str], relayer: int) -> None:
    # Ctrl-C reaches the whole process group: the relayer decides what stops, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(relayer)
    open_circuits(build_dirs)


def open_circuits(build_dirs: list[str]) -> None:
    """Open every served circuit once in this process (manifest, artifacts and SRS checked,
    ezkl imported, proving key read into the page cache): each proof then reuses them."""
    import ezkl  # noqa: F401  (once per worker, not per job)

    from ..prover import Circuit

    for build_dir in build_dirs:
        circuit = Circuit.open(Path(build_dir))
        with open(circuit.path("pk"), "rb") as f:  # warm the page cache with the proving key
            while f.read(1 << 20):
                pass
        _CIRCUITS[build_dir] = circuit


def _witness(circuit: Any, samples: list[list[list[float]]], folder: Path) -> None:
    """The job's witness, checked against the circuit's ranges (an input outside them would
    hang ezkl's prover): InputError names the reason a request is rejected."""
    circuit.witness(samples, folder)


def _culprits(circuit: Any, job: ProofJob, folder: Path, error: str) -> tuple[tuple[int, str], ...]:
    """Which requests of a batch the circuit cannot run on: each sample's witness alone."""
    if len(job.samples) == 1:
        return ((job.request_ids[0], error),)
    found = []
    for rid, sample in zip(job.request_ids, job.samples, strict=True):
        try:
            _witness(circuit, [sample], folder)
        except InputError as e:
            found.append((rid, str(e)))
    return tuple(found)


def prove_job(job: ProofJob) -> ProofOutcome:
    """Witness + one proof + calldata for a job's requests, in a worker (or inline, for tests)."""
    from ..oracle import proof_calldata
    from ..prover import Circuit, instances_of, prove_witness, read_proof

    start = time.perf_counter()
    ids = job.request_ids
    try:
        circuit = _CIRCUITS.get(job.build_dir) or Circuit.open(Path(job.build_dir))
        _CIRCUITS[job.build_dir] = circuit
        if not 1 <= len(job.samples) <= circuit.manifest.batch or len(job.samples) != len(ids):
            raise ProvingError(
                f"{len(ids)} request(s), {len(job.samples)} sample(s) for a circuit that proves "
                f"{circuit.manifest.batch} at once"
            )
        with tempfile.TemporaryDirectory(prefix=f"zkml-relay-{ids[0]}-") as tmp:
            folder = Path(tmp)
            try:
                _witness(circuit, job.samples, folder)
            except InputError as e:
                culprits = _culprits(circuit, job, folder, str(e))
                if culprits:
                    return ProofOutcome(ids, error=str(e), rejected=culprits)
                raise ProvingError(f"witness generation failed for the batch: {e}") from None
            prove_witness(circuit, folder / "witness.json", folder / "proof.json")
            instances = instances_of(read_proof(folder / "proof.json"))
            proof, encoded = proof_calldata(folder / "proof.json")
            if encoded != instances:
                raise ProvingError("the calldata's instances differ from the proof's")
    except ZkmlOracleError as e:
        return ProofOutcome(ids, error=str(e))
    except Exception as e:  # a worker must answer, whatever happened
        return ProofOutcome(ids, error=f"{type(e).__name__}: {e}")
    return ProofOutcome(
        ids,
        proof=proof,
        instances=tuple(instances),
        seconds=time.perf_counter() - start,
    )


class LocalPoolBackend:
    """``workers`` processes on this machine (started at once, so keys load while the chain
    loop catches up)."""

    def __init__(self, build_dirs: list[str], workers: int = 1) -> None:
        if workers < 1:
            raise InputError(f"--workers {workers}: give at least 1")
        # forkserver: never fork a process that holds web3's sockets and threads.
        context = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(list(build_dirs), os.getpid()),
        )
        self.workers = workers
        self._running = 0
        self._proofs = 0
        # Start every worker now rather than on the first job.
        for _ in range(workers):
            self._pool.submit(os.getpid)

    def submit(self, job: ProofJob) -> Future[ProofOutcome]:
        future = self._pool.submit(prove_job, job)
        self._running += 1
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[ProofOutcome]) -> None:
        self._running -= 1
        self._proofs += 1

    def status(self) -> list[WorkerStatus]:
        """The pool's processes: how many are proving, and the proofs the pool made (a job
        goes to whichever process is free: they are the pool's, shown on its first line)."""
        busy, done = self._running, self._proofs
        return [
            WorkerStatus(
                f"process-{i + 1}",
                "this machine",
                "proving" if i < busy else "idle",
                done if i == 0 else 0,
            )
            for i in range(self.workers)
        ]

    def close(self, *, cancel: bool) -> None:
        processes = dict(getattr(self._pool, "_processes", None) or {})
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if cancel:
            for proc in processes.values():
                with contextlib.suppress(Exception):
                    proc.kill()
                    proc.join(5)
