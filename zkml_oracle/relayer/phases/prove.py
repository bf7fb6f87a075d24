"""Prove: requests go to the backend as proof jobs (alone, or batched per model), and finished
jobs come back into the journal."""

from __future__ import annotations

import logging
import time

from .. import journal as J
from .. import policy
from ..backend import ProofJob, ProofOutcome
from ..context import Context, ServedModel, crash_point, finish, from_chain
from ..inputs import Rejected, Sample
from ..log import emit
from ..watcher import is_transient

#: The oracle's gas overhead around a callback (``CALLBACK_GAS_OVERHEAD`` in ZkmlOracle.sol,
#: with margin).
CALLBACK_OVERHEAD = 50_000


def dispatch(ctx: Context) -> None:
    """Start proof jobs: with ``batch_size`` 1 each request alone; else, per model, the
    oldest requests up to ``batch_size``, once that many wait or the oldest has waited
    ``max_wait`` seconds (at once with ``once``: nothing more is coming)."""
    run = ctx.loop
    run.due = None
    busy = set(run.requests())
    queues: dict[str, list[tuple[J.Entry, Sample]]] = {}
    for entry in ctx.journal.in_state(J.SEEN):
        if entry.request_id in busy:
            continue
        model = ctx.models.get(entry.model_id.lower())
        if model is None:  # served by an earlier run, not by this one
            finish(ctx, entry, J.IGNORED, error=None)
            continue
        try:
            _check_affordable(ctx, entry)
            sample = ctx.inputs(model.manifest, entry)
        except Rejected as e:
            finish(ctx, entry, J.REJECTED, error=str(e))
            continue
        except Exception as e:
            if is_transient(e):  # a sealed input's lookup: this request waits a turn
                continue
            raise
        queues.setdefault(model.model_id, []).append((entry, sample))
    size, wait_for = ctx.config.batch_size, 0.0 if ctx.config.once else ctx.config.max_wait
    for model_id, queue in queues.items():  # the model of the oldest request first
        while queue and len(run.inflight) < ctx.config.workers:
            due = queue[0][0].seen_at + wait_for
            if ctx.config.adaptive_batches and not ctx.config.once:
                decision = policy.decide([e.seen_at for e, _ in queue], size, wait_for, time.time())
                if decision.size == 0:
                    run.due = due if run.due is None else min(run.due, due)
                    break
            elif len(queue) < size and time.time() < due:
                run.due = due if run.due is None else min(run.due, due)
                break
            group: list[tuple[J.Entry, Sample]] = []
            gas = ctx.config.fulfil_gas_reserve
            while queue and len(group) < size:
                # The callbacks of one batch must fit one block together.
                if group and gas + _callback_need(queue[0][0]) > ctx.loop.gas_limit:
                    break
                entry, sample = queue.pop(0)
                gas += _callback_need(entry)
                try:
                    if from_chain(ctx, entry, ctx.oracle.state(entry.request_id)):
                        continue
                except Exception as e:
                    if is_transient(e):
                        continue  # checked again next turn; the others go ahead
                    raise
                group.append((entry, sample))
            if group:
                _submit(ctx, ctx.models[model_id], group)


def _callback_need(entry: J.Entry) -> int:
    """Gas the oracle must hold back for a request's callback (63/64 rule, as it checks)."""
    return entry.callback_gas + entry.callback_gas // 63 + CALLBACK_OVERHEAD


def _check_affordable(ctx: Context, entry: J.Entry) -> None:
    """Refuse, before any proving, a request that pays less than ``min_fee`` or whose
    callback could never get its gas in a block (a proof would be wasted on it)."""
    if entry.fee < ctx.config.min_fee:
        raise Rejected(
            f"fee too low: {entry.fee} wei escrowed, this relayer proves for at least "
            f"{ctx.config.min_fee} wei (relay --min-fee)"
        )
    need = _callback_need(entry) + ctx.config.fulfil_gas_reserve
    limit = ctx.loop.gas_limit or ctx.oracle.gas_limit()
    if (
        entry.callback_gas
        and need > limit
        and entry.callback
        and ctx.oracle.has_code(entry.callback)
    ):
        raise Rejected(
            f"callback gas cannot fit a block: callbackGasLimit {entry.callback_gas} needs "
            f"about {need} gas with the fulfilment, the block gas limit is {limit}"
        )


def _submit(ctx: Context, model: ServedModel, group: list[tuple[J.Entry, Sample]]) -> None:
    ids = tuple(entry.request_id for entry, _ in group)
    with ctx.journal.atomic():
        for entry, _ in group:
            ctx.journal.transition(entry.request_id, J.PROVING, attempts=entry.attempts + 1)
    job = ProofJob(ids, model.model_id, str(model.build_dir), [sample for _, sample in group])
    ctx.loop.inflight[ids] = ctx.backend.submit(job)
    emit("proof.started", requests=list(ids), attempts=[entry.attempts + 1 for entry, _ in group])


def collect(ctx: Context) -> None:
    run = ctx.loop
    for ids, future in list(run.inflight.items()):
        if not future.done():
            continue
        del run.inflight[ids]
        try:
            outcome = future.result()
        except Exception as e:
            outcome = ProofOutcome(ids, error=f"the prover backend failed: {e}")
        entries = [ctx.journal.get(rid) for rid in ids]
        assert all(e is not None for e in entries)
        if outcome.ok:
            key = J.batch_key(outcome.proof)
            with ctx.journal.atomic():
                for slot, rid in enumerate(ids):
                    ctx.journal.transition(
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
            ctx.metrics.proved(outcome.seconds, len(ids))
            emit("proof.done", requests=list(ids), batch=key, seconds=round(outcome.seconds, 3))
            crash_point("after-proof")
            continue
        rejected = dict(outcome.rejected)
        with ctx.journal.atomic():
            for entry in entries:
                assert entry is not None
                rid = entry.request_id
                if rid in rejected:
                    finish(ctx, entry, J.REJECTED, error=rejected[rid])
                elif rejected:  # not this one's fault: proved again without the culprits
                    ctx.journal.transition(rid, J.SEEN, attempts=entry.attempts - 1)
                elif entry.attempts >= ctx.config.max_attempts:
                    finish(ctx, entry, J.FAILED, error=outcome.error)
                else:
                    ctx.journal.transition(rid, J.SEEN, error=outcome.error)
        if not rejected:
            emit("proof.failed", logging.WARNING, requests=list(ids), error=outcome.error)
