"""The relayer's chain loop: scan → prove → send → settle, every state change journaled first.

One thread turns the loop; proofs run in the backend's workers, so the loop keeps scanning,
sending and settling while they run. Each turn:

1. *scan*: ``InferenceRequested`` logs of the served models, from the journal's cursor up to
   ``head - confirmations``, recorded with the new cursor in one transaction;
2. *settle*: every signed or sent transaction is resolved from its receipt, or from the
   chain (request status, fulfiller, our account's nonce): fulfilled by us, by someone else,
   rebroadcast (the same raw bytes), or back to "proved" once its nonce was used otherwise;
3. *send*: each proof whose requests are still (partly) pending on-chain gets one
   transaction (``fulfill`` for a lone request, ``fulfillBatch`` for a batch), signed and
   journaled before it is broadcast;
4. *dispatch*: requests to prove go to the backend (at most one job per worker at a time;
   with ``batch_size`` > 1 a job is up to that many requests of one model, started when full
   or when the oldest has waited ``max_wait`` seconds).

Finished proofs are collected into the journal at the start of each turn, so they are sent,
and their workers given the next job, in the same turn.

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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ZkmlOracleError
from ..types import Manifest
from . import journal as J
from .backend import ProofJob, ProofOutcome, ProverBackend
from .inputs import Rejected, Sample, sample_from_felts
from .metrics import Metrics
from .signer import NonceManager, Signer, eip1559_fees
from .watcher import OnChainRequest, OracleClient, RequestStatus, Revert, is_transient

#: The sample to prove for (manifest, request id, input felts), or :class:`Rejected`.
InputSource = Callable[[Manifest, int, tuple[int, ...]], Sample]

log = logging.getLogger("zkml_oracle.relayer")

#: Test-only fault injection: the relayer SIGKILLs itself at ``after-proof`` (a proof is in the
#: journal, nothing sent yet) or ``after-broadcast`` (a transaction reached the node, the journal
#: does not record it as sent yet).
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
    batch_size: int = 1  # requests per proof; > 1: settled with one fulfillBatch
    max_wait: float = 0.0  # seconds the oldest waits for its batch to fill (not with ``once``)
    poll_interval: float = 0.5
    start_block: int = 0
    receipt_timeout: float = 120.0
    drain_timeout: float = 10.0
    max_attempts: int = 3
    backoff_cap: float = 5.0


@dataclass
class _Run:
    #: Proof jobs in the backend, by their requests (slot order).
    inflight: dict[tuple[int, ...], Future[ProofOutcome]] = field(default_factory=dict)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    #: When the oldest request waiting for its batch to fill is due (wall clock), if any.
    due: float | None = None

    def requests(self) -> list[int]:
        return sorted(rid for ids in self.inflight for rid in ids)


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
        inputs: InputSource | None = None,
    ) -> None:
        check_batch_size(models, config.batch_size)
        # A request's sample: from its felts, or (relayer.private_inputs) its sealed input.
        self.inputs: InputSource = inputs or (lambda m, _rid, felts: sample_from_felts(m, felts))
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
            batch_size=self.config.batch_size,
            max_wait=self.config.max_wait,
        )
        drain_deadline: float | None = None
        try:
            while True:
                if self.stopping and drain_deadline is None:
                    drain_deadline = time.monotonic() + self.config.drain_timeout
                    emit("relayer.draining", inflight=run.requests())
                self._collect()  # first: a finished proof is sent, its worker refilled, now
                caught_up, rpc_ok = self._chain_turn()
                if not self.stopping and rpc_ok:
                    self._dispatch()
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
            if self._run.due is not None:  # wake up when a waiting batch is due
                return max(0.0, min(self.config.poll_interval, self._run.due - time.time()))
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
        abandoned = self._run.requests()
        self.backend.close(cancel=True)
        with self.journal.atomic():
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

    # --- settle: what became of the transactions we signed ---

    def _settle(self) -> None:
        by_tx: dict[str, list[J.Entry]] = {}
        for entry in self.journal.in_state(J.SIGNED, J.SENT):
            assert entry.tx_hash is not None and entry.raw_tx is not None
            assert entry.nonce is not None
            by_tx.setdefault(entry.tx_hash, []).append(entry)
        for tx_hash, entries in by_tx.items():
            self._settle_tx(tx_hash, entries)

    def _settle_tx(self, tx_hash: str, entries: list[J.Entry]) -> None:
        """One of our transactions (a request, or the open requests of a batch)."""
        us = self.signer.address
        first = entries[0]
        assert first.raw_tx is not None and first.nonce is not None
        receipt = self.oracle.receipt(tx_hash)
        if receipt is not None and int(receipt["status"]) == 1:
            found = self.oracle.fulfilments_in(receipt)
            for entry in entries:
                ours = found.get(entry.request_id)
                if ours is not None and ours.fulfiller.lower() == us.lower():
                    self._finish(
                        entry, J.FULFILLED, fulfiller=us, outputs=list(ours.outputs), error=None
                    )
                elif not self._from_chain(entry, self.oracle.request(entry.request_id)):
                    # Mined, skipped by the contract, still pending: past its deadline there.
                    self._finish(entry, J.EXPIRED, error=None)
            return
        still = [e for e in entries if not self._from_chain(e, self.oracle.request(e.request_id))]
        if not still:
            return
        if receipt is not None:  # reverted, and requests are still pending
            self.nonces.resync()
            self._retry(still, J.PROVED, "the fulfil transaction reverted")
            return
        if self.oracle.mined_nonce(us) > first.nonce:
            # Our nonce went to another transaction: this one can never be mined.
            self.nonces.resync()
            self._retry(still, J.PROVED, "the transaction was replaced (nonce used)")
            return
        if not self.oracle.known(tx_hash):
            emit("tx.rebroadcast", requests=_ids(still), tx_hash=tx_hash)
            try:
                self.oracle.broadcast(first.raw_tx)
            except Exception as e:
                if is_transient(e):
                    raise
                self.nonces.resync()
                self._retry(still, J.PROVED, f"rebroadcast refused: {e}")
                return
        if first.state == J.SIGNED:
            with self.journal.atomic():
                for entry in still:
                    self.journal.update(entry.request_id, state=J.SENT)
        elif first.sent_at and time.time() - first.sent_at > self.config.receipt_timeout:
            emit(
                "tx.no_receipt",
                logging.WARNING,
                requests=_ids(still),
                tx_hash=tx_hash,
                waited=round(time.time() - first.sent_at, 1),
            )
            with self.journal.atomic():
                for entry in still:
                    self.journal.update(entry.request_id, sent_at=time.time())

    def _retry(self, entries: list[J.Entry], state: str, error: str) -> None:
        """Back to ``state`` (``proved``: send the same proof again; ``seen``: prove again), or
        ``failed`` for good after ``max_attempts``. A batch's open requests move together; if
        one of them fails for good, the others are proved again without it (so no transaction
        ever carries a request the journal has given up on)."""
        exhausted = [e for e in entries if e.attempts >= self.config.max_attempts]
        if exhausted and state == J.PROVED and len(entries) > len(exhausted):
            state = J.SEEN
        with self.journal.atomic():
            for entry in entries:
                if entry in exhausted:
                    self._finish(entry, J.FAILED, error=error)
                    continue
                fields: dict[str, Any] = {"raw_tx": None, "tx_hash": None, "nonce": None}
                if state == J.SEEN:
                    fields.update(batch=None, slot=None, proof=None, instances=None)
                self.journal.update(
                    entry.request_id,
                    state=state,
                    error=error,
                    attempts=entry.attempts + (state == J.PROVED),
                    **fields,
                )
        if len(entries) > len(exhausted):
            emit(
                "request.retry",
                logging.WARNING,
                requests=_ids([e for e in entries if e not in exhausted]),
                to=state,
                error=error,
            )

    # --- send: one transaction per proof ---

    def _send(self) -> None:
        proofs: dict[str, list[J.Entry]] = {}
        for entry in self.journal.in_state(J.PROVED):
            assert entry.proof is not None and entry.instances is not None
            proofs.setdefault(entry.batch or f"request:{entry.request_id}", []).append(entry)
        for proved in proofs.values():
            self._send_proof(proved)

    def _send_proof(self, proved: list[J.Entry]) -> None:
        """Send one proof for its requests still pending; a request of the batch settled
        meanwhile keeps its slot (the contract skips it)."""
        first = proved[0]
        members = self.journal.members(first.batch) if first.batch else [first]
        pending = [e for e in proved if not self._from_chain(e, self.oracle.request(e.request_id))]
        if not pending:
            emit("proof.unneeded", requests=_ids(members), note="every request is settled")
            return
        assert first.proof is not None and first.instances is not None
        try:
            if len(members) == 1 and self.config.batch_size == 1:
                tx = self.oracle.fulfil_tx(
                    first.request_id, first.proof, list(first.instances), self.signer.address
                )
            else:
                tx = self.oracle.fulfil_batch_tx(
                    first.model_id,
                    _ids(members),
                    first.proof,
                    list(first.instances),
                    self.signer.address,
                )
        except Revert as r:
            self._refused(pending, r)
            return
        tx.update(
            nonce=self.nonces.take(), chainId=self._chain_id, **eip1559_fees(self.oracle.web3)
        )
        tx.pop("from", None)
        raw, tx_hash = self.signer.sign(tx)
        with self.journal.atomic():
            for entry in pending:
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
            self._retry(pending, J.PROVED, f"the node refused the transaction: {e}")
            return
        _crash_point("after-broadcast")
        with self.journal.atomic():
            for entry in pending:
                self.journal.update(entry.request_id, state=J.SENT)
        self.metrics.sent()
        emit("tx.sent", requests=_ids(pending), tx_hash=tx_hash, nonce=tx["nonce"])

    def _refused(self, pending: list[J.Entry], r: Revert) -> None:
        """The oracle would revert our transaction (found by its gas estimate)."""
        if r.name in ("ZkmlOracleRequestNotPending", "ZkmlOracleNothingToSettle"):
            for entry in pending:
                req = self.oracle.request(entry.request_id)
                if not self._from_chain(entry, req) and r.name == "ZkmlOracleNothingToSettle":
                    # Every slot would be skipped, and this one is not settled: it is expired
                    # at the next block's time, if not at the last one's.
                    self._finish(entry, J.EXPIRED, error=None)
        elif r.name == "ZkmlOracleRequestExpired":
            for entry in pending:
                self._finish(entry, J.EXPIRED)
        else:  # a proof the oracle refuses: prove again, a few times at most
            self._retry(pending, J.SEEN, str(r))

    # --- proving ---

    def _dispatch(self) -> None:
        """Start proof jobs: with ``batch_size`` 1 each request alone; else, per model, the
        oldest requests up to ``batch_size``, once that many wait or the oldest has waited
        ``max_wait`` seconds (at once with ``once``: nothing more is coming)."""
        run = self._run
        run.due = None
        busy = set(run.requests())
        queues: dict[str, list[tuple[J.Entry, Sample]]] = {}
        for entry in self.journal.in_state(J.SEEN):
            if entry.request_id in busy:
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
                sample = self.inputs(model.manifest, entry.request_id, entry.input_felts)
            except Rejected as e:
                self._finish(entry, J.REJECTED, error=str(e))
                continue
            except Exception as e:
                if is_transient(e):
                    return
                raise
            queues.setdefault(model.model_id, []).append((entry, sample))
        size, wait_for = self.config.batch_size, 0.0 if self.config.once else self.config.max_wait
        for model_id, queue in queues.items():  # the model of the oldest request first
            while queue and len(run.inflight) < self.config.workers:
                due = queue[0][0].seen_at + wait_for
                if len(queue) < size and time.time() < due:
                    run.due = due if run.due is None else min(run.due, due)
                    break
                group: list[tuple[J.Entry, Sample]] = []
                while queue and len(group) < size:
                    entry, sample = queue.pop(0)
                    try:
                        if self._from_chain(entry, self.oracle.request(entry.request_id)):
                            continue
                    except Exception as e:
                        if is_transient(e):
                            return
                        raise
                    group.append((entry, sample))
                if group:
                    self._submit(self.models[model_id], group)

    def _submit(self, model: ServedModel, group: list[tuple[J.Entry, Sample]]) -> None:
        ids = tuple(entry.request_id for entry, _ in group)
        with self.journal.atomic():
            for entry, _ in group:
                self.journal.update(entry.request_id, state=J.PROVING, attempts=entry.attempts + 1)
        job = ProofJob(ids, model.model_id, str(model.build_dir), [sample for _, sample in group])
        self._run.inflight[ids] = self.backend.submit(job)
        emit(
            "proof.started", requests=list(ids), attempts=[entry.attempts + 1 for entry, _ in group]
        )

    def _collect(self) -> None:
        run = self._run
        for ids, future in list(run.inflight.items()):
            if not future.done():
                continue
            del run.inflight[ids]
            try:
                outcome = future.result()
            except Exception as e:
                outcome = ProofOutcome(ids, error=f"the prover backend failed: {e}")
            entries = [self.journal.get(rid) for rid in ids]
            assert all(e is not None for e in entries)
            if outcome.ok:
                key = J.batch_key(outcome.proof)
                with self.journal.atomic():
                    for slot, rid in enumerate(ids):
                        self.journal.update(
                            rid,
                            state=J.PROVED,
                            batch=key,
                            slot=slot,
                            proof=outcome.proof,
                            instances=list(outcome.instances),
                            prove_seconds=outcome.seconds,
                            proved_at=time.time(),
                            error=None,
                        )
                self.metrics.proved(outcome.seconds, len(ids))
                emit("proof.done", requests=list(ids), batch=key, seconds=round(outcome.seconds, 3))
                _crash_point("after-proof")
                continue
            rejected = dict(outcome.rejected)
            with self.journal.atomic():
                for entry in entries:
                    assert entry is not None
                    rid = entry.request_id
                    if rid in rejected:
                        self._finish(entry, J.REJECTED, error=rejected[rid])
                    elif rejected:  # not this one's fault: proved again without the culprits
                        self.journal.update(rid, state=J.SEEN, attempts=entry.attempts - 1)
                    elif entry.attempts >= self.config.max_attempts:
                        self._finish(entry, J.FAILED, error=outcome.error)
                    else:
                        self.journal.update(rid, state=J.SEEN, error=outcome.error)
            if not rejected:
                emit("proof.failed", logging.WARNING, requests=list(ids), error=outcome.error)


def _ids(entries: list[J.Entry]) -> list[int]:
    return [e.request_id for e in entries]


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class RelayerError(ZkmlOracleError):
    """The relayer cannot start: a model it should serve is not registered, or similar."""
