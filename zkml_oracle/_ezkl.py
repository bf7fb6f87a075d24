"""Calling ezkl: its native code prints to file descriptors 1 and 2 and panics as BaseException.

Every call goes through :func:`call`, which keeps ezkl's chatter off the user's stdout (so
``--json`` output stays parseable) and turns its failures into our exceptions with the
native message attached. ``ZKML_ORACLE_DEBUG=1`` lets the chatter through.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from .exceptions import ZkmlOracleError


@contextlib.contextmanager
def captured_fds() -> Iterator[Callable[[], str]]:
    """File descriptors 1 and 2 into a temporary file (native code and libraries that bound
    ``sys.stdout`` at import write there too); yields a function returning its tail."""
    if os.environ.get("ZKML_ORACLE_DEBUG"):
        yield lambda: ""
        return
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)

            def tail() -> str:
                log.seek(0)
                return log.read()[-4000:].decode(errors="replace")

            yield tail
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _native_message(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[0] if msg else exc.__class__.__name__
    for prefix in ("Failed to run ", "[halo2] "):
        text = text.replace(prefix, "")
    return text


def call(
    fn: Callable[..., Any],
    *args: Any,
    error: Callable[[str], ZkmlOracleError],
    is_async: bool = False,
    **kwargs: Any,
) -> Any:
    """Run an ezkl function quietly; any failure becomes ``error(native message)``.

    ezkl's async functions (``create_evm_verifier``, ...) must be *called* inside a running
    event loop, so ``is_async`` runs the call itself in a private loop and awaits the result.
    """
    with captured_fds():
        try:
            if is_async:
                import asyncio

                async def _run() -> Any:
                    return await fn(*args, **kwargs)

                return asyncio.run(_run())
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pyo3's PanicException is a BaseException
            raise error(_native_message(exc)) from None


def poseidon(felts: list[int], *, what: str) -> list[int]:
    """ezkl's Poseidon hash of ``felts`` (the commitment a hashed tensor gets in the circuit);
    a failure is an :class:`InputError` naming ``what`` was being hashed."""
    import ezkl

    from .exceptions import InputError
    from .field import felt_from_ezkl_hex, felt_to_ezkl_hex

    out = call(
        ezkl.poseidon_hash,
        [felt_to_ezkl_hex(f) for f in felts],
        error=lambda m: InputError(f"cannot hash {what}: {m}"),
    )
    return [felt_from_ezkl_hex(h) for h in out]
