"""Settle: what became of the transactions we signed (receipt, chain state, our nonce), and
the reorg recheck of final fulfilments; replacement of a stuck transaction and no-op fills of
nonce gaps."""

from __future__ import annotations

import logging
import time

from .. import journal as J
from ..context import Context, finish, from_chain, ids, pause, retry
from ..log import emit
from ..signer import bumped_fees, eip1559_fees
from ..watcher import RelayerFault, RequestStatus, is_transient


def settle(ctx: Context) -> None:
    by_tx: dict[str, list[J.Entry]] = {}
    for entry in ctx.journal.in_state(J.SIGNED, J.SENT):
        assert entry.tx_hash is not None and entry.raw_tx is not None
        assert entry.nonce is not None
        by_tx.setdefault(entry.tx_hash, []).append(entry)
    for tx_hash, entries in by_tx.items():
        _settle_tx(ctx, tx_hash, entries)
    _fill_gaps(ctx)


def _settle_tx(ctx: Context, tx_hash: str, entries: list[J.Entry], again: bool = True) -> None:
    """One of our transactions (a request, or the open requests of a batch)."""
    us = ctx.signer.address
    first = entries[0]
    assert first.raw_tx is not None and first.nonce is not None
    receipt = ctx.oracle.receipt(tx_hash)
    if receipt is not None and int(receipt["status"]) == 1:
        if int(receipt["blockNumber"]) > ctx.loop.head - ctx.confirmations:
            _mark_sent(ctx, first, entries)  # mined, not yet final: a reorg may undo it
            return
        block_hash = "0x" + bytes(receipt["blockHash"]).hex()
        found = ctx.oracle.fulfilments_in(receipt)
        for entry in entries:
            ours = found.get(entry.request_id)
            if ours is not None and ours.fulfiller.lower() == us.lower():
                finish(
                    ctx,
                    entry,
                    J.FULFILLED,
                    fulfiller=us,
                    outputs=list(ours.outputs),
                    tx_block=int(receipt["blockNumber"]),
                    tx_block_hash=block_hash,
                    error=None,
                )
            elif not from_chain(ctx, entry, ctx.oracle.state(entry.request_id)):
                # Mined, skipped by the contract, still pending: past its deadline there.
                finish(ctx, entry, J.EXPIRED, error=None)
        return
    still = [e for e in entries if not from_chain(ctx, e, ctx.oracle.state(e.request_id))]
    if not still:
        return
    if receipt is not None:  # reverted, and requests are still pending
        ctx.nonces.resync()
        retry(ctx, still, J.PROVED, "the fulfil transaction reverted")
        return
    if ctx.oracle.mined_nonce(us) > first.nonce:
        if again:  # mined between the receipt lookup and the nonce's: look once more
            _settle_tx(ctx, tx_hash, still, again=False)
            return
        # Our nonce went to another transaction: this one can never be mined. Not the
        # requests' fault: their attempts are kept.
        ctx.nonces.resync()
        retry(ctx, still, J.PROVED, "the transaction was replaced (nonce used)", spend=False)
        return
    if not ctx.oracle.known(tx_hash):
        emit("tx.rebroadcast", requests=ids(still), tx_hash=tx_hash)
        try:
            ctx.oracle.broadcast(first.raw_tx)
        except RelayerFault as fault:
            pause(ctx, still, fault)
            return
        except Exception as e:
            if is_transient(e):
                raise
            ctx.nonces.resync()
            retry(ctx, still, J.PROVED, f"rebroadcast refused: {e}")
            return
    _mark_sent(ctx, first, still)
    if first.sent_at and time.time() - first.sent_at > ctx.config.receipt_timeout:
        _replace(ctx, still)


def _mark_sent(ctx: Context, first: J.Entry, entries: list[J.Entry]) -> None:
    if first.state == J.SIGNED:
        with ctx.journal.atomic():
            for entry in entries:
                ctx.journal.transition(entry.request_id, J.SENT)


def _replace(ctx: Context, entries: list[J.Entry]) -> None:
    """A transaction without a receipt for ``receipt_timeout``: the same call at the same
    nonce with fees bumped past the node's replacement rule (EIP-1559: both caps +12.5 %),
    journaled before it is broadcast. Either one may be mined; settling reads the outcome
    from the chain."""
    first = entries[0]
    assert first.raw_tx is not None and first.tx_hash is not None
    raw, tx_hash, fees = ctx.signer.replace(first.raw_tx, bumped_fees(ctx.oracle.web3))
    emit(
        "tx.replaced",
        logging.WARNING,
        requests=ids(entries),
        old=first.tx_hash,
        tx_hash=tx_hash,
        waited=round(time.time() - (first.sent_at or time.time()), 1),
        **fees,
    )
    with ctx.journal.atomic():
        for entry in entries:
            ctx.journal.transition(
                entry.request_id,
                J.SIGNED,
                raw_tx=raw,
                tx_hash=tx_hash,
                sent_at=time.time(),
            )
    try:
        ctx.oracle.broadcast(raw)
    except RelayerFault as fault:
        emit("tx.replacement_refused", logging.WARNING, error=str(fault))
    except Exception as e:
        if is_transient(e):
            raise
        emit("tx.replacement_refused", logging.WARNING, error=str(e)[:300])


def _fill_gaps(ctx: Context) -> None:
    """Every nonce accounted for: if the lowest nonce the journal waits on is above the
    chain's mined count and nothing fills the nonces between (a transaction dropped by a
    reorg, a node that lost its pool), fill each with a no-op self-transfer."""
    waiting = [e.nonce for e in ctx.journal.in_state(J.SIGNED, J.SENT) if e.nonce is not None]
    if not waiting:
        return
    us = ctx.signer.address
    mined = ctx.oracle.mined_nonce(us)
    lowest = min(waiting)
    if mined >= lowest:
        return
    fees = eip1559_fees(ctx.oracle.web3)
    for nonce in range(mined, lowest):
        tx = {"to": us, "value": 0, "gas": 21_000, "nonce": nonce, "chainId": ctx.chain_id}
        raw, tx_hash = ctx.signer.sign({**tx, **fees})
        try:
            ctx.oracle.broadcast(raw)
        except Exception as e:
            if is_transient(e):
                raise
            emit("nonce.fill_refused", logging.WARNING, nonce=nonce, error=str(e)[:300])
            continue
        ctx.metrics.gap_filled()
        emit("nonce.gap_filled", logging.WARNING, nonce=nonce, tx_hash=tx_hash)


def recheck(ctx: Context) -> None:
    """Final fulfilments of the last ``recheck_window`` blocks, against the canonical chain
    by block hash: one whose block vanished went with a reorg deeper than
    ``confirmations``. Reported loudly; each request is settled from the chain again (its
    fulfilment re-mined elsewhere) or sent again."""
    head = ctx.loop.head
    if ctx.loop.head_hash == ctx.loop.rechecked_at:
        return  # the same head block as last turn: nothing new to compare
    blocks: dict[tuple[int, str], list[J.Entry]] = {}
    for entry in ctx.journal.fulfilled_since(head - ctx.config.recheck_window):
        if entry.tx_block is not None and entry.tx_block_hash is not None:
            blocks.setdefault((entry.tx_block, entry.tx_block_hash), []).append(entry)
    for (number, block_hash), entries in sorted(blocks.items()):
        if ctx.oracle.block_hash(number) == block_hash:
            continue
        requeued: list[int] = []
        for entry in entries:
            req = ctx.oracle.state(entry.request_id)
            if req.status == RequestStatus.PENDING:
                ctx.journal.transition(
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
                ctx.journal.update(entry.request_id, tx_block=None, tx_block_hash=None)
                from_chain(ctx, entry, req)
        depth = max(1, ctx.confirmations + 1, head - number + 1)
        ctx.nonces.resync()
        ctx.metrics.deep_reorg()
        ctx.journal.deep_reorg(number, depth, requeued)
        emit(
            "chain.deep_reorg",
            logging.ERROR,
            block=number,
            block_hash=block_hash,
            confirmations=ctx.confirmations,
            requests=ids(entries),
            requeued=requeued,
            note="a fulfilment counted final was orphaned: raise --confirmations",
        )
    # Only now: a read that failed above (a transient RPC error) is tried again next turn,
    # even if no new block comes.
    ctx.loop.rechecked_at = ctx.loop.head_hash
