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

The phases are methods over one context (``_Run``: in-flight jobs, head, backoffs, pause):
collect (``_collect``) → watch (``_scan``) → confirm (``_settle``, ``_recheck``) → submit
(``_send``) → prove (``_dispatch``). Every state change goes through
:meth:`~.journal.Journal.transition`; the retry policy is :mod:`.retry`, the log :mod:`.log`.

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
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import RelayerError as RelayerError  # defined there, importable here too
from ..types import Manifest
from . import journal as J
from . import policy
from .backend import ProofJob, ProofOutcome, ProverBackend
from .inputs import Rejected, Sample, sample_from_felts
from .log import emit
from .metrics import Metrics
from .retry import Backoff
from .settings import RelayerSettings
from .signer import NonceManager, Signer, bumped_fees, eip1559_fees
from .watcher import (
    OnChainRequest,
    OracleClient,
    RelayerFault,
    RequestStatus,
    Revert,
    is_transient,
)

#: The sample to prove for (manifest, request id, input felts), or :class:`Rejected`.
InputSource = Callable[[Manifest, J.Entry], Sample]


#: Test-only fault injection: the relayer SIGKILLs itself at ``after-proof`` (a proof is in the
#: journal, nothing sent yet) or ``after-broadcast`` (a transaction reached the node, the journal
#: does not record it as sent yet).
CRASH_ENV = "ZKML_RELAYER_TEST_CRASH"

#: Blocks scanned per turn at most, so a relayer far behind still settles and sends.
SCAN_STEP = 20_000

#: The oracle's gas overhead around a callback (``CALLBACK_GAS_OVERHEAD`` in ZkmlOracle.sol,
#: with margin).
CALLBACK_OVERHEAD = 50_000


@dataclass(frozen=True)
class ServedModel:
    model_id: str
    build_dir: Path
    manifest: Manifest


@dataclass
class _Run:
    """The loop's context: what one turn's phases hand to the next and to later turns."""

    #: The RPC endpoint's failures in a row (the whole turn backs off).
    rpc: Backoff
    #: Node refusals about the relayer in a row (sending backs off).
    pause: Backoff
    #: Proof jobs in the backend, by their requests (slot order).
    inflight: dict[tuple[int, ...], Future[ProofOutcome]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    #: When the oldest request waiting for its batch to fill is due (wall clock), if any.
    due: float | None = None
    #: Sending paused (a node refusal about the relayer) until this monotonic time.
    paused_until: float = 0.0
    #: The relayer's balance when sending paused: a top-up ends the pause at once.
    paused_balance: int | None = None
    #: The chain's head and block gas limit, read once per turn.
    head: int = 0
    gas_limit: int = 0
    head_hash: str = ""
    head_time: int = 0
    #: The head block's hash at the last reorg recheck of final fulfilments.
    rechecked_at: str = ""

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


class Relayer:
    """One relayer: an oracle, the models it serves, a signer, a backend and a journal."""

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
        # A request's sample: from its felts, or (relayer.private_inputs) its sealed input.
        self.inputs: InputSource = inputs or (lambda m, e: sample_from_felts(m, e.input_felts))
        self.config = config
        self.confirmations = config.confirmations or 0
        self.oracle = oracle
        self.signer = signer
        self.models = {k.lower(): v for k, v in models.items()}
        self.backend = backend
        self.journal = journal
        self.metrics = metrics or Metrics()
        self.nonces = NonceManager(lambda: oracle.pending_nonce(signer.address))
        self._run = _Run(
            rpc=Backoff(0.25, config.backoff_cap),
            pause=Backoff(1.0, config.pause_cap),
            stop=stop or threading.Event(),
        )
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
                    emit("relayer.draining", inflight=run.requests())
                self.journal.check()
                self._collect()  # first: a finished proof is sent, its worker refilled, now
                caught_up, rpc_ok = self._chain_turn(stopping)
                if not stopping and rpc_ok:
                    self._dispatch()
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
        if self._run.rpc.failures == 0:
            if self._run.due is not None:  # wake up when a waiting batch is due
                return max(0.0, min(self.config.poll_interval, self._run.due - time.time()))
            return self.config.poll_interval
        return self._run.rpc.delay()

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
        try:
            with self.journal.atomic():
                for rid in abandoned:  # cancelled by us: the attempt is given back
                    entry = self.journal.get(rid)
                    attempts = max(0, entry.attempts - 1) if entry is not None else 0
                    self.journal.transition(rid, J.SEEN, attempts=attempts)
        except J.JournalError:
            pass  # a failed journal: these stay "proving", re-queued by the next start
        self._run.inflight.clear()
        if abandoned:
            emit("relayer.requeued", requests=abandoned)

    # --- one turn on the chain ---

    def _chain_turn(self, stopping: bool) -> tuple[bool, bool]:
        """Scan, settle, send; returns (caught up with the chain, RPC answered)."""
        try:
            latest = self.oracle.web3.eth.get_block("latest")
            self._run.head = int(latest["number"])
            self._run.gas_limit = int(latest["gasLimit"])
            self._run.head_hash = bytes(latest["hash"]).hex()
            self._run.head_time = int(latest["timestamp"])
            caught_up = self._scan() if not stopping else True
            self._settle()
            self._recheck()
            self._send()
        except Exception as e:
            if not is_transient(e):
                raise
            retry_in = self._run.rpc.failed()
            self.metrics.rpc_error()
            emit(
                "rpc.unavailable",
                logging.WARNING,
                error=type(e).__name__,
                failures=self._run.rpc.failures,
                retry_in=round(retry_in, 2),
            )
            return False, False
        failures = self._run.rpc.succeeded()
        if failures:
            emit("rpc.recovered", failures=failures)
        return caught_up, True

    def _scan(self) -> bool:
        head = self._run.head
        target = head - self.confirmations
        cursor = self.journal.cursor()
        cursor_hash = self.journal.meta("cursor_hash")
        if (
            cursor is not None
            and cursor_hash is not None
            and self.oracle.block_hash(cursor) != cursor_hash
        ):
            # The block scanned last is not canonical any more: scan the new branch.
            back = max(self.config.start_block, min(cursor, head) - self.config.recheck_window)
            self.journal.rewind(back - 1)
            self.metrics.reorg()
            emit("chain.reorg", logging.WARNING, cursor=cursor, head=head, rescan_from=back)
            cursor = back - 1
        first = cursor + 1 if cursor is not None else self.config.start_block
        if target < first:
            return True
        last = min(target, first + SCAN_STEP - 1)
        events = self.oracle.requests_between(first, last)
        added = self.journal.record(
            events, last, self.oracle.block_hash(last), lambda m: m in self.models
        )
        self.metrics.head(last)
        if added:
            self.metrics.seen(added)
            emit(
                "requests.seen",
                requests=[e.request_id for e in events],
                blocks=[first, last],
            )
        return last == target

    def _finish(self, entry: J.Entry, state: J.State, **fields: Any) -> None:
        self.journal.transition(entry.request_id, state, **fields)
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
            now = self._run.head_time or int(self.oracle.web3.eth.get_block("latest")["timestamp"])
            if now <= req.deadline:
                return False
            self._finish(entry, J.EXPIRED, error=None)
        elif req.status == RequestStatus.FULFILLED:
            # Ours only if we had a transaction out for it: the same account used by hand
            # (`zkml-oracle fulfill` with the relayer's key) is someone else's fulfilment.
            sent = entry.state in (J.SIGNED, J.SENT)
            if sent and req.fulfiller.lower() == self.signer.address.lower():
                found = self.oracle.fulfilment(entry.request_id, entry.block_number)
                self._finish(
                    entry,
                    J.FULFILLED,
                    fulfiller=req.fulfiller,
                    tx_hash=found.tx_hash if found else entry.tx_hash,
                    outputs=list(found.outputs) if found else None,
                    tx_block=found.block_number if found else None,
                    tx_block_hash=found.block_hash if found else None,
                    error=None,
                )
            else:
                self._finish(entry, J.FULFILLED_BY_OTHER, fulfiller=req.fulfiller, error=None)
        elif req.status == RequestStatus.CANCELLED:
            self._finish(entry, J.CANCELLED)
        elif self._run.head - entry.block_number <= self.config.recheck_window:
            # Seen in a block a reorg orphaned: scanned again, it comes back if re-mined.
            self.journal.rewind(min(self.journal.cursor() or 0, entry.block_number - 1))
            self._finish(entry, J.REJECTED, error="orphaned by a reorg: not on the chain now")
            emit("request.orphaned", logging.WARNING, request=entry.request_id)
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
        self._fill_gaps()

    def _settle_tx(self, tx_hash: str, entries: list[J.Entry], again: bool = True) -> None:
        """One of our transactions (a request, or the open requests of a batch)."""
        us = self.signer.address
        first = entries[0]
        assert first.raw_tx is not None and first.nonce is not None
        receipt = self.oracle.receipt(tx_hash)
        if receipt is not None and int(receipt["status"]) == 1:
            if int(receipt["blockNumber"]) > self._run.head - self.confirmations:
                self._mark_sent(first, entries)  # mined, not yet final: a reorg may undo it
                return
            block_hash = "0x" + bytes(receipt["blockHash"]).hex()
            found = self.oracle.fulfilments_in(receipt)
            for entry in entries:
                ours = found.get(entry.request_id)
                if ours is not None and ours.fulfiller.lower() == us.lower():
                    self._finish(
                        entry,
                        J.FULFILLED,
                        fulfiller=us,
                        outputs=list(ours.outputs),
                        tx_block=int(receipt["blockNumber"]),
                        tx_block_hash=block_hash,
                        error=None,
                    )
                elif not self._from_chain(entry, self.oracle.state(entry.request_id)):
                    # Mined, skipped by the contract, still pending: past its deadline there.
                    self._finish(entry, J.EXPIRED, error=None)
            return
        still = [e for e in entries if not self._from_chain(e, self.oracle.state(e.request_id))]
        if not still:
            return
        if receipt is not None:  # reverted, and requests are still pending
            self.nonces.resync()
            self._retry(still, J.PROVED, "the fulfil transaction reverted")
            return
        if self.oracle.mined_nonce(us) > first.nonce:
            if again:  # mined between the receipt lookup and the nonce's: look once more
                self._settle_tx(tx_hash, still, again=False)
                return
            # Our nonce went to another transaction: this one can never be mined. Not the
            # requests' fault: their attempts are kept.
            self.nonces.resync()
            self._retry(still, J.PROVED, "the transaction was replaced (nonce used)", spend=False)
            return
        if not self.oracle.known(tx_hash):
            emit("tx.rebroadcast", requests=_ids(still), tx_hash=tx_hash)
            try:
                self.oracle.broadcast(first.raw_tx)
            except RelayerFault as fault:
                self._pause(still, fault)
                return
            except Exception as e:
                if is_transient(e):
                    raise
                self.nonces.resync()
                self._retry(still, J.PROVED, f"rebroadcast refused: {e}")
                return
        self._mark_sent(first, still)
        if first.sent_at and time.time() - first.sent_at > self.config.receipt_timeout:
            self._replace(still)

    def _mark_sent(self, first: J.Entry, entries: list[J.Entry]) -> None:
        if first.state == J.SIGNED:
            with self.journal.atomic():
                for entry in entries:
                    self.journal.transition(entry.request_id, J.SENT)

    def _replace(self, entries: list[J.Entry]) -> None:
        """A transaction without a receipt for ``receipt_timeout``: the same call at the same
        nonce with fees bumped past the node's replacement rule (EIP-1559: both caps +12.5 %),
        journaled before it is broadcast. Either one may be mined; settling reads the outcome
        from the chain."""
        first = entries[0]
        assert first.raw_tx is not None and first.tx_hash is not None
        raw, tx_hash, fees = self.signer.replace(first.raw_tx, bumped_fees(self.oracle.web3))
        emit(
            "tx.replaced",
            logging.WARNING,
            requests=_ids(entries),
            old=first.tx_hash,
            tx_hash=tx_hash,
            waited=round(time.time() - (first.sent_at or time.time()), 1),
            **fees,
        )
        with self.journal.atomic():
            for entry in entries:
                self.journal.transition(
                    entry.request_id,
                    J.SIGNED,
                    raw_tx=raw,
                    tx_hash=tx_hash,
                    sent_at=time.time(),
                )
        try:
            self.oracle.broadcast(raw)
        except RelayerFault as fault:
            emit("tx.replacement_refused", logging.WARNING, error=str(fault))
        except Exception as e:
            if is_transient(e):
                raise
            emit("tx.replacement_refused", logging.WARNING, error=str(e)[:300])

    def _fill_gaps(self) -> None:
        """Every nonce accounted for: if the lowest nonce the journal waits on is above the
        chain's mined count and nothing fills the nonces between (a transaction dropped by a
        reorg, a node that lost its pool), fill each with a no-op self-transfer."""
        waiting = [e.nonce for e in self.journal.in_state(J.SIGNED, J.SENT) if e.nonce is not None]
        if not waiting:
            return
        us = self.signer.address
        mined = self.oracle.mined_nonce(us)
        lowest = min(waiting)
        if mined >= lowest:
            return
        fees = eip1559_fees(self.oracle.web3)
        for nonce in range(mined, lowest):
            tx = {"to": us, "value": 0, "gas": 21_000, "nonce": nonce, "chainId": self._chain_id}
            raw, tx_hash = self.signer.sign({**tx, **fees})
            try:
                self.oracle.broadcast(raw)
            except Exception as e:
                if is_transient(e):
                    raise
                emit("nonce.fill_refused", logging.WARNING, nonce=nonce, error=str(e)[:300])
                continue
            self.metrics.gap_filled()
            emit("nonce.gap_filled", logging.WARNING, nonce=nonce, tx_hash=tx_hash)

    def _recheck(self) -> None:
        """Final fulfilments of the last ``recheck_window`` blocks, against the canonical chain
        by block hash: one whose block vanished went with a reorg deeper than
        ``confirmations``. Reported loudly; each request is settled from the chain again (its
        fulfilment re-mined elsewhere) or sent again."""
        head = self._run.head
        if self._run.head_hash == self._run.rechecked_at:
            return  # the same head block as last turn: nothing new to compare
        self._run.rechecked_at = self._run.head_hash
        blocks: dict[tuple[int, str], list[J.Entry]] = {}
        for entry in self.journal.fulfilled_since(head - self.config.recheck_window):
            if entry.tx_block is not None and entry.tx_block_hash is not None:
                blocks.setdefault((entry.tx_block, entry.tx_block_hash), []).append(entry)
        for (number, block_hash), entries in sorted(blocks.items()):
            if self.oracle.block_hash(number) == block_hash:
                continue
            requeued: list[int] = []
            for entry in entries:
                req = self.oracle.state(entry.request_id)
                if req.status == RequestStatus.PENDING:
                    self.journal.transition(
                        entry.request_id,
                        J.PROVED,
                        raw_tx=None,
                        tx_hash=None,
                        nonce=None,
                        tx_block=None,
                        tx_block_hash=None,
                        fulfiller=None,
                        outputs=None,
                        done_at=None,
                        error=f"orphaned by a reorg (block {number} {block_hash[:10]})",
                    )
                    requeued.append(entry.request_id)
                else:  # re-mined on the new branch, or settled there otherwise
                    self.journal.update(entry.request_id, tx_block=None, tx_block_hash=None)
                    self._from_chain(entry, req)
            depth = max(1, self.confirmations + 1, head - number + 1)
            self.nonces.resync()
            self.metrics.deep_reorg()
            self.journal.deep_reorg(number, depth, requeued)
            emit(
                "chain.deep_reorg",
                logging.ERROR,
                block=number,
                block_hash=block_hash,
                confirmations=self.confirmations,
                requests=_ids(entries),
                requeued=requeued,
                note="a fulfilment counted final was orphaned: raise --confirmations",
            )

    def _retry(
        self, entries: list[J.Entry], state: J.State, error: str, *, spend: bool = True
    ) -> None:
        """Back to ``state`` (``proved``: send the same proof again; ``seen``: prove again), or
        ``failed`` for good after ``max_attempts``. A batch's open requests move together; if
        one of them fails for good, the others are proved again without it (so no transaction
        ever carries a request the journal has given up on). With ``spend`` False (not the
        requests' fault) no attempt is used."""
        exhausted = [e for e in entries if spend and e.attempts >= self.config.max_attempts]
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
                self.journal.transition(
                    entry.request_id,
                    state,
                    error=error,
                    attempts=entry.attempts + (spend and state == J.PROVED),
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
        if time.monotonic() < self._run.paused_until and not self._topped_up():
            return
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
        pending = [e for e in proved if not self._from_chain(e, self.oracle.state(e.request_id))]
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
        except RelayerFault as fault:
            self._pause(pending, fault)
            return
        # Every RPC first, the nonce last: nothing can fail between taking a nonce and
        # journaling the transaction that uses it, so no nonce is left unused.
        tx.update(chainId=self._chain_id, **eip1559_fees(self.oracle.web3))
        tx.pop("from", None)
        tx["nonce"] = self.nonces.take()
        raw, tx_hash = self.signer.sign(tx)
        with self.journal.atomic():
            for entry in pending:
                self.journal.transition(
                    entry.request_id,
                    J.SIGNED,
                    nonce=tx["nonce"],
                    raw_tx=raw,
                    tx_hash=tx_hash,
                    sent_at=time.time(),
                )
        try:
            self.oracle.broadcast(raw)
        except RelayerFault as fault:
            self._pause(pending, fault)
            return
        except Exception as e:
            if is_transient(e):
                raise  # stays "signed": settle rebroadcasts the same bytes
            self.nonces.resync()
            self._retry(pending, J.PROVED, f"the node refused the transaction: {e}")
            return
        _crash_point("after-broadcast")
        if self._run.pause.succeeded():
            # Accepted again (a top-up may end a pause early): the pause is over.
            self._run.paused_until, self._run.paused_balance = 0.0, None
            self.metrics.alert(False)
            self.journal.set_meta("alert", "")
            emit("relayer.resumed")
        with self.journal.atomic():
            for entry in pending:
                self.journal.transition(entry.request_id, J.SENT)
        self.metrics.sent()
        emit("tx.sent", requests=_ids(pending), tx_hash=tx_hash, nonce=tx["nonce"])

    def _balance(self) -> int | None:
        """The relayer's balance; None if the node does not answer (the backoff then decides
        when it is tried again)."""
        try:
            return int(self.oracle.web3.eth.get_balance(self.signer.address))
        except Exception:
            return None

    def _topped_up(self) -> bool:
        """Whether the relayer's balance rose since sending paused (an operator's top-up): a
        pause for want of funds then ends now, not at the end of its backoff."""
        before = self._run.paused_balance
        now = None if before is None else self._balance()
        return before is not None and now is not None and now > before

    def _pause(self, entries: list[J.Entry], fault: RelayerFault) -> None:
        """A node refusal about the relayer: pause sending (capped backoff), raise the alert,
        keep the requests' proofs and attempts (their transaction was never accepted)."""
        run = self._run
        delay = run.pause.failed()
        run.paused_until = time.monotonic() + delay
        run.paused_balance = self._balance()
        self.nonces.resync()
        with self.journal.atomic():
            for entry in entries:
                if entry.state in (J.SIGNED, J.SENT):
                    self.journal.transition(
                        entry.request_id, J.PROVED, raw_tx=None, tx_hash=None, nonce=None
                    )
        self.metrics.alert(True)
        self.journal.set_meta("alert", f"sending paused: {fault}")
        emit(
            "relayer.paused",
            logging.ERROR,
            error=str(fault),
            retry_in=delay,
            pauses=run.pause.failures,
            requests=_ids(entries),
            note="the node refuses our transactions (funds, fees or nonce): attempts are kept",
        )

    def _refused(self, pending: list[J.Entry], r: Revert) -> None:
        """The oracle would revert our transaction (found by its gas estimate)."""
        if r.name in ("ZkmlOracleRequestNotPending", "ZkmlOracleNothingToSettle"):
            for entry in pending:
                req = self.oracle.state(entry.request_id)
                if not self._from_chain(entry, req) and r.name == "ZkmlOracleNothingToSettle":
                    # Every slot would be skipped, and this one is not settled: it is expired
                    # at the next block's time, if not at the last one's.
                    self._finish(entry, J.EXPIRED, error=None)
        elif r.name == "ZkmlOracleRequestExpired":
            for entry in pending:
                self._finish(entry, J.EXPIRED)
        elif r.name == "ZkmlOracleInsufficientCallbackGas" and r.values:
            # One request's callback cannot get its gas in this transaction: that request
            # alone is rejected; the others are proven again without it, attempts kept.
            culprit = int(r.values[0])
            needed = int(r.values[1])
            with self.journal.atomic():
                for entry in pending:
                    if entry.request_id == culprit:
                        self._finish(
                            entry,
                            J.REJECTED,
                            error=f"its callback needs {needed} gas, more than a fulfilment "
                            f"can give it in a block of {self._run.gas_limit} gas",
                        )
                if len(pending) > 1 or culprit not in _ids(pending):
                    rest = [e for e in pending if e.request_id != culprit]
                    self._retry(
                        rest, J.SEEN, f"proven again without request {culprit}", spend=False
                    )
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
            if model is None:  # served by an earlier run, not by this one
                self._finish(entry, J.IGNORED, error=None)
                continue
            try:
                self._check_affordable(entry)
                sample = self.inputs(model.manifest, entry)
            except Rejected as e:
                self._finish(entry, J.REJECTED, error=str(e))
                continue
            except Exception as e:
                if is_transient(e):  # a sealed input's lookup: this request waits a turn
                    continue
                raise
            queues.setdefault(model.model_id, []).append((entry, sample))
        size, wait_for = self.config.batch_size, 0.0 if self.config.once else self.config.max_wait
        for model_id, queue in queues.items():  # the model of the oldest request first
            while queue and len(run.inflight) < self.config.workers:
                due = queue[0][0].seen_at + wait_for
                if self.config.adaptive_batches and not self.config.once:
                    decision = policy.decide(
                        [e.seen_at for e, _ in queue], size, wait_for, time.time()
                    )
                    if decision.size == 0:
                        run.due = due if run.due is None else min(run.due, due)
                        break
                elif len(queue) < size and time.time() < due:
                    run.due = due if run.due is None else min(run.due, due)
                    break
                group: list[tuple[J.Entry, Sample]] = []
                gas = self.config.fulfil_gas_reserve
                while queue and len(group) < size:
                    # The callbacks of one batch must fit one block together.
                    if group and gas + self._callback_need(queue[0][0]) > self._run.gas_limit:
                        break
                    entry, sample = queue.pop(0)
                    gas += self._callback_need(entry)
                    try:
                        if self._from_chain(entry, self.oracle.state(entry.request_id)):
                            continue
                    except Exception as e:
                        if is_transient(e):
                            continue  # checked again next turn; the others go ahead
                        raise
                    group.append((entry, sample))
                if group:
                    self._submit(self.models[model_id], group)

    def _callback_need(self, entry: J.Entry) -> int:
        """Gas the oracle must hold back for a request's callback (63/64 rule, as it checks)."""
        return entry.callback_gas + entry.callback_gas // 63 + CALLBACK_OVERHEAD

    def _check_affordable(self, entry: J.Entry) -> None:
        """Refuse, before any proving, a request that pays less than ``min_fee`` or whose
        callback could never get its gas in a block (a proof would be wasted on it)."""
        if entry.fee < self.config.min_fee:
            raise Rejected(
                f"fee too low: {entry.fee} wei escrowed, this relayer proves for at least "
                f"{self.config.min_fee} wei (relay --min-fee)"
            )
        need = self._callback_need(entry) + self.config.fulfil_gas_reserve
        limit = self._run.gas_limit or self.oracle.gas_limit()
        if (
            entry.callback_gas
            and need > limit
            and entry.callback
            and self.oracle.has_code(entry.callback)
        ):
            raise Rejected(
                f"callback gas cannot fit a block: callbackGasLimit {entry.callback_gas} needs "
                f"about {need} gas with the fulfilment, the block gas limit is {limit}"
            )

    def _submit(self, model: ServedModel, group: list[tuple[J.Entry, Sample]]) -> None:
        ids = tuple(entry.request_id for entry, _ in group)
        with self.journal.atomic():
            for entry, _ in group:
                self.journal.transition(entry.request_id, J.PROVING, attempts=entry.attempts + 1)
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
                        self.journal.transition(
                            rid,
                            J.PROVED,
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
                        self.journal.transition(rid, J.SEEN, attempts=entry.attempts - 1)
                    elif entry.attempts >= self.config.max_attempts:
                        self._finish(entry, J.FAILED, error=outcome.error)
                    else:
                        self.journal.transition(rid, J.SEEN, error=outcome.error)
            if not rejected:
                emit("proof.failed", logging.WARNING, requests=list(ids), error=outcome.error)


def _ids(entries: list[J.Entry]) -> list[int]:
    return [e.request_id for e in entries]


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
