"""The relayer's chain loop: scan → prove → settle → send, every state change journaled first.

One thread turns the loop; proofs run in the backend's workers, so the loop keeps scanning,
sending and settling while they run. Each turn:

1. *scan*: ``InferenceRequested`` logs of the served models, from the journal's cursor up to
   ``head - confirmations``, recorded with the new cursor in one transaction;
2. *dispatch*: requests to prove go to the backend (at most one job per worker at a time;
   with ``batch_size`` > 1 a job is up to that many requests of one model, started when full
   or when the oldest has waited ``max_wait`` seconds), before the turn's other chain reads,
   so a free worker does not wait for them;
3. *settle*: every signed or sent transaction is resolved from its receipt, or from the
   chain (request status, fulfiller, our account's nonce): fulfilled by us, by someone else,
   rebroadcast (the same raw bytes), or back to "proved" once its nonce was used otherwise;
   then, once per new head block, final fulfilments are re-checked against reorgs;
4. *send*: each proof whose requests are still (partly) pending on-chain gets one
   transaction (``fulfill`` for a lone request, ``fulfillBatch`` for a batch), signed and
   journaled before it is broadcast.

Finished proofs are collected into the journal at the start of each turn, so they are sent,
and their workers given the next job, in the same turn.

Each phase is a module of :mod:`.phases` over one :class:`~.context.Context` (the relayer's
collaborators, settings and the loop's state: in-flight jobs, head, backoffs, pause), which
:class:`Relayer` is: collect (``prove.collect``) → scan (``scan.scan``) → prove
(``prove.dispatch``) → settle (``settle.settle``, ``settle.recheck``) → send (``send.send``).
Every state change goes through :meth:`~.journal.Journal.transition`; the retry policy is
:mod:`.retry`, the log :mod:`.log`.

RPC failures are retried with capped exponential backoff; the loop keeps collecting proofs
meanwhile. A node refusal that is about the relayer (no funds, a fee or nonce problem) pauses
sending with capped backoff and an alert, without spending the requests' attempts.

Reorgs: a fulfilment is final only ``confirmations`` blocks deep, and final ones are
re-checked by block hash for ``recheck_window`` blocks; one that vanished (a reorg deeper than
the setting) is reported loudly and sent again. The scan cursor's block hash is checked each
turn, and the cursor follows the canonical chain back.

SIGTERM stops scanning and proving anything new, lets in-flight work finish for at most
``drain_timeout`` seconds, and returns. A journal that fails (full or read-only disk, file
removed) stops the loop with one log line and a :class:`~.journal.JournalError`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any

from ..exceptions import RelayerError as RelayerError  # defined there, importable here too
from . import journal as J
from .backend import ProverBackend
from .context import CRASH_ENV as CRASH_ENV  # importable here, as before the phase modules
from .context import Context, InputSource, LoopState
from .context import ServedModel as ServedModel
from .inputs import sample_from_felts
from .log import emit
from .metrics import Metrics
from .phases import prove, scan, send, settle
from .retry import Backoff
from .settings import RelayerSettings
from .signer import NonceManager, Signer
from .watcher import OracleClient, is_transient


def check_batch_size(models: dict[str, ServedModel], batch_size: int) -> None:
    """Every served circuit must hold a whole batch."""
    if batch_size < 1:
        raise RelayerError(f"--batch-size {batch_size}: give at least 1")
    for model_id, model in models.items():
        if model.manifest.batch < batch_size:
            raise RelayerError(
                f"--batch-size {batch_size}: model {model_id} ({model.build_dir}) proves "
                f"{model.manifest.batch} request(s) per proof: pass --batch-size "
                f"{model.manifest.batch} or less, or rebuild it with `zkml-oracle build "
                f"--batch {batch_size}` (and deploy it)"
            )


class Relayer(Context):
    """One relayer: an oracle, the models it serves, a signer, a backend and a journal; the
    context its phases share, and the loop that turns them."""

    def __init__(
        self,
        *,
        config: RelayerSettings,
        oracle: OracleClient,
        signer: Signer,
        models: dict[str, ServedModel],
        backend: ProverBackend,
        journal: J.Journal,
        metrics: Metrics | None = None,
        stop: threading.Event | None = None,
        inputs: InputSource | None = None,
    ) -> None:
        check_batch_size(models, config.batch_size)
        super().__init__(
            config=config,
            confirmations=config.confirmations or 0,
            oracle=oracle,
            signer=signer,
            models={k.lower(): v for k, v in models.items()},
            backend=backend,
            journal=journal,
            metrics=metrics or Metrics(),
            nonces=NonceManager(lambda: oracle.pending_nonce(signer.address)),
            # A request's sample: from its felts, or (relayer.private_inputs) its sealed input.
            inputs=inputs or (lambda m, e: sample_from_felts(m, e.input_felts)),
            chain_id=int(oracle.web3.eth.chain_id),
            loop=LoopState(
                rpc=Backoff(0.25, config.backoff_cap),
                pause=Backoff(1.0, config.pause_cap),
                stop=stop or threading.Event(),
            ),
        )

    # --- control ---

    def stop(self) -> None:
        """Ask the loop to drain and return (safe from a signal handler)."""
        self.loop.stop.set()

    @property
    def stopping(self) -> bool:
        return self.loop.stop.is_set()

    def run(self) -> dict[str, Any]:
        """Until stopped (or, with ``once``, until everything pending is final)."""
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        requeued = self.journal.resume()
        unignored = self.journal.unignore(sorted(self.models))
        retried = self.journal.retry_failed() if self.config.retry_failed else []
        emit(
            "relayer.start",
            relayer=self.signer.address,
            oracle=self.oracle.address,
            models=sorted(self.models),
            requeued=requeued,
            cursor=self.journal.cursor(),
            once=self.config.once,
            batch_size=self.config.batch_size,
            max_wait=self.config.max_wait,
            unignored=unignored,
            retried_failed=retried,
        )
        drain_deadline: float | None = None
        try:
            while True:
                # The stop flag is read once per turn: a SIGTERM during the turn is seen by
                # the next one, never half-way through this one's decisions.
                stopping = self.stopping
                if stopping and drain_deadline is None:
                    drain_deadline = time.monotonic() + self.config.drain_timeout
                    emit("relayer.draining", inflight=self.loop.requests())
                self.journal.check()
                prove.collect(self)  # first: a finished proof is sent, its worker refilled, now
                caught_up, rpc_ok = self._chain_turn(stopping)
                open_now = self.journal.in_state(*J.OPEN_STATES)
                self.metrics.open_requests(len(open_now))
                if drain_deadline is not None:
                    busy = [e for e in open_now if e.state != J.SEEN]
                    if not busy or time.monotonic() > drain_deadline:
                        break
                elif self.config.once and caught_up and rpc_ok and not open_now:
                    break
                self._wait(self._delay())
        except J.JournalError as e:
            emit("relayer.journal_failed", logging.ERROR, error=str(e))
            raise
        finally:
            self._shutdown()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        summary = self.journal.summary()
        emit("relayer.stop", counts={k: v for k, v in summary["counts"].items() if v})
        return summary

    def _delay(self) -> float:
        if self.loop.rpc.failures == 0:
            if self.loop.due is not None:  # wake up when a waiting batch is due
                return max(0.0, min(self.config.poll_interval, self.loop.due - time.time()))
            return self.config.poll_interval
        return self.loop.rpc.delay()

    def _wait(self, seconds: float) -> None:
        pending = list(self.loop.inflight.values())
        if pending and not self.stopping:
            wait(pending, timeout=seconds, return_when=FIRST_COMPLETED)
        elif not self.stopping:
            self.loop.stop.wait(seconds)
        else:
            time.sleep(min(seconds, 0.2))

    def _shutdown(self) -> None:
        abandoned = self.loop.requests()
        self.backend.close(cancel=True)
        try:
            with self.journal.atomic():
                for rid in abandoned:  # cancelled by us: the attempt is given back
                    entry = self.journal.get(rid)
                    attempts = max(0, entry.attempts - 1) if entry is not None else 0
                    self.journal.transition(rid, J.SEEN, attempts=attempts)
        except J.JournalError:
            pass  # a failed journal: these stay "proving", re-queued by the next start
        self.loop.inflight.clear()
        if abandoned:
            emit("relayer.requeued", requests=abandoned)

    # --- one turn on the chain ---

    def _chain_turn(self, stopping: bool) -> tuple[bool, bool]:
        """Scan, settle, send; returns (caught up with the chain, RPC answered)."""
        try:
            latest = self.oracle.web3.eth.get_block("latest")
            self.loop.head = int(latest["number"])
            self.loop.gas_limit = int(latest["gasLimit"])
            self.loop.head_hash = bytes(latest["hash"]).hex()
            self.loop.head_time = int(latest["timestamp"])
            caught_up = scan.scan(self) if not stopping else True
            if not stopping:
                # Before the turn's other reads (a fifth of a second measured): a worker a
                # finished proof freed, or a request just seen, does not wait for them.
                prove.dispatch(self)
            settle.settle(self)
            settle.recheck(self)
            send.send(self)
        except Exception as e:
            if not is_transient(e):
                raise
            retry_in = self.loop.rpc.failed()
            self.metrics.rpc_error()
            emit(
                "rpc.unavailable",
                logging.WARNING,
                error=type(e).__name__,
                failures=self.loop.rpc.failures,
                retry_in=round(retry_in, 2),
            )
            return False, False
        failures = self.loop.rpc.succeeded()
        if failures:
            emit("rpc.recovered", failures=failures)
        return caught_up, True
