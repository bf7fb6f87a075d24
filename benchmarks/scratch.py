"""A benchmark's scratch folder (builds, keys, chains: hundreds of MB a run), removed when the
run ends; ``ZKML_BENCH_KEEP=1`` keeps it, to read a failed run's logs or reuse its builds."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

KEEP_HINT = "rerun with ZKML_BENCH_KEEP=1 to keep the run's folder and its logs"


def scratch(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.environ.get("ZKML_BENCH_KEEP") != "1":
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
