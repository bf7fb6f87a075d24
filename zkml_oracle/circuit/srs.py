"""Structured reference strings: a supplied file, or a dev SRS generated and cached here.

A dev SRS is generated on this machine, so whoever ran the generation could forge proofs:
it is for tests and local chains only, and the manifest says so (protocol guarantee 7).
ezkl's generation is random, so a cached dev SRS is never regenerated under the same name:
keys made with it would stop verifying.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

from .. import _ezkl
from .._fs import sha256_file, temp_path_beside
from ..exceptions import SrsError
from ..settings import settings
from ..types import SrsInfo


def cache_dir() -> Path:
    """``$ZKML_CACHE``, else ``$XDG_CACHE_HOME/zkml-oracle``, else ``~/.cache/...``."""
    env = settings().cache
    if env:
        return env
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "zkml-oracle"


def srs_logrows(path: Path) -> int:
    """The k of a KZG SRS file (2^k points): halo2 writes it as the first little-endian u32."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise SrsError(
            f"cannot read SRS {path}: {e.strerror}: pass an existing --srs FILE"
        ) from None
    if len(head) < 4:
        raise SrsError(f"{path} is not an SRS file (too short): pass a KZG SRS for BN254")
    k: int = struct.unpack("<I", head)[0]
    if not 1 <= k <= 28:
        raise SrsError(f"{path} is not a KZG SRS (header says k={k}): pass a KZG SRS for BN254")
    return k


def from_file(path: Path, logrows: int) -> SrsInfo:
    """Check a supplied SRS is big enough for a circuit of ``logrows``."""
    path = path.resolve()
    k = srs_logrows(path)
    if k < logrows:
        raise SrsError(
            f"SRS {path} has 2^{k} points but the circuit needs logrows {logrows}: "
            f"pass an SRS with k >= {logrows} (e.g. the ceremony file for k={logrows})"
        )
    return SrsInfo(kind="file", sha256=sha256_file(path), logrows=k, path=str(path))


def dev(logrows: int) -> SrsInfo:
    """The cached dev SRS for ``logrows``, generated on first use (test-only toxic waste)."""
    import ezkl

    target = cache_dir() / "srs" / f"dev-k{logrows}.srs"
    if not target.is_file():
        with temp_path_beside(target) as tmp:
            _ezkl.call(
                ezkl.gen_srs,
                str(tmp),
                logrows,
                error=lambda m: SrsError(f"generating a dev SRS failed: {m}"),
            )
            # link, not rename: if another build made one meanwhile, keep theirs (keys may use it).
            with contextlib.suppress(FileExistsError):
                os.link(tmp, target)
    return SrsInfo(kind="dev", sha256=sha256_file(target), logrows=logrows, path=str(target))


def check(info: SrsInfo) -> Path:
    """The SRS file a build was made with, refusing a missing or different one."""
    path = Path(info.path)
    if not path.is_file():
        fix = (
            "rebuild with `zkml-oracle build --dev-srs`"
            if info.kind == "dev"
            else ("put the SRS file back or rebuild with --srs FILE")
        )
        raise SrsError(f"the SRS this circuit was built with is gone ({path}): {fix}")
    if sha256_file(path) != info.sha256:
        raise SrsError(
            f"{path} is not the SRS this circuit's keys were made with (sha256 differs): "
            "restore it or rebuild the circuit"
        )
    return path
