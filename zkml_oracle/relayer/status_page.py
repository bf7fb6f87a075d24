"""The operator's status page (``relay --status-port PORT``): plain HTML, the same data as JSON.

``/`` is a small HTML page that needs no JavaScript and reloads itself (``<meta
http-equiv="refresh">``); ``/status.json`` carries the same :class:`Status`. Everything comes
from the journal (read-only SQL, alongside the running relayer), the chain (the account's
balance, the head, the receipts of our transactions: gas spent) and the prover backend (its
workers). Served on 127.0.0.1 by default: put a proxy with authentication in front of it to
show it further.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..exceptions import InputError
from . import journal as J
from .backend import WorkerStatus

#: Seconds between the page's own reloads.
REFRESH = 5
#: Latency percentiles are over requests fulfilled in this many seconds.
WINDOW = 3600
#: Proofs per minute are over this many seconds.
RATE_WINDOW = 600
WEI = 10**18


@dataclass(frozen=True)
class Latency:
    count: int
    p50: float
    p90: float
    p99: float
    max: float


@dataclass(frozen=True)
class ModelStatus:
    model_id: str
    states: dict[str, int]
    latency_last_hour: Latency | None
    proofs_per_minute: float  # over the last RATE_WINDOW seconds
    proofs_last_hour: int
    transactions: int  # our mined fulfil transactions
    gas_spent_wei: int
    gas_used: int
    fees_earned_wei: int  # fees of the requests we fulfilled


@dataclass(frozen=True)
class ErrorLine:
    request_id: int
    model_id: str
    state: str
    attempts: int
    error: str
    at: float


@dataclass(frozen=True)
class Status:
    generated_at: float
    relayer: str
    chain_id: str | None
    oracle: str | None
    balance_wei: int | None  # None: the node did not answer
    chain_head: int | None
    scanned_to: int | None  # the journal's cursor
    backend: str
    workers: list[WorkerStatus]
    models: list[ModelStatus]
    last_errors: list[ErrorLine]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least ``p`` of them at or below it."""
    rank = math.ceil(round(p * len(ordered), 9))
    return ordered[min(len(ordered), max(1, rank)) - 1]


def latency(values: list[float]) -> Latency | None:
    if not values:
        return None
    ordered = sorted(values)
    return Latency(
        len(ordered),
        _percentile(ordered, 0.5),
        _percentile(ordered, 0.9),
        _percentile(ordered, 0.99),
        ordered[-1],
    )


class StatusSource:
    """Collects a :class:`Status`: the journal at ``db``, the chain through ``web3`` (its own
    connection; None: not shown), the backend's ``workers``."""

    def __init__(
        self,
        db: Path,
        *,
        relayer: str,
        web3: Any = None,
        backend: str = "local",
        workers: Callable[[], list[WorkerStatus]] = list,
    ) -> None:
        self.db = Path(db)
        self.relayer = relayer
        self.web3 = web3
        self.backend = backend
        self.workers = workers
        self._receipts: dict[str, tuple[int, int]] = {}  # mined: gas used, effective price
        self._lock = threading.Lock()

    def _gas(self, tx_hash: str) -> tuple[int, int] | None:
        if tx_hash in self._receipts or self.web3 is None:
            return self._receipts.get(tx_hash)
        try:
            receipt = self.web3.eth.get_transaction_receipt(tx_hash)
        except Exception:
            return None  # not mined yet, or the node is away
        found = (int(receipt["gasUsed"]), int(receipt.get("effectiveGasPrice", 0)))
        self._receipts[tx_hash] = found
        return found

    def _chain(self) -> tuple[int | None, int | None]:
        if self.web3 is None:
            return None, None
        try:
            return int(self.web3.eth.get_balance(self.relayer)), int(self.web3.eth.block_number)
        except Exception:
            return None, None

    def collect(self, now: float | None = None) -> Status:
        now = time.time() if now is None else now
        with self._lock:  # one collection at a time: the receipt cache is shared
            return self._collect(now)

    def _collect(self, now: float) -> Status:
        db = sqlite3.connect(f"file:{self.db.resolve()}?mode=ro", uri=True, timeout=10)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            states: dict[str, dict[str, int]] = {}
            for model, state, n in db.execute(
                "SELECT model_id, state, COUNT(*) FROM requests GROUP BY model_id, state"
            ):
                states.setdefault(model, {s: 0 for s in J.STATES})[state] = int(n)
            done: dict[str, list[float]] = {}
            for model, seconds in db.execute(
                "SELECT model_id, done_at - seen_at FROM requests WHERE state = ? AND done_at >= ?",
                (J.FULFILLED, now - WINDOW),
            ):
                done.setdefault(model, []).append(float(seconds))
            proofs: dict[str, list[float]] = {}
            for model, at in db.execute(
                "SELECT model_id, MAX(proved_at) FROM requests WHERE proved_at >= ? "
                "AND batch IS NOT NULL GROUP BY model_id, batch",
                (now - WINDOW,),
            ):
                proofs.setdefault(model, []).append(float(at))
            fees: dict[str, int] = {}
            for model, fee in db.execute(
                "SELECT model_id, fee FROM requests WHERE state = ?", (J.FULFILLED,)
            ):
                fees[model] = fees.get(model, 0) + int(fee)
            txs = db.execute(
                "SELECT DISTINCT model_id, tx_hash FROM requests WHERE tx_hash IS NOT NULL"
            ).fetchall()
            errors = [
                ErrorLine(int(r[0]), r[1], r[2], int(r[3]), str(r[4]), float(r[5]))
                for r in db.execute(
                    "SELECT request_id, model_id, state, attempts, error, updated_at "
                    "FROM requests WHERE error IS NOT NULL ORDER BY updated_at DESC LIMIT 10"
                )
            ]
        finally:
            db.close()
        gas: dict[str, list[tuple[int, int]]] = {}
        for model, tx_hash in txs:
            found = self._gas(str(tx_hash))
            if found is not None:
                gas.setdefault(model, []).append(found)
        models = []
        for model in sorted(states):
            mined = gas.get(model, [])
            recent = [t for t in proofs.get(model, []) if t >= now - RATE_WINDOW]
            models.append(
                ModelStatus(
                    model_id=model,
                    states=states[model],
                    latency_last_hour=latency(done.get(model, [])),
                    proofs_per_minute=round(len(recent) * 60 / RATE_WINDOW, 2),
                    proofs_last_hour=len(proofs.get(model, [])),
                    transactions=len(mined),
                    gas_spent_wei=sum(used * price for used, price in mined),
                    gas_used=sum(used for used, _ in mined),
                    fees_earned_wei=fees.get(model, 0),
                )
            )
        balance, head = self._chain()
        return Status(
            generated_at=now,
            relayer=self.relayer,
            chain_id=meta.get("chain_id"),
            oracle=meta.get("oracle"),
            balance_wei=balance,
            chain_head=head,
            scanned_to=int(meta["cursor"]) if "cursor" in meta else None,
            backend=self.backend,
            workers=self.workers(),
            models=models,
            last_errors=errors,
        )


# --- the page ---


def _eth(wei: int | None) -> str:
    return "unavailable" if wei is None else f"{wei / WEI:.6f} ETH"


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _table(headers: list[str], rows: list[list[str]], attrs: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr{(' ' + attrs[i]) if attrs else ''}>" + "".join(row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object, name: str | None = None) -> str:
    data = f' data-field="{html.escape(name)}"' if name else ""
    return f"<td{data}>{html.escape(str(value))}</td>"


def render(status: Status) -> str:
    """The page: one self-contained HTML document, no script."""
    e = html.escape
    shown = [s for s in J.STATES if any(m.states.get(s) for m in status.models)] or [J.SEEN]
    model_rows, model_attrs = [], []
    for m in status.models:
        lat = m.latency_last_hour
        model_attrs.append(f'data-model="{e(m.model_id)}"')
        model_rows.append(
            [f'<td title="{e(m.model_id)}">{e(m.model_id[:10])}…</td>']
            + [_cell(m.states.get(s, 0), f"state-{s}") for s in shown]
            + [
                _cell(_seconds(lat.p50) if lat else "-", "p50"),
                _cell(_seconds(lat.p90) if lat else "-", "p90"),
                _cell(_seconds(lat.p99) if lat else "-", "p99"),
                _cell(f"{m.proofs_per_minute:.2f}", "proofs-per-minute"),
                _cell(m.transactions, "transactions"),
                _cell(f"{m.gas_used:,}", "gas-used"),
                _cell(_eth(m.gas_spent_wei), "gas-spent"),
                _cell(_eth(m.fees_earned_wei), "fees-earned"),
            ]
        )
    models = _table(
        [
            "model",
            *shown,
            *("p50 (1 h)", "p90", "p99", "proofs/min (10 min)", "txs", "gas used"),
            *("gas spent", "fees earned"),
        ],
        model_rows,
        model_attrs,
    )
    workers = _table(
        ["worker", "where", "state", "proofs", "memory reserved"],
        [
            [
                _cell(w.name),
                _cell(w.where),
                f'<td class="{e(w.state)}" data-field="worker-state">{e(w.state)}</td>',
                _cell(w.proofs),
                _cell("-" if w.memory_bytes is None else f"{w.memory_bytes / 2**20:.0f} MiB"),
            ]
            for w in status.workers
        ],
    )
    errors = (
        _table(
            ["when", "request", "model", "state", "attempts", "error"],
            [
                [
                    _cell(time.strftime("%H:%M:%S", time.gmtime(x.at))),
                    _cell(x.request_id),
                    _cell(x.model_id[:10] + "…"),
                    _cell(x.state),
                    _cell(x.attempts),
                    _cell(x.error),
                ]
                for x in status.last_errors
            ],
        )
        if status.last_errors
        else "<p>none</p>"
    )
    behind = (
        status.chain_head - status.scanned_to
        if status.chain_head is not None and status.scanned_to is not None
        else None
    )
    facts = [
        ("relayer", status.relayer, "relayer"),
        ("balance", _eth(status.balance_wei), "balance"),
        ("chain", f"{status.chain_id} · oracle {status.oracle}", "chain"),
        (
            "chain head seen",
            "unavailable" if status.chain_head is None else status.chain_head,
            "chain-head",
        ),
        ("journal scanned to", f"{status.scanned_to} ({behind} behind)", "scanned-to"),
        ("backend", f"{status.backend} · {len(status.workers)} worker(s)", "backend"),
    ]
    dl = "".join(f'<dt>{e(k)}</dt><dd data-field="{f}">{e(str(v))}</dd>' for k, v, f in facts)
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.generated_at))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zkml-oracle relayer</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.05em; margin-top: 1.5em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #f3f3f3; text-align: left; }} td {{ font-variant-numeric: tabular-nums; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }}
dt {{ color: #666; }} dd {{ margin: 0; }} .lost {{ color: #b00; }} .proving {{ color: #070; }}
small {{ color: #888; }}
</style></head><body>
<h1>zkml-oracle relayer</h1>
<small>{e(at)} · reloads every {REFRESH} s · <a href="status.json">JSON</a></small>
<dl>{dl}</dl>
<h2>Models</h2>{models}
<h2>Prover workers</h2>{workers}
<h2>Last errors</h2>{errors}
</body></html>
"""


class StatusServer:
    """``/`` (HTML) and ``/status.json`` on ``addr:port``, in a thread of the relayer."""

    def __init__(self, source: StatusSource, port: int, addr: str = "127.0.0.1") -> None:
        self.source = source

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path not in ("/", "/status.json"):
                    self.send_error(404)
                    return
                try:
                    status = source.collect()
                except Exception as exc:
                    self.send_error(503, f"status unavailable: {type(exc).__name__}")
                    return
                if path == "/":
                    body, kind = render(status).encode(), "text/html; charset=utf-8"
                else:
                    body, kind = status.to_json().encode(), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the relayer's log is for the relayer

        try:
            self._server = ThreadingHTTPServer((addr, port), Handler)
        except OSError as e:
            raise InputError(
                f"cannot serve the status page on {addr}:{port} ({e}): pick another port"
            ) from None
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="zkml-status", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
