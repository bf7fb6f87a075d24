"""The ``zkml-oracle relay`` command line the suite and the benchmarks start: one build, a work
folder that holds the deployments and the journal, a fast poll (a test chain mines at once)."""

from __future__ import annotations

import sys
from pathlib import Path

#: The ``zkml-oracle`` entry point of the running interpreter's environment.
EXE = Path(sys.executable).parent / "zkml-oracle"


def relay_argv(
    build_dir: Path,
    rpc_url: str,
    work: Path,
    *args: str,
    db: str = "j.sqlite",
    poll_interval: float = 0.2,
) -> list[str]:
    """``zkml-oracle relay`` serving ``build_dir`` over ``rpc_url``, with ``work/deployments``
    and the journal ``work/db``; ``args`` follow."""
    return [
        str(EXE),
        "relay",
        "--model",
        str(build_dir),
        "--rpc-url",
        rpc_url,
        "--deployments",
        str(work / "deployments"),
        "--db",
        str(work / db),
        "--poll-interval",
        str(poll_interval),
        *args,
    ]
