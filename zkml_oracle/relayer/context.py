"""The relayer's phases share one context: its collaborators (oracle client, signer, backend,
journal, metrics), its settings and the loop's state; and the moves more than one phase makes
on a request (settle it from the chain, retry it, finish it, pause sending).

The phases themselves are :mod:`.phases`: scan, settle, send, prove. :class:`.service.Relayer`
is a :class:`Context` that turns them in a loop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..types import Manifest
from . import journal as J
from .backend import ProofOutcome, ProverBackend
from .inputs import Sample
from .log import emit
from .metrics import Metrics
from .retry import Backoff
from .settings import RelayerSettings
from .signer import NonceManager, Signer
from .watcher import OnChainRequest, OracleClient, RelayerFault, RequestStatus

#: The sample to prove for (manifest, request id, input felts), or :class:`Rejected`.
InputSource = Callable[[Manifest, J.Entry], Sample]

#: Test-only fault injection: the relayer SIGKILLs itself at ``after-proof`` (a proof is in the
#: journal, nothing sent yet) or ``after-broadcast`` (a transaction reached the node, the journal
#: does not record it as sent yet).
CRASH_ENV = "ZKML_RELAYER_TEST_CRASH"


@dataclass(frozen=True)
class ServedModel:
    model_id: str
    build_dir: Path
    manifest: Manifest


@dataclass
class LoopState:
    """What one turn's phases hand to the next and to later turns."""

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
    #: The head block's hash at the last reorg recheck of final fulfilments, and at the last
    #: check of the scan cursor's block, each set once its reads went through (a failed read is
    #: tried again next turn, under the same head).
    rechecked_at: str = ""
    cursor_checked_at: str = ""

    def requests(self) -> list[int]:
        return sorted(rid for ids in self.inflight for rid in ids)


@dataclass(eq=False)
class Context:
    """What every phase reads and changes: one per relayer."""

    config: RelayerSettings
    #: Blocks a fulfilment must be deep to count final (the setting, resolved).
    confirmations: int
    oracle: OracleClient
    signer: Signer
    #: Served models by lower-case model id.
    models: dict[str, ServedModel]
    backend: ProverBackend
    journal: J.Journal
    metrics: Metrics
    nonces: NonceManager
    #: A request's sample: from its felts, or (relayer.private_inputs) its sealed input.
    inputs: InputSource
    chain_id: int
    loop: LoopState


def finish(ctx: Context, entry: J.Entry, state: J.State, **fields: Any) -> None:
    ctx.journal.transition(entry.request_id, state, **fields)
    latency = time.time() - entry.seen_at if state == J.FULFILLED else None
    ctx.metrics.finished(state, latency)
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


def from_chain(ctx: Context, entry: J.Entry, req: OnChainRequest) -> bool:
    """Settle a request the chain no longer has pending; False if it still is."""
    if req.status == RequestStatus.PENDING:
        now = ctx.loop.head_time or int(ctx.oracle.web3.eth.get_block("latest")["timestamp"])
        if now <= req.deadline:
            return False
        finish(ctx, entry, J.EXPIRED, error=None)
    elif req.status == RequestStatus.FULFILLED:
        # Ours only if we had a transaction out for it: the same account used by hand
        # (`zkml-oracle fulfill` with the relayer's key) is someone else's fulfilment.
        sent = entry.state in (J.SIGNED, J.SENT)
        if sent and req.fulfiller.lower() == ctx.signer.address.lower():
            found = ctx.oracle.fulfilment(entry.request_id, entry.block_number)
            finish(
                ctx,
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
            finish(ctx, entry, J.FULFILLED_BY_OTHER, fulfiller=req.fulfiller, error=None)
    elif req.status == RequestStatus.CANCELLED:
        finish(ctx, entry, J.CANCELLED)
    elif ctx.loop.head - entry.block_number <= ctx.config.recheck_window:
        # Seen in a block a reorg orphaned: scanned again, it comes back if re-mined.
        ctx.journal.rewind(min(ctx.journal.cursor() or 0, entry.block_number - 1))
        finish(ctx, entry, J.REJECTED, error="orphaned by a reorg: not on the chain now")
        emit("request.orphaned", logging.WARNING, request=entry.request_id)
    else:
        finish(ctx, entry, J.REJECTED, error="the oracle does not know this request")
    if entry.state in (J.SIGNED, J.SENT):
        ctx.nonces.resync()  # our transaction may never be mined: its nonce may be free
    return True


def retry(
    ctx: Context, entries: list[J.Entry], state: J.State, error: str, *, spend: bool = True
) -> None:
    """Back to ``state`` (``proved``: send the same proof again; ``seen``: prove again), or
    ``failed`` for good after ``max_attempts``. A batch's open requests move together; if
    one of them fails for good, the others are proved again without it (so no transaction
    ever carries a request the journal has given up on). With ``spend`` False (not the
    requests' fault) no attempt is used."""
    exhausted = [e for e in entries if spend and e.attempts >= ctx.config.max_attempts]
    if exhausted and state == J.PROVED and len(entries) > len(exhausted):
        state = J.SEEN
    with ctx.journal.atomic():
        for entry in entries:
            if entry in exhausted:
                finish(ctx, entry, J.FAILED, error=error)
                continue
            fields: dict[str, Any] = {"raw_tx": None, "tx_hash": None, "nonce": None}
            if state == J.SEEN:
                fields.update(batch=None, slot=None, proof=None, instances=None)
            ctx.journal.transition(
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
            requests=ids([e for e in entries if e not in exhausted]),
            to=state,
            error=error,
        )


def pause(ctx: Context, entries: list[J.Entry], fault: RelayerFault) -> None:
    """A node refusal about the relayer: pause sending (capped backoff), raise the alert,
    keep the requests' proofs and attempts (their transaction was never accepted)."""
    run = ctx.loop
    delay = run.pause.failed()
    run.paused_until = time.monotonic() + delay
    run.paused_balance = balance(ctx)
    ctx.nonces.resync()
    with ctx.journal.atomic():
        for entry in entries:
            if entry.state in (J.SIGNED, J.SENT):
                ctx.journal.transition(
                    entry.request_id, J.PROVED, raw_tx=None, tx_hash=None, nonce=None
                )
    ctx.metrics.alert(True)
    ctx.journal.set_meta("alert", f"sending paused: {fault}")
    emit(
        "relayer.paused",
        logging.ERROR,
        error=str(fault),
        retry_in=delay,
        pauses=run.pause.failures,
        requests=ids(entries),
        note="the node refuses our transactions (funds, fees or nonce): attempts are kept",
    )


def balance(ctx: Context) -> int | None:
    """The relayer's balance; None if the node does not answer (the backoff then decides
    when it is tried again)."""
    try:
        return int(ctx.oracle.web3.eth.get_balance(ctx.signer.address))
    except Exception:
        return None


def ids(entries: list[J.Entry]) -> list[int]:
    return [e.request_id for e in entries]


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
