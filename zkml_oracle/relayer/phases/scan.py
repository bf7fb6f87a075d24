"""Scan: the served models' ``InferenceRequested`` logs, from the journal's cursor up to
``head - confirmations``, recorded with the new cursor in one transaction; a cursor whose
block left the canonical chain is followed back."""

from __future__ import annotations

import logging

from ..context import Context
from ..log import emit

#: Blocks scanned per turn at most, so a relayer far behind still settles and sends.
SCAN_STEP = 20_000


def scan(ctx: Context) -> bool:
    head = ctx.loop.head
    target = head - ctx.confirmations
    cursor = ctx.journal.cursor()
    cursor_hash = ctx.journal.meta("cursor_hash")
    # The cursor's block is checked once per new head: under the same head block the chain
    # below it is the same (its hash commits to them all).
    if (
        cursor is not None
        and cursor_hash is not None
        and ctx.loop.head_hash != ctx.loop.cursor_checked_at
    ):
        if ctx.oracle.block_hash(cursor) != cursor_hash:
            # The block scanned last is not canonical any more: scan the new branch.
            back = max(ctx.config.start_block, min(cursor, head) - ctx.config.recheck_window)
            ctx.journal.rewind(back - 1)
            ctx.metrics.reorg()
            emit("chain.reorg", logging.WARNING, cursor=cursor, head=head, rescan_from=back)
            cursor = back - 1
        ctx.loop.cursor_checked_at = ctx.loop.head_hash
    first = cursor + 1 if cursor is not None else ctx.config.start_block
    if target < first:
        return True
    last = min(target, first + SCAN_STEP - 1)
    events = ctx.oracle.requests_between(first, last)
    added = ctx.journal.record(events, last, ctx.oracle.block_hash(last), lambda m: m in ctx.models)
    ctx.metrics.head(last)
    if added:
        ctx.metrics.seen(added)
        emit(
            "requests.seen",
            requests=[e.request_id for e in events],
            blocks=[first, last],
        )
    return last == target
