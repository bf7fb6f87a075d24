"""Shared fixtures: circuits are built once per test session, with real ezkl.

The dev SRS cache points at a session folder, so the suite never depends on (or writes to)
the user's own cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkml_oracle.circuit import BuildOptions, build
from zkml_oracle.examples import write_credit_mlp
from zkml_oracle.prover import prove
from zkml_oracle.types import BuildResult, ProofResult, Visibility

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("zkml-cache")
    old = os.environ.get("ZKML_ORACLE_CACHE")
    os.environ["ZKML_ORACLE_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("ZKML_ORACLE_CACHE", None)
    else:
        os.environ["ZKML_ORACLE_CACHE"] = old


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled credit MLP: model.onnx, calibration.json (20 rows), input.json."""
    return write_credit_mlp(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="session")
def built(example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """Public inputs and outputs, fixed params, dev SRS."""
    out = tmp_path_factory.mktemp("builds") / "public"
    return build(example["model"], example["calibration"], out, BuildOptions(dev_srs=True))


@pytest.fixture(scope="session")
def proof(
    built: BuildResult, example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> ProofResult:
    return prove(
        built.build_dir, example["input"], tmp_path_factory.mktemp("proofs") / "proof.json"
    )


@pytest.fixture(scope="session")
def hashed_built(example: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """Hashed (Poseidon-committed) inputs and params, public outputs."""
    out = tmp_path_factory.mktemp("builds") / "hashed"
    options = BuildOptions(visibility=Visibility("hashed", "hashed", "public"), dev_srs=True)
    return build(example["model"], example["calibration"], out, options)


@pytest.fixture(scope="session")
def other_built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """Same shapes as ``built`` but other weights: another circuit with the same instance count."""
    files = write_credit_mlp(tmp_path_factory.mktemp("other-example"), seed=99)
    out = tmp_path_factory.mktemp("builds") / "other"
    return build(files["model"], files["calibration"], out, BuildOptions(dev_srs=True))


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script, in a child process, as a user runs it."""
    exe = Path(sys.executable).parent / "zkml-oracle"
    return subprocess.run(
        [str(exe), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes, to assert nothing was touched."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def copy_build(result: BuildResult, dest: Path) -> Path:
    shutil.copytree(result.build_dir, dest)
    return dest
