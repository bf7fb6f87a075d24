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


#: A native call that uses no CPU for this long is stuck (ezkl 23.0.5's ``prove`` deadlocks
#: so on a witness outside the lookup range: a rayon worker waits for the GIL): it is stopped.
STALL_SECONDS = float(os.environ.get("ZKML_ORACLE_STALL_SECONDS", "60"))


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) of a process, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def isolated(
    name: str,
    *args: Any,
    error: Callable[[str], ZkmlOracleError],
    stall_seconds: float | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``ezkl.<name>(*args, **kwargs)`` in a child process under a watchdog.

    A native call cannot be interrupted from Python: Ctrl-C waits for it to return, and a
    deadlocked one never does. In a child it can be stopped: on KeyboardInterrupt (the child
    is killed at once and the interrupt re-raised), after ``stall_seconds`` without CPU
    (default :data:`STALL_SECONDS`), or after ``timeout`` seconds in all. Arguments and the
    result travel as JSON (paths and numbers).
    """
    import json
    import subprocess
    import time

    stall = STALL_SECONDS if stall_seconds is None else stall_seconds
    request = json.dumps({"name": name, "args": args, "kwargs": kwargs})
    with tempfile.TemporaryFile() as out:
        proc: subprocess.Popen[bytes] | None = None
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "zkml_oracle._ezkl", str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=None if os.environ.get("ZKML_ORACLE_DEBUG") else subprocess.DEVNULL,
            )
            assert proc.stdin is not None
            proc.stdin.write(request.encode())
            proc.stdin.close()
            start = last_progress = time.monotonic()
            cpu = _cpu_seconds(proc.pid)
            while True:
                try:
                    proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                used = _cpu_seconds(proc.pid)
                if used is None or cpu is None or used > cpu:
                    cpu, last_progress = used, now
                elif now - last_progress > stall:
                    raise error(
                        f"ezkl's {name} stopped making progress (no CPU for {stall:.0f} s) and "
                        "was stopped"
                    )
                if timeout is not None and now - start > timeout:
                    raise error(f"ezkl's {name} took longer than {timeout:.0f} s and was stopped")
        finally:
            if proc is not None and proc.returncode is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        reply = out.read().decode(errors="replace")
    try:
        answer = json.loads(reply.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise error(
            f"ezkl's {name} ended without an answer (exit status {proc.returncode})"
        ) from None
    if "error" in answer:
        raise error(answer["error"])
    return answer["result"]


def _child() -> None:
    """The child side of :func:`isolated`: one call, one JSON line on stdout."""
    import json
    import signal

    # The parent decides what an interrupt stops (it kills this process), and this process
    # ends with it, however it ends (an interrupt may land before it could kill this one).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6").prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != int(sys.argv[1]):
        return  # the parent is already gone
    request = json.loads(sys.stdin.read())
    import ezkl

    answer: dict[str, Any]
    real_stdout = os.dup(1)
    try:
        with captured_fds():
            result = getattr(ezkl, request["name"])(*request["args"], **request["kwargs"])
        answer = {"result": result if isinstance(result, bool | int | float | str) else None}
    except BaseException as exc:  # pyo3's PanicException is a BaseException
        answer = {"error": _native_message(exc)}
    os.write(real_stdout, (json.dumps(answer) + "\n").encode())


if __name__ == "__main__":
    _child()
