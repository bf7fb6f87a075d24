"""Atomic file-system writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .exceptions import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


@contextlib.contextmanager
def temp_path_beside(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh path next to ``path`` for a tool that writes files itself; removed on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _unwritable(path: Path, e: OSError, what: str) -> InputError:
    reason = e.strerror or e.__class__.__name__
    return InputError(f"cannot write {path} ({reason}): choose another {what}")


def check_output_file(path: Path, what: str = "--out") -> None:
    """Refuse, before any long work, an output file that cannot be written: an existing
    directory, a folder that cannot be made or written to (``/proc/x``, a read-only one)."""
    if path.is_dir():
        raise InputError(f"{path} is a directory: give a file path as {what}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as e:
        raise _unwritable(path, e, what) from None
    os.close(fd)
    os.unlink(tmp)


CLAIM_NAME = ".zkml-oracle-claim"


@contextlib.contextmanager
def staged_dir(final: Path, *, force: bool, what: str = "--out") -> Iterator[Path]:
    """Build a directory under a temporary name and move it to ``final`` only on success.

    ``final`` is claimed first, atomically: a lock on a claim file inside it, held until the
    end, so a second build into the same folder is refused at once instead of silently
    replacing the first one's result. An existing non-empty ``final`` is kept unless
    ``force``; with ``force`` it is replaced only after the new one is complete, so a failed
    build never destroys a good one. A folder this call created is removed on failure.
    """
    import fcntl

    if final.exists() and not final.is_dir():
        raise InputError(f"{final} exists and is not a directory: choose another {what}")
    created = not final.exists()
    try:
        final.mkdir(parents=True, exist_ok=True)
        claim = open(final / CLAIM_NAME, "a")  # noqa: SIM115 (held until the end)
    except OSError as e:
        raise _unwritable(final, e, what) from None
    try:
        fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        claim.close()
        raise InputError(
            f"another build is writing into {final}: wait for it to end or choose another {what}"
        ) from None
    stage: Path | None = None
    try:
        if not force and any(p.name != CLAIM_NAME for p in final.iterdir()):
            raise InputError(f"{final} already exists and is not empty: pass --force to replace it")
        try:
            stage = Path(
                tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".building", dir=final.parent)
            )
        except OSError as e:
            raise _unwritable(final, e, what) from None
        yield stage
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(stage, final)
        stage = None
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            (final / CLAIM_NAME).unlink()
            if created:
                final.rmdir()
        raise
    finally:
        claim.close()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing) for the block's duration."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
