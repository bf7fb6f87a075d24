"""The relayer's durable journal: every request seen, its state, attempts, transaction, error.

One SQLite file in WAL mode with ``synchronous=FULL``: a state change is on disk before the
relayer acts on it, so SIGKILL at any moment loses nothing. A signed transaction is written
*before* it is broadcast (state ``signed``, raw bytes kept): after a crash the relayer
rebroadcasts exactly those bytes (same nonce, same hash) or learns from the chain that the
nonce went elsewhere; it never signs a second fulfilment for a request while the first may
still be mined.

Requests proved together (``relay --batch-size N``) share a **batch**: the key of their one
proof (``batch``), each its ``slot`` in it, and, once signed, the one ``fulfillBatch``
transaction (nonce, raw bytes, hash); their state changes are written in one SQLite
transaction (:meth:`Journal.atomic`). A single request is a batch of one.

The file is bound to one oracle on one chain (``meta``), and one relayer process at a time
holds it (an ``flock`` on ``<db>.lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..exceptions import ZkmlOracleError


class JournalError(ZkmlOracleError):
    """The journal file is unusable, held by another relayer, or belongs to another oracle."""


#: To prove.
SEEN = "seen"
#: A proof job is in a worker (back to ``seen`` when the relayer restarts).
PROVING = "proving"
#: The proof is in the journal; the transaction is not signed yet.
PROVED = "proved"
#: The transaction is signed and its raw bytes recorded; it may or may not have been broadcast.
SIGNED = "signed"
#: Broadcast; waiting for its receipt.
SENT = "sent"
FULFILLED = "fulfilled"
FULFILLED_BY_OTHER = "fulfilled_by_other"
REJECTED = "rejected"
FAILED = "failed"
EXPIRED = "expired"
CANCELLED = "cancelled"

OPEN_STATES = (SEEN, PROVING, PROVED, SIGNED, SENT)
TERMINAL_STATES = (FULFILLED, FULFILLED_BY_OTHER, REJECTED, FAILED, EXPIRED, CANCELLED)
STATES = OPEN_STATES + TERMINAL_STATES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    input_felts TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    fee TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    batch TEXT,
    slot INTEGER,
    proof BLOB,
    instances TEXT,
    outputs TEXT,
    nonce INTEGER,
    raw_tx BLOB,
    tx_hash TEXT,
    fulfiller TEXT,
    error TEXT,
    prove_seconds REAL,
    seen_at REAL NOT NULL,
    proved_at REAL,
    sent_at REAL,
    done_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, block_number, log_index);
"""

#: Columns added after the first release, with their types: an older journal gets them on open.
_ADDED_COLUMNS = {"batch": "TEXT", "slot": "INTEGER"}
_INDEXES = "CREATE INDEX IF NOT EXISTS requests_batch ON requests (batch, slot);"


def batch_key(proof: bytes) -> str:
    """The key of the requests proved together: their one proof's hash (proofs are randomised,
    so two proofs never share it)."""
    return hashlib.sha256(proof).hexdigest()[:32]


@dataclass(frozen=True)
class RequestEvent:
    """One ``InferenceRequested`` log, as the relayer needs it."""

    request_id: int
    model_id: str
    input_felts: tuple[int, ...]
    deadline: int
    fee: int
    block_number: int
    log_index: int


@dataclass(frozen=True)
class Entry:
    """A journal row."""

    request_id: int
    model_id: str
    input_felts: tuple[int, ...]
    deadline: int
    fee: int
    block_number: int
    state: str
    attempts: int
    batch: str | None
    slot: int | None
    proof: bytes | None
    instances: tuple[int, ...] | None
    outputs: tuple[int, ...] | None
    nonce: int | None
    raw_tx: bytes | None
    tx_hash: str | None
    fulfiller: str | None
    error: str | None
    prove_seconds: float | None
    seen_at: float
    proved_at: float | None
    sent_at: float | None
    done_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Entry:
        def ints(text: str | None) -> tuple[int, ...] | None:
            return None if text is None else tuple(int(v) for v in json.loads(text))

        return cls(
            request_id=int(row["request_id"]),
            model_id=row["model_id"],
            input_felts=ints(row["input_felts"]) or (),
            deadline=int(row["deadline"]),
            fee=int(row["fee"]),
            block_number=int(row["block_number"]),
            state=row["state"],
            attempts=int(row["attempts"]),
            batch=row["batch"],
            slot=row["slot"],
            proof=None if row["proof"] is None else bytes(row["proof"]),
            instances=ints(row["instances"]),
            outputs=ints(row["outputs"]),
            nonce=row["nonce"],
            raw_tx=None if row["raw_tx"] is None else bytes(row["raw_tx"]),
            tx_hash=row["tx_hash"],
            fulfiller=row["fulfiller"],
            error=row["error"],
            prove_seconds=row["prove_seconds"],
            seen_at=row["seen_at"],
            proved_at=row["proved_at"],
            sent_at=row["sent_at"],
            done_at=row["done_at"],
        )


def _json_ints(values: Sequence[int] | None) -> str | None:
    return None if values is None else json.dumps([str(int(v)) for v in values])


_COLUMNS = frozenset(
    {
        "state",
        "attempts",
        "batch",
        "slot",
        "proof",
        "instances",
        "outputs",
        "nonce",
        "raw_tx",
        "tx_hash",
        "fulfiller",
        "error",
        "prove_seconds",
        "proved_at",
        "sent_at",
        "done_at",
    }
)


class Journal:
    """The journal of one relayer. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path, *, lock: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock_file: IO[str] | None = None
        if readonly:
            if not self.path.is_file():
                raise JournalError(f"no relayer journal at {self.path}: pass the relay's --db")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if lock:
                self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")  # noqa: SIM115
                try:
                    fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._lock_file.close()
                    raise JournalError(
                        f"another relayer is using {self.path}: stop it, or give this one its "
                        "own --db"
                    ) from None
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        self._db.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        have = {str(r[1]) for r in self._db.execute("PRAGMA table_info(requests)")}
        with self._tx() as db:
            for name, kind in _ADDED_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")
            db.execute(_INDEXES)

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:  # nested in :meth:`atomic`: part of the outer transaction
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Every change inside is written together, or not at all (a batch's rows)."""
        with self._tx():
            yield

    # --- binding and cursor ---

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def bind(self, chain_id: int, oracle: str, genesis_hash: str | None = None) -> None:
        """Tie the journal to one oracle on one chain; refuse a journal of another. The genesis
        hash tells a fresh local chain (same id, same deterministic addresses) from the old one."""
        want = {"chain_id": str(chain_id), "oracle": oracle.lower()}
        if genesis_hash is not None:
            want["genesis_hash"] = genesis_hash.lower()
        with self._tx() as db:
            for key, value in want.items():
                have = self.meta(key)
                if have is None:
                    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
                elif have != value:
                    raise JournalError(
                        f"{self.path} is the journal of {key} {have}, not {value}: pass another "
                        "--db for this oracle"
                    )

    def cursor(self) -> int | None:
        """The last block whose requests are all in the journal."""
        value = self.meta("cursor")
        return None if value is None else int(value)

    def record(self, events: Sequence[RequestEvent], cursor: int) -> int:
        """New requests and the block scanned up to, in one transaction; returns how many were
        new (a request already known is left as it is)."""
        now = time.time()
        added = 0
        with self._tx() as db:
            for e in events:
                cur = db.execute(
                    "INSERT OR IGNORE INTO requests (request_id, model_id, input_felts, deadline, "
                    "fee, block_number, log_index, state, seen_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(e.request_id),
                        e.model_id.lower(),
                        _json_ints(e.input_felts),
                        e.deadline,
                        str(e.fee),
                        e.block_number,
                        e.log_index,
                        SEEN,
                        now,
                        now,
                    ),
                )
                added += cur.rowcount
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('cursor', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(cursor),),
            )
        return added

    # --- state ---

    def resume(self) -> int:
        """After a restart: proofs that were in a worker are to be made again."""
        cur = self._db.execute(
            "UPDATE requests SET state = ?, batch = NULL, slot = NULL, updated_at = ? "
            "WHERE state = ?",
            (SEEN, time.time(), PROVING),
        )
        return cur.rowcount

    def get(self, request_id: int) -> Entry | None:
        row = self._db.execute(
            "SELECT * FROM requests WHERE request_id = ?", (str(request_id),)
        ).fetchone()
        return None if row is None else Entry.from_row(row)

    def in_state(self, *states: str) -> list[Entry]:
        marks = ", ".join("?" for _ in states)
        rows = self._db.execute(
            f"SELECT * FROM requests WHERE state IN ({marks}) ORDER BY block_number, log_index",
            states,
        ).fetchall()
        return [Entry.from_row(r) for r in rows]

    def members(self, batch: str) -> list[Entry]:
        """Every request proved in ``batch``, by slot (settled ones too: their slots stay)."""
        rows = self._db.execute("SELECT * FROM requests WHERE batch = ? ORDER BY slot", (batch,))
        return [Entry.from_row(r) for r in rows.fetchall()]

    def all(self) -> list[Entry]:
        rows = self._db.execute("SELECT * FROM requests ORDER BY block_number, log_index")
        return [Entry.from_row(r) for r in rows.fetchall()]

    def update(self, request_id: int, **fields: Any) -> None:
        """Change a request's row (columns by name; int lists as JSON)."""
        unknown = set(fields) - _COLUMNS
        if unknown:
            raise ValueError(f"not journal columns: {sorted(unknown)}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown state {fields['state']!r}")
        values = {
            k: _json_ints(v) if k in ("instances", "outputs") else v for k, v in fields.items()
        }
        values["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in values)
        cur = self._db.execute(
            f"UPDATE requests SET {sets} WHERE request_id = ?",
            (*values.values(), str(request_id)),
        )
        if cur.rowcount != 1:
            raise JournalError(f"request {request_id} is not in {self.path}")

    def finish(self, request_id: int, state: str, **fields: Any) -> None:
        if state not in TERMINAL_STATES:
            raise ValueError(f"{state!r} is not a final state")
        self.update(request_id, state=state, done_at=time.time(), **fields)

    # --- reporting ---

    def summary(self, errors: int = 5) -> dict[str, Any]:
        """Counts by state, fulfilling transactions, latencies (seen → done; proving, per
        proof), the last errors."""
        counts = {s: 0 for s in STATES}
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state"):
            counts[state] = int(n)
        done = [
            float(r[0])
            for r in self._db.execute(
                "SELECT done_at - seen_at FROM requests WHERE state = ? ORDER BY done_at",
                (FULFILLED,),
            )
        ]
        proving = [  # per proof: the requests of a batch share theirs
            float(r[0])
            for r in self._db.execute(
                "SELECT MAX(prove_seconds) FROM requests WHERE prove_seconds IS NOT NULL "
                "GROUP BY COALESCE(batch, 'request:' || request_id)"
            )
        ]
        transactions = self._db.execute(
            "SELECT COUNT(DISTINCT tx_hash) FROM requests WHERE state = ? AND tx_hash IS NOT NULL",
            (FULFILLED,),
        ).fetchone()[0]
        last = [
            {"request_id": int(r[0]), "state": r[1], "attempts": int(r[2]), "error": r[3]}
            for r in self._db.execute(
                "SELECT request_id, state, attempts, error FROM requests "
                "WHERE error IS NOT NULL ORDER BY updated_at DESC LIMIT ?",
                (errors,),
            )
        ]
        return {
            "journal": str(self.path),
            "chain_id": self.meta("chain_id"),
            "oracle": self.meta("oracle"),
            "cursor": self.cursor(),
            "counts": counts,
            "total": sum(counts.values()),
            "fulfil_transactions": int(transactions),
            "latency_seconds": _stats(done),
            "prove_seconds": _stats(proving),
            "last_errors": last,
        }


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {
        "count": len(ordered),
        "median": pct(0.5),
        "p90": pct(0.9),
        "max": ordered[-1],
    }
