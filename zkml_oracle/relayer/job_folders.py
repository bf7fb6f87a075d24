"""Where a prover writes a job's files: its input (for a requester-bound model, the decrypted
private input), witness and proof.

Each prover process writes under its own folder, ``<tmp>/zkml-relay-jobs-<uid>/<pid>-<start>``,
and each job in a temporary folder inside it, removed when the job ends. A prover killed in the
middle of a job (the stall watchdog, a crash, a replaced pool, a lost Ray node) cannot remove
its job's folder, so the folders of processes that are gone are removed by :func:`sweep`: by
the local pool when it starts, is replaced or closes (its workers share the relayer's
machine), and by each Ray actor when it starts (on its own node). ``<start>`` (the process's
start time) keeps a reused pid from adopting a dead process's folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..exceptions import ProvingError


def root() -> Path:
    """This user's folder for job folders, private to them (created ``0700``)."""
    path = Path(tempfile.gettempdir()) / f"zkml-relay-jobs-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or stat.S_IMODE(info.st_mode) & 0o077
    ):
        raise ProvingError(
            f"{path} is not a folder private to this user (owner {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):o}): remove it, or set TMPDIR to a private folder"
        )
    return path


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, or "0" where there is no ``/proc``);
    None once it has ended (a zombie has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:  # no /proc: whether the pid is alive is all there is
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "0"
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def mine() -> Path:
    """This process's folder for its jobs."""
    path = root() / f"{os.getpid()}-{_start_time(os.getpid())}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def sweep() -> None:
    """Remove the job folders of prover processes that are gone."""
    with contextlib.suppress(FileNotFoundError):
        for folder in root().iterdir():
            pid, _, start = folder.name.partition("-")
            alive = pid.isdigit() and _start_time(int(pid)) == start
            if not alive:
                shutil.rmtree(folder, ignore_errors=True)
