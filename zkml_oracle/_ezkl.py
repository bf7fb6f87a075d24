"""Calling ezkl: its native code prints to file descriptors 1 and 2 and panics as BaseException.

Every call goes through :func:`call`, which keeps ezkl's chatter off the user's stdout (so
``--json`` output stays parseable) and turns its failures into our exceptions with the
native message attached. ``ZKML_DEBUG=1`` lets the chatter through.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from .exceptions import ZkmlOracleError


@contextlib.contextmanager
def captured_fds(debug: bool | None = None) -> Iterator[Callable[[], str]]:
    """File descriptors 1 and 2 into a temporary file (native code and libraries that bound
    ``sys.stdout`` at import write there too); yields a function returning its tail.
    ``debug`` (default: ``ZKML_DEBUG``) lets the output through."""
    if debug is None:
        from .settings import settings

        debug = settings().debug
    if debug:
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
    A Ctrl-C during the call is raised once it returns (:func:`_interrupts_kept`).
    """
    with captured_fds(), _interrupts_kept():
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


@contextlib.contextmanager
def _interrupts_kept() -> Iterator[None]:
    """Hold Ctrl-C during an in-process native call and raise it when the call is over.

    A native call runs to its end whatever Python is told, and two things could lose the
    interrupt meanwhile: asyncio.run's handler only cancels its task, so a call that completes
    anyway returns normally; and native code that checks for signals may drop the error. The
    handler in place before the call decides what the interrupt does (an ignored SIGINT stays
    ignored). Only the main thread can handle signals: elsewhere, as is.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


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


#: An isolated call that uses almost no CPU for ``ZKML_STALL_SECONDS`` (default 60) is stuck
#: (ezkl 23.0.5's ``prove`` deadlocks so on a witness outside the lookup range: a rayon worker
#: waits for the GIL) and is stopped. "Almost no CPU" is under this share of one core: a
#: deadlocked prover is not at zero, its waiting threads wake now and then (measured: 0.01 s
#: of CPU every 1-2 s, 0.7 % of a core), so a rule of "no CPU at all" fires only by luck on a
#: short window and never on the default one. A prover at work uses a core or more; one
#: starved by a loaded machine still gets far more than this share.
STALL_CPU_SHARE = 0.02


class StallClock:
    """Decides, from samples of a process's CPU time, whether it has stalled: over the last
    ``seconds`` it used less than :data:`STALL_CPU_SHARE` of one core."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._samples: list[tuple[float, float]] = []

    def stalled(self, now: float, cpu: float) -> bool:
        samples = self._samples
        samples.append((now, cpu))
        # Keep the newest sample at least `seconds` old as the window's start.
        while len(samples) > 1 and now - samples[1][0] >= self.seconds:
            samples.pop(0)
        start, start_cpu = samples[0]
        span = now - start
        return span >= self.seconds and cpu - start_cpu < STALL_CPU_SHARE * span


def stall_message(name: str, seconds: float) -> str:
    """What a call stopped by a watchdog (:class:`StallClock`) reports."""
    return (
        f"ezkl's {name} stopped making progress (almost no CPU for {seconds:.0f} s) and was stopped"
    )


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) of a process, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _Child:
    """A child process for one isolated call, and the file its answer goes to."""

    proc: subprocess.Popen[bytes]
    out: IO[bytes]
    owner: int  # the process that started it (a forked copy must not use it)

    @classmethod
    def start(cls) -> _Child:
        out = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close(), after the call)
        # stderr is the caller's: the child silences it until its request says ZKML_DEBUG
        # (told, not read there: reading settings imports pydantic, a quarter of a second).
        # -P: the child imports this package from where this process did, not from a
        # `zkml_oracle` folder in the working directory.
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "zkml_oracle._ezkl", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=out,
        )
        return cls(proc, out, os.getpid())

    def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


_spare: _Child | None = None
_keep_warm = False
_watched_by_parent = False


def watched_by_parent() -> None:
    """In a process whose parent watches its CPU and kills it when it stalls (a relayer's pool
    worker: :class:`zkml_oracle.relayer.backend.LocalPoolBackend`), :func:`isolated` calls run
    here, in this process: the parent's watchdog stands in for the child's."""
    global _watched_by_parent
    _watched_by_parent = True


def keep_warm() -> None:
    """In a process that makes call after call (a relayer's prover), start each call's child
    ahead, once the previous call is over: ezkl already imported, waiting for its call. A
    call then saves the child's start-up (0.3-0.5 s measured; a proof of a small model takes
    a few seconds)."""
    global _keep_warm
    _keep_warm = True
    start_ahead()


def start_ahead() -> None:
    """Start the next :func:`isolated` call's child now, so that its start-up overlaps the
    caller's (a CLI command's imports). Unused, it ends with this process."""
    global _spare
    if _spare is None and not _watched_by_parent:
        _spare = _Child.start()


def _take_child() -> _Child:
    global _spare
    spare, _spare = _spare, None
    if spare is not None:
        if spare.owner == os.getpid() and spare.proc.poll() is None:
            return spare
        spare.close()  # another process's (forked), or ended
    return _Child.start()


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
    is killed at once and the interrupt re-raised), after ``stall_seconds`` (default
    ``$ZKML_STALL_SECONDS``, 60) of almost no CPU (:class:`StallClock`), or after ``timeout``
    seconds in all. Arguments and the result travel as JSON (paths and numbers); the child
    runs in this process's working directory. In a process its parent watches
    (:func:`watched_by_parent`), the call runs in this process.
    """
    import json
    import time

    from .settings import settings

    global _spare
    if _watched_by_parent:
        import ezkl

        result = call(getattr(ezkl, name), *args, error=error, **kwargs)
        return result if isinstance(result, bool | int | float | str) else None  # as a child's
    config = settings()
    stall = config.stall_seconds if stall_seconds is None else stall_seconds
    request = json.dumps(
        {"name": name, "args": args, "kwargs": kwargs, "cwd": os.getcwd(), "debug": config.debug}
    )
    child = _take_child()
    proc = child.proc
    try:
        assert proc.stdin is not None
        proc.stdin.write(request.encode())
        proc.stdin.close()
        start = time.monotonic()
        clock = StallClock(stall)
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            used = cpu_seconds(proc.pid)
            if used is not None and clock.stalled(now, used):
                raise error(stall_message(name, stall))
            if timeout is not None and now - start > timeout:
                raise error(f"ezkl's {name} took longer than {timeout:.0f} s and was stopped")
        child.out.seek(0)
        reply = child.out.read().decode(errors="replace")
    finally:
        child.close()
        if _keep_warm and _spare is None:
            _spare = _Child.start()
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
    stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    import ezkl  # before the call arrives: a spare child (start_ahead) waits ready

    request = json.loads(sys.stdin.read() or "null")
    if request is None:
        return  # a spare that was never used
    if request["debug"]:
        os.dup2(stderr, 2)
    os.close(stderr)
    os.chdir(request["cwd"])

    answer: dict[str, Any]
    real_stdout = os.dup(1)
    try:
        with captured_fds(debug=request["debug"]):
            result = getattr(ezkl, request["name"])(*request["args"], **request["kwargs"])
        answer = {"result": result if isinstance(result, bool | int | float | str) else None}
    except BaseException as exc:  # pyo3's PanicException is a BaseException
        answer = {"error": _native_message(exc)}
    os.write(real_stdout, (json.dumps(answer) + "\n").encode())


if __name__ == "__main__":
    _child()
