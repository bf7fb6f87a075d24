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
import signal
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..exceptions import InputError, ProvingError, ZkmlOracleError


@dataclass(frozen=True)
class ProofJob:
    """Prove ``sample`` with the circuit in ``build_dir`` (the model ``model_id``)."""

    request_id: int
    model_id: str
    build_dir: str
    sample: list[list[float]]


@dataclass(frozen=True)
class ProofOutcome:
    """A proof as the oracle's ``fulfill`` takes it, or why there is none.

    ``rejected`` means the input itself cannot be proven (retrying cannot help)."""

    request_id: int
    proof: bytes = b""
    instances: tuple[int, ...] = ()
    seconds: float = 0.0
    error: str | None = None
    rejected: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


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


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the relayer dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _init_worker(build_dirs: list[str]) -> None:
    # Ctrl-C reaches the whole process group: the relayer decides what stops, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    import ezkl  # noqa: F401  (once per worker, not per job)

    from ..prover import Circuit

    for build_dir in build_dirs:
        circuit = Circuit.open(Path(build_dir))
        with open(circuit.path("pk"), "rb") as f:  # warm the page cache with the proving key
            while f.read(1 << 20):
                pass
        _CIRCUITS[build_dir] = circuit


def prove_job(job: ProofJob) -> ProofOutcome:
    """Witness + proof + calldata for one job, in a worker (or inline, for tests)."""
    import ezkl

    from .. import _ezkl, data
    from ..oracle import proof_calldata
    from ..prover import Circuit, instances_of, read_proof

    start = time.perf_counter()
    try:
        circuit = _CIRCUITS.get(job.build_dir) or Circuit.open(Path(job.build_dir))
        _CIRCUITS[job.build_dir] = circuit
        with tempfile.TemporaryDirectory(prefix=f"zkml-relay-{job.request_id}-") as tmp:
            folder = Path(tmp)
            (folder / "input.json").write_text(data.dump(job.sample))
            _ezkl.call(
                ezkl.gen_witness,
                str(folder / "input.json"),
                circuit.path("compiled"),
                str(folder / "witness.json"),
                error=lambda msg: InputError(
                    f"the circuit cannot run on this input ({msg}): a value is outside the "
                    "range it was calibrated for"
                ),
            )
            _ezkl.call(
                ezkl.prove,
                str(folder / "witness.json"),
                circuit.path("compiled"),
                circuit.path("pk"),
                str(folder / "proof.json"),
                srs_path=str(circuit.srs_path),
                error=lambda msg: ProvingError(f"proving failed: {msg}"),
            )
            instances = instances_of(read_proof(folder / "proof.json"))
            proof, encoded = proof_calldata(folder / "proof.json")
            if encoded != instances:
                raise ProvingError("the calldata's instances differ from the proof's")
    except InputError as e:
        return ProofOutcome(job.request_id, error=str(e), rejected=True)
    except ZkmlOracleError as e:
        return ProofOutcome(job.request_id, error=str(e))
    except Exception as e:  # a worker must answer, whatever happened
        return ProofOutcome(job.request_id, error=f"{type(e).__name__}: {e}")
    return ProofOutcome(
        job.request_id,
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
            initargs=(list(build_dirs),),
        )
        self.workers = workers
        # Start every worker now rather than on the first job.
        for _ in range(workers):
            self._pool.submit(os.getpid)

    def submit(self, job: ProofJob) -> Future[ProofOutcome]:
        return self._pool.submit(prove_job, job)

    def close(self, *, cancel: bool) -> None:
        processes = dict(getattr(self._pool, "_processes", None) or {})
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if cancel:
            for proc in processes.values():
                with contextlib.suppress(Exception):
                    proc.kill()
                    proc.join(5)
