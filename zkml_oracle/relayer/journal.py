"""The relayer's durable journal: every request seen, its state, attempts, transaction, error.

One SQLite file with a rollback journal and ``synchronous=FULL``, and no memory-mapped I/O
(no WAL index, ``mmap_size=0``): a state change is on disk before the relayer acts on it, so
SIGKILL at any moment loses nothing, and a disk that fills up or turns read-only gives an
error (:class:`JournalError`), never a SIGBUS. A signed transaction is written
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
import errno
import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, TypeVar

from ..exceptions import IllegalTransition as IllegalTransition
from ..exceptions import JournalError as JournalError  # defined there, importable here too


class State(StrEnum):
    """A request's state in the journal (stored as its value; a ``str`` too)."""

    #: To prove.
    SEEN = "seen"
    #: A proof job is in a worker (back to ``seen`` when the relayer restarts).
    PROVING = "proving"
    #: The proof is in the journal; the transaction is not signed yet.
    PROVED = "proved"
    #: The transaction is signed and its raw bytes recorded; it may or may not have been
    #: broadcast.
    SIGNED = "signed"
    #: Broadcast; waiting for its receipt.
    SENT = "sent"
    FULFILLED = "fulfilled"
    FULFILLED_BY_OTHER = "fulfilled_by_other"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    #: A request for a model this relayer does not serve (picked up if it serves it later).
    IGNORED = "ignored"

    @property
    def final(self) -> bool:
        return self in TERMINAL_STATES


# The members by name at module level, as the relayer writes them (``J.SEEN``).
SEEN, PROVING, PROVED, SIGNED, SENT = (
    State.SEEN,
    State.PROVING,
    State.PROVED,
    State.SIGNED,
    State.SENT,
)
FULFILLED, FULFILLED_BY_OTHER = State.FULFILLED, State.FULFILLED_BY_OTHER
REJECTED, FAILED, EXPIRED = State.REJECTED, State.FAILED, State.EXPIRED
CANCELLED, IGNORED = State.CANCELLED, State.IGNORED

OPEN_STATES = (SEEN, PROVING, PROVED, SIGNED, SENT)
TERMINAL_STATES = (FULFILLED, FULFILLED_BY_OTHER, REJECTED, FAILED, EXPIRED, CANCELLED, IGNORED)
STATES = tuple(State)

#: The state changes :meth:`Journal.transition` allows (a state may always stay as it is). An
#: open request may go anywhere; a final one leaves its state only to be served again:
#: ``failed`` by ``relay --retry-failed``, ``ignored`` once its model is served, ``fulfilled``
#: when a reorg deeper than the confirmations orphaned the fulfilment (sent again, or settled
#: from the canonical chain).
TRANSITIONS: dict[State, frozenset[State]] = {
    **{state: frozenset(STATES) for state in OPEN_STATES},
    FAILED: frozenset({SEEN}),
    IGNORED: frozenset({SEEN}),
    FULFILLED: frozenset({PROVED, SEEN, FULFILLED_BY_OTHER, CANCELLED, EXPIRED, REJECTED}),
    FULFILLED_BY_OTHER: frozenset(),
    REJECTED: frozenset({SEEN}),  # orphaned by a reorg, then mined again (:meth:`record`)
    EXPIRED: frozenset(),
    CANCELLED: frozenset(),
}

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
_ADDED_COLUMNS = {
    "batch": "TEXT",
    "slot": "INTEGER",
    "callback": "TEXT",
    "callback_gas": "INTEGER",
    "tx_block": "INTEGER",
    "tx_block_hash": "TEXT",
}
#: Columns every relayer journal has had: a ``requests`` table without them is another
#: program's.
_CORE_COLUMNS = frozenset({"request_id", "model_id", "input_felts", "state", "attempts"})
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
    callback: str = "0x" + "00" * 20
    callback_gas: int = 0


@dataclass(frozen=True)
class Entry:
    """A journal row."""

    request_id: int
    model_id: str
    input_felts: tuple[int, ...]
    deadline: int
    fee: int
    block_number: int
    state: State
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
    callback: str | None = None
    callback_gas: int = 0
    #: The block (number, hash) that mined our fulfilment, rechecked against reorgs.
    tx_block: int | None = None
    tx_block_hash: str | None = None

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
            state=State(row["state"]),
            attempts=int(row["attempts"]),
            batch=_get(row, "batch"),
            slot=_get(row, "slot"),
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
            # Columns added later: absent from an older journal read without migrating it
            # (``relay-status`` opens it read-only).
            callback=_get(row, "callback"),
            callback_gas=int(_get(row, "callback_gas") or 0),
            tx_block=_get(row, "tx_block"),
            tx_block_hash=_get(row, "tx_block_hash"),
        )


def _get(row: sqlite3.Row, column: str) -> Any:
    return row[column] if column in row.keys() else None  # noqa: SIM118 (Row: "in" tests values)


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
        "tx_block",
        "tx_block_hash",
    }
)

_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    """SQLite's errors as one :class:`JournalError` line naming the file and the fix."""

    @functools.wraps(method)
    def wrapper(self: Journal, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise self.error(e) from None

    return wrapper  # type: ignore[return-value]


class Journal:
    """The journal of one relayer. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path, *, lock: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock_file: IO[str] | None = None
        if readonly:
            if not self.path.is_file():
                raise JournalError(f"no relayer journal at {self.path}: pass the relay's --db")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._db = self._connect(uri, uri=True)
            self._check_foreign()
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if lock:
                    self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")  # noqa: SIM115
            except OSError as e:
                read_only = e.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
                why = "it is read-only" if read_only else f"it cannot be created ({e.strerror})"
                raise JournalError(
                    f"the relayer journal {self.path} is unusable: {why}: make the file and "
                    "its folder writable, or pass another --db"
                ) from None
            if self._lock_file is not None:
                try:
                    fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._lock_file.close()
                    raise JournalError(
                        f"another relayer is using {self.path}: stop it, or give this one its "
                        "own --db"
                    ) from None
            self._db = self._connect(str(self.path))
            try:
                self._check_foreign()
                # A rollback journal and no mmap: a full or read-only disk is an error here,
                # never a SIGBUS from a mapped WAL index.
                self._db.execute("PRAGMA mmap_size=0")
                self._db.execute("PRAGMA journal_mode=TRUNCATE")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._migrate()
            except (sqlite3.Error, JournalError) as e:
                self.close()
                raise e if isinstance(e, JournalError) else self.error(e) from None
            self._inode = os.stat(self.path).st_ino
        self._db.row_factory = sqlite3.Row

    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=10)
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            raise self.error(e) from None
        return db

    def _check_foreign(self) -> None:
        tables = {str(r[0]) for r in self._db.execute("SELECT name FROM sqlite_master")}
        columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(requests)")}
        ours = not tables or columns >= _CORE_COLUMNS
        if not ours:
            raise JournalError(
                f"{self.path} is an SQLite file but not a relayer journal (tables: "
                f"{', '.join(sorted(tables))}): pass another --db"
            )

    def error(self, e: sqlite3.Error) -> JournalError:
        """One line for an SQLite failure: what it means for this file, and the fix."""
        text = str(e)
        if isinstance(e, sqlite3.DatabaseError) and "not a database" in text:
            why = "it is not an SQLite database (corrupt, or another program's file)"
            fix = "move it away to start a fresh journal (requests are rescanned from the chain)"
        elif "readonly" in text or "read-only" in text:
            why = "it is read-only"
            fix = "make the file and its folder writable, then restart the relayer"
        elif "disk is full" in text or "disk I/O" in text:
            why = f"the disk failed ({text})"
            fix = "free space on its disk, then restart the relayer"
        elif "unable to open" in text:
            why = "it cannot be opened"
            fix = "check the path and its folder's permissions"
        else:
            why = text
            fix = "check the file, its disk and its permissions"
        return JournalError(f"the relayer journal {self.path} is unusable: {why}: {fix}")

    def check(self) -> None:
        """Refuse to go on with a journal whose file was removed or replaced meanwhile."""
        try:
            inode = os.stat(self.path).st_ino
        except OSError:
            inode = None
        if inode != getattr(self, "_inode", inode):
            raise JournalError(
                f"the relayer journal {self.path} vanished (removed or replaced while running): "
                "restore it from a backup, or restart to rescan the chain into a fresh one"
            )

    def _migrate(self) -> None:
        have = {str(r[1]) for r in self._db.execute("PRAGMA table_info(requests)")}
        with self._tx() as db:
            for name, kind in _ADDED_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")
            db.execute(_INDEXES)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
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
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self.error(e) from None
        try:
            yield self._db
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise self.error(e) from None
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise self.error(e) from None

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Every change inside is written together, or not at all (a batch's rows)."""
        with self._tx():
            yield

    # --- binding and cursor ---

    @_guarded
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

    @_guarded
    def record(
        self,
        events: Sequence[RequestEvent],
        cursor: int,
        cursor_hash: str | None = None,
        served: Callable[[str], bool] = lambda _: True,
    ) -> int:
        """New requests and the block scanned up to (with its hash, to notice a reorg under
        it), in one transaction; returns how many were new. A request already known is left as
        it is; one for a model not ``served`` is recorded ``ignored``."""
        now = time.time()
        added = 0
        with self._tx() as db:
            for e in events:
                cur = db.execute(
                    "INSERT OR IGNORE INTO requests (request_id, model_id, input_felts, deadline, "
                    "fee, block_number, log_index, state, callback, callback_gas, seen_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(e.request_id),
                        e.model_id.lower(),
                        _json_ints(e.input_felts),
                        e.deadline,
                        str(e.fee),
                        e.block_number,
                        e.log_index,
                        SEEN if served(e.model_id.lower()) else IGNORED,
                        e.callback,
                        e.callback_gas,
                        now,
                        now,
                    ),
                )
                if not cur.rowcount:
                    cur = db.execute(  # a request orphaned by a reorg, mined again
                        "UPDATE requests SET state = ?, model_id = ?, input_felts = ?, "
                        "deadline = ?, fee = ?, block_number = ?, log_index = ?, callback = ?, "
                        "callback_gas = ?, error = NULL, done_at = NULL, updated_at = ? "
                        "WHERE request_id = ? AND state = ? AND error LIKE 'orphaned by a reorg%'",
                        (
                            SEEN if served(e.model_id.lower()) else IGNORED,
                            e.model_id.lower(),
                            _json_ints(e.input_felts),
                            e.deadline,
                            str(e.fee),
                            e.block_number,
                            e.log_index,
                            e.callback,
                            e.callback_gas,
                            now,
                            str(e.request_id),
                            REJECTED,
                        ),
                    )
                added += cur.rowcount
            self._set_meta("cursor", str(cursor))
            if cursor_hash is not None:
                self._set_meta("cursor_hash", cursor_hash)
        return added

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @_guarded
    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._set_meta(key, value)

    @_guarded
    def rewind(self, cursor: int) -> None:
        """Scan again from ``cursor + 1`` (the chain reorganised under the old cursor)."""
        with self._tx() as db:
            self._set_meta("cursor", str(cursor))
            db.execute("DELETE FROM meta WHERE key = 'cursor_hash'")

    @_guarded
    def deep_reorg(self, block: int, depth: int, requeued: Sequence[int]) -> None:
        """Count a reorg deeper than the confirmations (shown by ``relay-status``)."""
        with self._tx():
            self._set_meta("deep_reorgs", str(int(self.meta("deep_reorgs") or 0) + 1))
            last = {"block": block, "depth": depth, "requeued": list(requeued), "at": time.time()}
            self._set_meta("last_deep_reorg", json.dumps(last))

    def retry_failed(self) -> list[int]:
        """``failed`` requests back to ``seen``, attempts reset (``relay --retry-failed``)."""
        ids = [e.request_id for e in self.in_state(FAILED)]
        with self._tx():
            for rid in ids:
                self.transition(
                    rid, SEEN, attempts=0, batch=None, slot=None, proof=None, instances=None
                )
        return ids

    def unignore(self, model_ids: Sequence[str]) -> list[int]:
        """``ignored`` requests of models now served, back to ``seen``."""
        served = {m.lower() for m in model_ids}
        ids = [e.request_id for e in self.in_state(IGNORED) if e.model_id.lower() in served]
        with self._tx():
            for rid in ids:
                self.transition(rid, SEEN)
        return ids

    # --- state ---

    @_guarded
    def resume(self) -> int:
        """After a restart: proofs that were in a worker are to be made again."""
        cur = self._db.execute(
            "UPDATE requests SET state = ?, batch = NULL, slot = NULL, updated_at = ? "
            "WHERE state = ?",
            (SEEN, time.time(), PROVING),
        )
        return cur.rowcount

    @_guarded
    def get(self, request_id: int) -> Entry | None:
        row = self._db.execute(
            "SELECT * FROM requests WHERE request_id = ?", (str(request_id),)
        ).fetchone()
        return None if row is None else Entry.from_row(row)

    @_guarded
    def in_state(self, *states: str) -> list[Entry]:
        marks = ", ".join("?" for _ in states)
        rows = self._db.execute(
            f"SELECT * FROM requests WHERE state IN ({marks}) ORDER BY block_number, log_index",
            states,
        ).fetchall()
        return [Entry.from_row(r) for r in rows]

    @_guarded
    def fulfilled_since(self, block: int) -> list[Entry]:
        """Our fulfilments mined at ``block`` or later (to re-check against reorgs)."""
        rows = self._db.execute(
            "SELECT * FROM requests WHERE state = ? AND tx_block >= ? ORDER BY tx_block",
            (FULFILLED, block),
        )
        return [Entry.from_row(r) for r in rows.fetchall()]

    @_guarded
    def members(self, batch: str) -> list[Entry]:
        """Every request proved in ``batch``, by slot (settled ones too: their slots stay)."""
        rows = self._db.execute("SELECT * FROM requests WHERE batch = ? ORDER BY slot", (batch,))
        return [Entry.from_row(r) for r in rows.fetchall()]

    @_guarded
    def all(self) -> list[Entry]:
        rows = self._db.execute("SELECT * FROM requests ORDER BY block_number, log_index")
        return [Entry.from_row(r) for r in rows.fetchall()]

    def update(self, request_id: int, **fields: Any) -> None:
        """Change a request's row but not its state (columns by name; int lists as JSON)."""
        if "state" in fields:
            raise ValueError("a state changes through Journal.transition, never update")
        self._write(request_id, fields)

    @_guarded
    def transition(self, request_id: int, to: State, **fields: Any) -> None:
        """Move a request to state ``to`` (and change ``fields`` with it, in one write); refuse
        (:class:`IllegalTransition`) a change :data:`TRANSITIONS` does not list. Every state
        change of the relayer goes through here. A final state stamps ``done_at``."""
        to = State(to)
        row = self._db.execute(
            "SELECT state FROM requests WHERE request_id = ?", (str(request_id),)
        ).fetchone()
        if row is None:
            raise JournalError(f"request {request_id} is not in {self.path}")
        have = State(row[0])
        if to != have and to not in TRANSITIONS[have]:
            raise IllegalTransition(
                f"request {request_id}: {have} -> {to} is not an allowed state change"
            )
        if to.final:
            fields.setdefault("done_at", time.time())
        self._write(request_id, {"state": to.value, **fields})

    @_guarded
    def _write(self, request_id: int, fields: dict[str, Any]) -> None:
        unknown = set(fields) - _COLUMNS
        if unknown:
            raise ValueError(f"not journal columns: {sorted(unknown)}")
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

    # --- reporting ---

    @_guarded
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
        last_reorg = self.meta("last_deep_reorg")
        alert = self.meta("alert")
        return {
            "journal": str(self.path),
            "chain_id": self.meta("chain_id"),
            "oracle": self.meta("oracle"),
            "cursor": self.cursor(),
            "deep_reorgs": int(self.meta("deep_reorgs") or 0),
            "last_deep_reorg": None if last_reorg is None else json.loads(last_reorg),
            "alert": alert or None,
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
