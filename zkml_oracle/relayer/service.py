"""The relayer's chain loop: scan → prove → send → settle, every state change journaled first.

One thread turns the loop; proofs run in the backend's workers, so the loop keeps scanning,
sending and settling while they run. Each turn:

1. *scan*: ``InferenceRequested`` logs of the served models, from the journal's cursor up to
   ``head - confirmations``, recorded with the new cursor in one transaction;
2. *settle*: every signed or sent transaction is resolved from its receipt, or from the
   chain (request status, fulfiller, our account's nonce): fulfilled by us, by someone else,
   rebroadcast (the same raw bytes), or back to "proved" once its nonce was used otherwise;
3. *send*: each proved request still pending on-chain gets a ``fulfill`` transaction, signed
   and journaled before it is broadcast;
4. *dispatch/collect*: requests to prove go to the backend (at most one per worker at a time),
   finished proofs go to the journal.

RPC failures are retried with capped exponential backoff; the loop keeps collecting proofs
meanwhile. SIGTERM stops scanning and proving anything new, lets in-flight work finish for
at most ``drain_timeout`` seconds, and returns.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ZkmlOracleError
from ..types import Manifest
from . import journal as J
from .backend import ProofJob, ProofOutcome, ProverBackend
from .inputs import Rejected, sample_from_felts
from .metrics import Metrics
from .signer import NonceManager, Signer, eip1559_fees
from .watcher import OnChainRequest, OracleClient, RequestStatus, Revert, is_transient

log = logging.getLogger("zkml_oracle.relayer")

#: Test-only fault injection: ``after-broadcast`` makes the relayer SIGKILL itself right after
#: a transaction reached the node and before the journal recorded it as sent.
CRASH_ENV = "ZKML_RELAYER_TEST_CRASH"

#: Blocks scanned per turn at most, so a relayer far behind still settles and sends.
SCAN_STEP = 20_000


@dataclass(frozen=True)
class ServedModel:
    model_id: str
    build_dir: Path
    manifest: Manifest


@dataclass(frozen=True)
class RelayerConfig:
    once: bool = False
    confirmations: int = 0
    workers: int = 1
    poll_interval: float = 0.5
    start_block: int = 0
    receipt_timeout: float = 120.0
    drain_timeout: float = 10.0
    max_attempts: int = 3
    backoff_cap: float = 5.0


@dataclass
class _Run:
    inflight: dict[int, Future[ProofOutcome]] = field(default_factory=dict)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured log record (the formatter writes it as a JSON line). Never a key."""
    log.log(level, event, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(doc, default=str)


class Relayer:
    """One relayer: an oracle, the models it serves, a signer, a backend and a journal."""

    def __init__(
        self,
        *,
        config: RelayerConfig,
        oracle: OracleClient,
        signer: Signer,
        models: dict[str, ServedModel],
        backend: ProverBackend,
        journal: J.Journal,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.signer = signer
        self.models = {k.lower(): v for k, v in models.items()}
        self.backend = backend
        self.journal = journal
        self.metrics = metrics or Metrics()
        self.nonces = NonceManager(lambda: oracle.pending_nonce(signer.address))
        self._run = _Run()
        self._chain_id = int(oracle.web3.eth.chain_id)

    # --- control ---

    def stop(self) -> None:
        """Ask the loop to drain and return (safe from a signal handler)."""
        self._run.stop.set()

    @property
    def stopping(self) -> bool:
        return self._run.stop.is_set()

    def run(self) -> dict[str, Any]:
        """Until stopped (or, with ``once``, until everything pending is final)."""
        run = self._run
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        requeued = self.journal.resume()
        emit(
            "relayer.start",
            relayer=self.signer.address,
            oracle=self.oracle.address,
            models=sorted(self.models),
            requeued=requeued,
            cursor=self.journal.cursor(),
            once=self.config.once,
        )
        drain_deadline: float | None = None
        try:
            while True:
                if self.stopping and drain_deadline is None:
                    drain_deadline = time.monotonic() + self.config.drain_timeout
                    emit("relayer.draining", inflight=sorted(run.inflight))
                caught_up, rpc_ok = self._chain_turn()
                if not self.stopping and rpc_ok:
                    self._dispatch()
                self._collect()
                open_now = self.journal.in_state(*J.OPEN_STATES)
                self.metrics.open_requests(len(open_now))
                if self.stopping:
                    assert drain_deadline is not None
                    busy = [e for e in open_now if e.state != J.SEEN]
                    if not busy or time.monotonic() > drain_deadline:
                        break
                elif self.config.once and caught_up and rpc_ok and not open_now:
                    break
                self._wait(self._delay())
        finally:
            self._shutdown()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        summary = self.journal.summary()
        emit("relayer.stop", counts={k: v for k, v in summary["counts"].items() if v})
        return summary

    def _delay(self) -> float:
        if self._run.failures == 0:
            return self.config.poll_interval
        return float(min(self.config.backoff_cap, 0.25 * 2**self._run.failures))

    def _wait(self, seconds: float) -> None:
        pending = list(self._run.inflight.values())
        if pending and not self.stopping:
            wait(pending, timeout=seconds, return_when=FIRST_COMPLETED)
        elif not self.stopping:
            self._run.stop.wait(seconds)
        else:
            time.sleep(min(seconds, 0.2))

    def _shutdown(self) -> None:
        abandoned = sorted(self._run.inflight)
        self.backend.close(cancel=True)
        for rid in abandoned:
            self.journal.update(rid, state=J.SEEN)
        self._run.inflight.clear()
        if abandoned:
            emit("relayer.requeued", requests=abandoned)

    # --- one turn on the chain ---

    def _chain_turn(self) -> tuple[bool, bool]:
        """Scan, settle, send; returns (caught up with the chain, RPC answered)."""
        try:
            caught_up = self._scan() if not self.stopping else True
            self._settle()
            self._send()
        except Exception as e:
            if not is_transient(e):
                raise
            self._run.failures += 1
            self.metrics.rpc_error()
            emit(
                "rpc.unavailable",
                logging.WARNING,
                error=type(e).__name__,
                failures=self._run.failures,
                retry_in=round(self._delay(), 2),
            )
            return False, False
        if self._run.failures:
            emit("rpc.recovered", failures=self._run.failures)
        self._run.failures = 0
        return caught_up, True

    def _scan(self) -> bool:
        head = self.oracle.head()
        target = head - self.config.confirmations
        cursor = self.journal.cursor()
        first = cursor + 1 if cursor is not None else self.config.start_block
        if target < first:
            return True
        last = min(target, first + SCAN_STEP - 1)
        events = self.oracle.requests_between(first, last, sorted(self.models))
        added = self.journal.record(events, last)
        self.metrics.head(last)
        if added:
            self.metrics.seen(added)
            emit(
                "requests.seen",
                requests=[e.request_id for e in events],
                blocks=[first, last],
            )
        return last == target

    def _finish(self, entry: J.Entry, state: str, **fields: Any) -> None:
        self.journal.finish(entry.request_id, state, **fields)
        latency = time.time() - entry.seen_at if state == J.FULFILLED else None
        self.metrics.finished(state, latency)
        level = logging.WARNING if state in (J.REJECTED, J.FAILED) else logging.INFO
        emit(
            f"request.{state}",
            level,
            request=entry.request_id,
            **{
                k: v
                for k, v in fields.items()
                if k in ("tx_hash", "fulfiller", "error") and v is not None
            },
        )

    def _from_chain(self, entry: J.Entry, req: OnChainRequest) -> bool:
        """Settle a request the chain no longer has pending; False if it still is."""
        if req.status == RequestStatus.PENDING:
            now = int(self.oracle.web3.eth.get_block("latest")["timestamp"])
            if now <= req.deadline:
                return False
            self._finish(entry, J.EXPIRED, error=None)
        elif req.status == RequestStatus.FULFILLED:
            if req.fulfiller.lower() == self.signer.address.lower():
                found = self.oracle.fulfilment(entry.request_id, entry.block_number)
                self._finish(
                    entry,
                    J.FULFILLED,
                    fulfiller=req.fulfiller,
                    tx_hash=found.tx_hash if found else entry.tx_hash,
                    outputs=list(found.outputs) if found else None,
                    error=None,
                )
            else:
                self._finish(entry, J.FULFILLED_BY_OTHER, fulfiller=req.fulfiller, error=None)
        elif req.status == RequestStatus.CANCELLED:
            self._finish(entry, J.CANCELLED)
        else:
            self._finish(entry, J.REJECTED, error="the oracle does not know this request")
        if entry.state in (J.SIGNED, J.SENT):
            self.nonces.resync()  # our transaction may never be mined: its nonce may be free
        return True

    def _settle(self) -> None:
        us = self.signer.address
        for entry in self.journal.in_state(J.SIGNED, J.SENT):
            assert entry.tx_hash is not None and entry.raw_tx is not None
            assert entry.nonce is not None
            receipt = self.oracle.receipt(entry.tx_hash)
            if receipt is not None and int(receipt["status"]) == 1:
                found = self.oracle.fulfilment(entry.request_id, int(receipt["blockNumber"]))
                self._finish(
                    entry,
                    J.FULFILLED,
                    fulfiller=us,
                    outputs=list(found.outputs) if found else None,
                    error=None,
                )
                continue
            req = self.oracle.request(entry.request_id)
            if self._from_chain(entry, req):
                continue
            if receipt is not None:  # reverted, and the request is still pending
                self._retry(entry, J.PROVED, "the fulfill transaction reverted")
                self.nonces.resync()
                continue
            if self.oracle.mined_nonce(us) > entry.nonce:
                # Our nonce went to another transaction: this one can never be mined.
                self.nonces.resync()
                self._retry(entry, J.PROVED, "the transaction was replaced (nonce used)")
                continue
            if not self.oracle.known(entry.tx_hash):
                emit("tx.rebroadcast", request=entry.request_id, tx_hash=entry.tx_hash)
                try:
                    self.oracle.broadcast(entry.raw_tx)
                except Exception as e:
                    if is_transient(e):
                        raise
                    self.nonces.resync()
                    self._retry(entry, J.PROVED, f"rebroadcast refused: {e}")
                    continue
            if entry.state == J.SIGNED:
                self.journal.update(entry.request_id, state=J.SENT)
            elif entry.sent_at and time.time() - entry.sent_at > self.config.receipt_timeout:
                emit(
                    "tx.no_receipt",
                    logging.WARNING,
                    request=entry.request_id,
                    tx_hash=entry.tx_hash,
                    waited=round(time.time() - entry.sent_at, 1),
                )
                self.journal.update(entry.request_id, sent_at=time.time())

    def _retry(self, entry: J.Entry, state: str, error: str) -> None:
        """Back to ``state`` to try again, or failed for good after ``max_attempts``."""
        if entry.attempts >= self.config.max_attempts:
            self._finish(entry, J.FAILED, error=error)
            return
        self.journal.update(
            entry.request_id,
            state=state,
            error=error,
            attempts=entry.attempts + (state == J.PROVED),
            raw_tx=None,
            tx_hash=None,
            nonce=None,
        )
        emit("request.retry", logging.WARNING, request=entry.request_id, to=state, error=error)

    def _send(self) -> None:
        for entry in self.journal.in_state(J.PROVED):
            assert entry.proof is not None and entry.instances is not None
            req = self.oracle.request(entry.request_id)
            if self._from_chain(entry, req):
                continue
            try:
                tx = self.oracle.fulfil_tx(
                    entry.request_id, entry.proof, list(entry.instances), self.signer.address
                )
            except Revert as r:
                if r.name == "ZkmlOracleRequestNotPending":
                    self._from_chain(entry, self.oracle.request(entry.request_id))
                elif r.name == "ZkmlOracleRequestExpired":
                    self._finish(entry, J.EXPIRED)
                else:  # a proof the oracle refuses: prove again, a few times at most
                    self._retry(entry, J.SEEN, str(r))
                continue
            tx.update(
                nonce=self.nonces.take(), chainId=self._chain_id, **eip1559_fees(self.oracle.web3)
            )
            tx.pop("from", None)
            raw, tx_hash = self.signer.sign(tx)
            self.journal.update(
                entry.request_id,
                state=J.SIGNED,
                nonce=tx["nonce"],
                raw_tx=raw,
                tx_hash=tx_hash,
                sent_at=time.time(),
            )
            try:
                self.oracle.broadcast(raw)
            except Exception as e:
                if is_transient(e):
                    raise  # stays "signed": settle rebroadcasts the same bytes
                self.nonces.resync()
                self._retry(entry, J.PROVED, f"the node refused the transaction: {e}")
                continue
            if os.environ.get(CRASH_ENV) == "after-broadcast":
                os.kill(os.getpid(), signal.SIGKILL)
            self.journal.update(entry.request_id, state=J.SENT)
            self.metrics.sent()
            emit("tx.sent", request=entry.request_id, tx_hash=tx_hash, nonce=tx["nonce"])

    # --- proving ---

    def _dispatch(self) -> None:
        run = self._run
        for entry in self.journal.in_state(J.SEEN):
            if len(run.inflight) >= self.config.workers:
                return
            if entry.request_id in run.inflight:
                continue
            model = self.models.get(entry.model_id.lower())
            if model is None:
                self._finish(
                    entry,
                    J.REJECTED,
                    error=f"unknown model {entry.model_id}: this relayer serves "
                    f"{', '.join(sorted(self.models))}",
                )
                continue
            try:
                sample = sample_from_felts(model.manifest, entry.input_felts)
            except Rejected as e:
                self._finish(entry, J.REJECTED, error=str(e))
                continue
            try:
                if self._from_chain(entry, self.oracle.request(entry.request_id)):
                    continue
            except Exception as e:
                if is_transient(e):
                    return
                raise
            self.journal.update(entry.request_id, state=J.PROVING, attempts=entry.attempts + 1)
            job = ProofJob(entry.request_id, model.model_id, str(model.build_dir), sample)
            run.inflight[entry.request_id] = self.backend.submit(job)
            emit("proof.started", request=entry.request_id, attempt=entry.attempts + 1)

    def _collect(self) -> None:
        run = self._run
        for rid, future in list(run.inflight.items()):
            if not future.done():
                continue
            del run.inflight[rid]
            try:
                outcome = future.result()
            except Exception as e:
                outcome = ProofOutcome(rid, error=f"the prover backend failed: {e}")
            entry = self.journal.get(rid)
            assert entry is not None
            if outcome.ok:
                self.journal.update(
                    rid,
                    state=J.PROVED,
                    proof=outcome.proof,
                    instances=list(outcome.instances),
                    prove_seconds=outcome.seconds,
                    proved_at=time.time(),
                    error=None,
                )
                self.metrics.proved(outcome.seconds)
                emit("proof.done", request=rid, seconds=round(outcome.seconds, 3))
            elif outcome.rejected:
                self._finish(entry, J.REJECTED, error=outcome.error)
            elif entry.attempts >= self.config.max_attempts:
                self._finish(entry, J.FAILED, error=outcome.error)
            else:
                self.journal.update(rid, state=J.SEEN, error=outcome.error)
                emit("proof.failed", logging.WARNING, request=rid, error=outcome.error)


class RelayerError(ZkmlOracleError):
    """The relayer cannot start: a model it should serve is not registered, or similar."""
