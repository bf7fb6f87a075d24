"""Proving behind one small interface: submit a job, get a future of its outcome.

The chain loop only sees :class:`ProverBackend`. The default, :class:`LocalPoolBackend`, is a
pool of worker processes on this machine, each of which opens every served circuit once
(manifest, artifacts and SRS checked once, ezkl imported once) and then proves job after job,
in its own process, under the pool's watchdog. Another backend (Ray, Celery, a remote queue)
implements the same two methods; see ``docs/relayer.md``.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import select
import signal
import tempfile
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._ezkl import StallClock, cpu_seconds, stall_message
from ..exceptions import InputError, ProvingError, ZkmlOracleError
from . import job_folders
from .log import emit


@dataclass(frozen=True)
class ProofJob:
    """Prove ``samples`` (one per request, in slot order) with one proof of the circuit in
    ``build_dir`` (the model ``model_id``): slot ``i`` answers ``request_ids[i]``; a batched
    circuit's unused slots repeat the last sample (:func:`zkml_oracle.circuit.data.pack`)."""

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
    pid: int | None = None  # its process, where it runs on this machine


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
#: A pool worker's view of the pool's slots (:class:`LocalPoolBackend`): per worker, its pid
#: and the job it proves (0: none).
_SLOTS: Any = None


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


def _init_worker(build_dirs: list[str], relayer: int, slots: Any) -> None:
    global _SLOTS
    # Ctrl-C reaches the whole process group: the relayer decides what stops, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(relayer)
    _SLOTS = slots
    open_circuits(build_dirs, watched=True)


def _prove_watched(seq: int, job: ProofJob) -> ProofOutcome:
    """A pool worker's job: marked in the worker's slot while it runs, for the watchdog."""
    me = os.getpid()
    with _SLOTS.get_lock():
        slot = next(i for i in range(0, len(_SLOTS), 2) if _SLOTS[i] in (0, me))
        _SLOTS[slot], _SLOTS[slot + 1] = me, seq
    try:
        return prove_job(job)
    finally:
        _SLOTS[slot + 1] = 0


def open_circuits(build_dirs: list[str], *, watched: bool = False) -> None:
    """Open every served circuit once in this process (manifest, artifacts and SRS checked,
    ezkl imported, proving key read into the page cache): each proof then reuses them.

    ``watched``: the parent watches this process's CPU and kills it if it stalls
    (:class:`LocalPoolBackend`), so ezkl proves here, with no child per proof. Otherwise each
    proof's watchdog child is started ahead (:func:`zkml_oracle._ezkl.keep_warm`)."""
    import ezkl  # noqa: F401  (once per worker, not per job)

    from .. import _ezkl
    from ..prover import Circuit

    if watched:
        _ezkl.watched_by_parent()
    else:
        _ezkl.keep_warm()

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
    from ..calldata import proof_calldata
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
        # A folder the next prover to start removes if this one is killed mid-job: it holds
        # the input, which for a requester-bound model is the decrypted private input.
        with tempfile.TemporaryDirectory(prefix=f"{ids[0]}-", dir=job_folders.mine()) as tmp:
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


@dataclass
class _Pending:
    """A job of the pool and the future the relayer holds for it."""

    job: ProofJob
    future: Future[ProofOutcome]
    reruns: int = 0  # times it ran again because its pool broke under it


#: Times a job runs again on a new pool after its pool broke (another job's worker stopped, or
#: its own worker died): past this, the job's outcome is an error and the relayer retries it.
MAX_RERUNS = 2


class LocalPoolBackend:
    """``workers`` processes on this machine (started at once, so keys load while the chain
    loop catches up), each proving in its own process.

    A native call cannot be interrupted, and ezkl 23.0.5's prove deadlocks on some witnesses:
    a thread samples the CPU time of each worker while it proves, and one that uses almost none
    for ``stall_seconds`` (:class:`zkml_oracle._ezkl.StallClock`) is killed. Its job's outcome
    says so; the pool, broken by the kill, is replaced, and its other jobs run again there.
    Proving in the worker rather than in a watched child per proof saves that child's start-up
    and hand-over on every proof."""

    def __init__(
        self, build_dirs: list[str], workers: int = 1, *, stall_seconds: float | None = None
    ) -> None:
        if workers < 1:
            raise InputError(f"--workers {workers}: give at least 1")
        from ..settings import settings

        self.workers = workers
        self._build_dirs = list(build_dirs)
        self._stall = settings().stall_seconds if stall_seconds is None else stall_seconds
        # forkserver: never fork a process that holds web3's sockets and threads.
        self._context = multiprocessing.get_context("forkserver")
        self._lock = threading.RLock()  # a done callback may run in the thread that submits
        self._jobs: dict[int, _Pending] = {}
        self._seq = itertools.count(1)
        self._stalled: set[int] = set()
        self._proofs = 0
        self._closed = threading.Event()
        job_folders.sweep()  # and refuses, in one line, a job folder that is not private
        self._pool, self._slots = self._start_pool()
        threading.Thread(target=self._watch, name="zkml-prover-watchdog", daemon=True).start()

    def _start_pool(self) -> tuple[ProcessPoolExecutor, Any]:
        slots = self._context.Array("q", 2 * self.workers)
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self._build_dirs, os.getpid(), slots),
        )
        # Start every worker now rather than on the first job.
        for _ in range(self.workers):
            pool.submit(os.getpid)
        return pool, slots

    def submit(self, job: ProofJob) -> Future[ProofOutcome]:
        future: Future[ProofOutcome] = Future()
        with self._lock:
            seq = next(self._seq)
            self._jobs[seq] = _Pending(job, future)
            self._dispatch(seq)
        return future

    def _dispatch(self, seq: int) -> None:
        pool = self._pool
        try:
            inner = pool.submit(_prove_watched, seq, self._jobs[seq].job)
        except RuntimeError as e:  # a broken or shut-down pool refuses at once
            inner = Future()
            inner.set_exception(e)
        inner.add_done_callback(lambda done: self._settle(seq, pool, done))

    def _settle(self, seq: int, pool: ProcessPoolExecutor, inner: Future[ProofOutcome]) -> None:
        with self._lock:
            pending = self._jobs.get(seq)
            if pending is None:
                return
            # Cancelled: queued in a pool that was shut down because it broke.
            error = CancelledError() if inner.cancelled() else inner.exception()
            ids = pending.job.request_ids
            if self._closed.is_set():
                outcome = None
            elif error is None:
                outcome = inner.result()
                self._proofs += 1
            elif seq in self._stalled:
                outcome = ProofOutcome(ids, error=stall_message("prove", self._stall))
            elif pending.reruns < MAX_RERUNS:
                pending.reruns += 1
                if pool is self._pool:
                    self._replace_pool()
                self._dispatch(seq)
                return
            else:
                outcome = ProofOutcome(ids, error=f"the prover process ended: {error}")
            del self._jobs[seq]
            self._stalled.discard(seq)
        if outcome is None:
            pending.future.cancel()
        else:
            pending.future.set_result(outcome)

    def _replace_pool(self) -> None:
        """A new pool for a broken one (its remaining workers are killed with it)."""
        old = self._pool
        _kill(old)
        job_folders.sweep()
        self._pool, self._slots = self._start_pool()
        emit("prover.pool_replaced", workers=self.workers)

    def _watch(self) -> None:
        clocks: dict[int, StallClock] = {}
        while not self._closed.wait(0.5):
            with self._lock:
                slots = self._slots
            proving = {seq: pid for pid, seq in _read_slots(slots) if seq}
            for seq in clocks.keys() - proving.keys():
                del clocks[seq]
            now = time.monotonic()
            for seq, pid in proving.items():
                used = cpu_seconds(pid)
                clock = clocks.setdefault(seq, StallClock(self._stall))
                if used is None or not clock.stalled(now, used):
                    continue
                with self._lock:
                    if seq not in self._jobs:
                        continue
                    self._stalled.add(seq)
                    requests = list(self._jobs[seq].job.request_ids)
                emit("prover.stalled", requests=requests, pid=pid, seconds=self._stall)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                del clocks[seq]

    def status(self) -> list[WorkerStatus]:
        """The pool's processes, each proving or idle; the proofs the pool made (a job goes to
        whichever process is free: they are the pool's, shown on its first line)."""
        with self._lock:
            workers = _read_slots(self._slots)
            done = self._proofs
        return [
            WorkerStatus(
                f"process-{i + 1}",
                "this machine",
                "proving" if seq else ("idle" if pid else "starting"),
                done if i == 0 else 0,
                pid=pid or None,
            )
            for i, (pid, seq) in enumerate(workers)
        ]

    def close(self, *, cancel: bool) -> None:
        if cancel:
            self._closed.set()
        with self._lock:
            pool = self._pool
        if cancel:
            _kill(pool)
        else:
            pool.shutdown(wait=True)
        self._closed.set()
        with self._lock:
            if self._pool is not pool:  # replaced while it drained
                _kill(self._pool)
            left = list(self._jobs.values())
            self._jobs.clear()
        job_folders.sweep()
        for pending in left:
            pending.future.cancel()


def _read_slots(slots: Any) -> list[tuple[int, int]]:
    """Each pool worker's slot: its pid (0: not started) and the job it proves (0: none)."""
    with slots.get_lock():
        values = list(slots)
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def _kill(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down at once: queued jobs cancelled, its processes killed."""
    processes = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes.values():
        with contextlib.suppress(Exception):
            proc.kill()
            proc.join(5)
