"""Send: one transaction per proof (``fulfill`` or ``fulfillBatch``) for its requests still
pending, signed and journaled before it is broadcast; a refusal the oracle would revert with is
settled here."""

from __future__ import annotations

import time

from .. import journal as J
from ..context import Context, balance, crash_point, finish, from_chain, ids, pause, retry
from ..log import emit
from ..signer import eip1559_fees
from ..watcher import RelayerFault, Revert, is_transient


def send(ctx: Context) -> None:
    if time.monotonic() < ctx.loop.paused_until and not _topped_up(ctx):
        return
    proofs: dict[str, list[J.Entry]] = {}
    for entry in ctx.journal.in_state(J.PROVED):
        assert entry.proof is not None and entry.instances is not None
        proofs.setdefault(entry.batch or f"request:{entry.request_id}", []).append(entry)
    for proved in proofs.values():
        _send_proof(ctx, proved)


def _send_proof(ctx: Context, proved: list[J.Entry]) -> None:
    """Send one proof for its requests still pending; a request of the batch settled
    meanwhile keeps its slot (the contract skips it)."""
    first = proved[0]
    members = ctx.journal.members(first.batch) if first.batch else [first]
    pending = [e for e in proved if not from_chain(ctx, e, ctx.oracle.state(e.request_id))]
    if not pending:
        emit("proof.unneeded", requests=ids(members), note="every request is settled")
        return
    assert first.proof is not None and first.instances is not None
    try:
        if len(members) == 1 and ctx.config.batch_size == 1:
            tx = ctx.oracle.fulfil_tx(
                first.request_id, first.proof, list(first.instances), ctx.signer.address
            )
        else:
            tx = ctx.oracle.fulfil_batch_tx(
                first.model_id,
                ids(members),
                first.proof,
                list(first.instances),
                ctx.signer.address,
            )
    except Revert as r:
        _refused(ctx, pending, r)
        return
    except RelayerFault as fault:
        pause(ctx, pending, fault)
        return
    # Every RPC first, the nonce last: nothing can fail between taking a nonce and
    # journaling the transaction that uses it, so no nonce is left unused.
    tx.update(chainId=ctx.chain_id, **eip1559_fees(ctx.oracle.web3))
    tx.pop("from", None)
    tx["nonce"] = ctx.nonces.take()
    raw, tx_hash = ctx.signer.sign(tx)
    with ctx.journal.atomic():
        for entry in pending:
            ctx.journal.transition(
                entry.request_id,
                J.SIGNED,
                nonce=tx["nonce"],
                raw_tx=raw,
                tx_hash=tx_hash,
                sent_at=time.time(),
            )
    try:
        ctx.oracle.broadcast(raw)
    except RelayerFault as fault:
        pause(ctx, pending, fault)
        return
    except Exception as e:
        if is_transient(e):
            raise  # stays "signed": settle rebroadcasts the same bytes
        ctx.nonces.resync()
        retry(ctx, pending, J.PROVED, f"the node refused the transaction: {e}")
        return
    crash_point("after-broadcast")
    if ctx.loop.pause.succeeded():
        # Accepted again (a top-up may end a pause early): the pause is over.
        ctx.loop.paused_until, ctx.loop.paused_balance = 0.0, None
        ctx.metrics.alert(False)
        ctx.journal.set_meta("alert", "")
        emit("relayer.resumed")
    with ctx.journal.atomic():
        for entry in pending:
            ctx.journal.transition(entry.request_id, J.SENT)
    ctx.metrics.sent()
    emit("tx.sent", requests=ids(pending), tx_hash=tx_hash, nonce=tx["nonce"])


def _topped_up(ctx: Context) -> bool:
    """Whether the relayer's balance rose since sending paused (an operator's top-up): a
    pause for want of funds then ends now, not at the end of its backoff."""
    before = ctx.loop.paused_balance
    now = None if before is None else balance(ctx)
    return before is not None and now is not None and now > before


def _refused(ctx: Context, pending: list[J.Entry], r: Revert) -> None:
    """The oracle would revert our transaction (found by its gas estimate)."""
    if r.name in ("ZkmlOracleRequestNotPending", "ZkmlOracleNothingToSettle"):
        for entry in pending:
            req = ctx.oracle.state(entry.request_id)
            if not from_chain(ctx, entry, req) and r.name == "ZkmlOracleNothingToSettle":
                # Every slot would be skipped, and this one is not settled: it is expired
                # at the next block's time, if not at the last one's.
                finish(ctx, entry, J.EXPIRED, error=None)
    elif r.name == "ZkmlOracleRequestExpired":
        for entry in pending:
            finish(ctx, entry, J.EXPIRED)
    elif r.name == "ZkmlOracleInsufficientCallbackGas" and r.values:
        # One request's callback cannot get its gas in this transaction: that request
        # alone is rejected; the others are proven again without it, attempts kept.
        culprit = int(r.values[0])
        needed = int(r.values[1])
        with ctx.journal.atomic():
            for entry in pending:
                if entry.request_id == culprit:
                    finish(
                        ctx,
                        entry,
                        J.REJECTED,
                        error=f"its callback needs {needed} gas, more than a fulfilment "
                        f"can give it in a block of {ctx.loop.gas_limit} gas",
                    )
            if len(pending) > 1 or culprit not in ids(pending):
                rest = [e for e in pending if e.request_id != culprit]
                retry(ctx, rest, J.SEEN, f"proven again without request {culprit}", spend=False)
    else:  # a proof the oracle refuses: prove again, a few times at most
        retry(ctx, pending, J.SEEN, str(r))
