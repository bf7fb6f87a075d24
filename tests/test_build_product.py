"""Builds as a product (issue 12): they reproduce, their manifest is checked against the files,
their --out is claimed atomically, and nothing the toolkit calls may hang.

One small circuit of its own (the issue's 6-input MLP ending in a Sigmoid, calibrated on three
samples, whose input [0.9, -0.4, 0.6, 1.1, -0.2, 0.3] deadlocked ezkl's prover) is built twice
per session; the other tests reuse the session's circuits.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import copy_build, run_cli, write_json
from zkml_oracle.chain import LocalNode
from zkml_oracle.circuit import BuildOptions, build
from zkml_oracle.exceptions import ArtifactError, InputError, ProvingError
from zkml_oracle.testing import OracleDeployer
from zkml_oracle.types import BuildResult, ProofResult

HANG_INPUT = [0.9, -0.4, 0.6, 1.1, -0.2, 0.3]


def _write_sigmoid_mlp(folder: Path) -> dict[str, Path]:
    """6 inputs → Gemm 8 → Relu → Gemm 1 (the logit) → Sigmoid; outputs (sigmoid, logit)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weights = {
        "w1": (rng.normal(size=(6, 8)) * 0.8).astype(np.float32),
        "b1": (rng.normal(size=8) * 0.1).astype(np.float32),
        "w2": (rng.normal(size=(8, 1)) * 0.8).astype(np.float32),
        "b2": np.zeros(1, dtype=np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("Gemm", ["a", "w2", "b2"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["p"]),
        ],
        "sigmoid_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [
            helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("logit", TensorProto.FLOAT, [1, 1]),
        ],
        [numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(folder / "model.onnx"))
    rows = (rng.normal(size=(3, 6)) * 0.1).round(3)
    return {
        "model": folder / "model.onnx",
        "calibration": write_json(
            folder / "calibration.json", {"input_data": [rows.reshape(-1).tolist()]}
        ),
        "good": write_json(folder / "good.json", {"input_data": [rows[0].tolist()]}),
        "far": write_json(folder / "far.json", {"input_data": [HANG_INPUT]}),
    }


# Local proofs only: the verifier is not what these tests are about.
SIGMOID_OPTIONS = BuildOptions(dev_srs=True, solidity=False)


@pytest.fixture(scope="module")
def sigmoid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _write_sigmoid_mlp(tmp_path_factory.mktemp("sigmoid"))


@pytest.fixture(scope="module")
def sigmoid_built(
    sigmoid: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> BuildResult:
    out = tmp_path_factory.mktemp("sigmoid-builds") / "first"
    return build(sigmoid["model"], sigmoid["calibration"], out, SIGMOID_OPTIONS)


# --- builds reproduce ---


def test_a_rebuild_gives_the_same_settings_keys_digests_and_model_id(
    sigmoid: dict[str, Path], sigmoid_built: BuildResult, tmp_path: Path
) -> None:
    again = build(sigmoid["model"], sigmoid["calibration"], tmp_path / "again", SIGMOID_OPTIONS)
    first, second = sigmoid_built.build_dir, again.build_dir
    for name in ("settings.json", "vk.key", "pk.key"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    a, b = sigmoid_built.manifest, again.manifest
    assert (a.settings_sha256, a.vk_sha256, a.artifact_digest) == (
        b.settings_sha256,
        b.vk_sha256,
        b.artifact_digest,
    )
    # The model id is keccak(config), and the config holds the artifact digest.
    from zkml_oracle.chain.oracle import ModelConfig

    verifier = "0x" + "11" * 20
    assert (
        ModelConfig.from_manifest(a, verifier).model_id
        == ModelConfig.from_manifest(b, verifier).model_id
    )


# --- nothing may hang ---


def test_an_input_beyond_the_calibrated_range_is_refused_before_proving(
    sigmoid: dict[str, Path], sigmoid_built: BuildResult, tmp_path: Path
) -> None:
    """The issue's input: ezkl 23.0.5's prove deadlocked on its witness (lookups out of range)."""
    proof = tmp_path / "proof.json"
    done = run_cli("prove", sigmoid_built.build_dir, sigmoid["far"], "--out", proof)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "cannot run on this input" in line and "--lookup-margin" in line
    assert "calibration data" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no proof, no leftovers


def test_a_request_for_an_input_no_one_can_prove_is_refused(
    sigmoid: dict[str, Path], sigmoid_built: BuildResult
) -> None:
    from zkml_oracle.circuit import data
    from zkml_oracle.prover import check_request_input

    m = sigmoid_built.manifest
    good = data.single_sample(data.load(sigmoid["good"]), m.inputs, sigmoid["good"])
    far = data.single_sample(data.load(sigmoid["far"]), m.inputs, sigmoid["far"])
    check_request_input(sigmoid_built.build_dir, good)
    with pytest.raises(InputError, match="cannot run on this input.*calibration data"):
        check_request_input(sigmoid_built.build_dir, far)


def test_the_relayer_rejects_such_a_request_with_the_reason(
    sigmoid: dict[str, Path], sigmoid_built: BuildResult
) -> None:
    from zkml_oracle.relayer.backend import ProofJob, prove_job

    job = ProofJob((7,), "0x01", str(sigmoid_built.build_dir), [[HANG_INPUT]])
    outcome = prove_job(job)  # refused at the witness: no proof is attempted
    assert not outcome.ok and not outcome.proof
    [(rid, reason)] = outcome.rejected
    assert rid == 7 and "cannot run on this input" in reason and "lookups leave" in reason
    # The reason is journalled, and the input may be private: nothing derived from the
    # witness (its lookup extremes, -8476 here) is in it, only the circuit's public range.
    witness_numbers = {int(n) for n in re.findall(r"-?\d+", reason)}
    low, high = json.loads((sigmoid_built.build_dir / "settings.json").read_text())["run_args"][
        "lookup_range"
    ]
    assert witness_numbers <= {int(low), int(high)}, reason


def test_a_deadlocked_prove_is_stopped_by_the_watchdog(
    sigmoid: dict[str, Path], sigmoid_built: BuildResult, tmp_path: Path
) -> None:
    """Without the range check, the same witness hangs ezkl's prove (no CPU, for ever): the
    watchdog turns it into an error and leaves no prover process behind."""
    import ezkl

    from zkml_oracle.prover import Circuit, prove_witness

    circuit = Circuit.open(sigmoid_built.build_dir)
    witness = tmp_path / "witness.json"
    ezkl.gen_witness(str(sigmoid["far"]), circuit.path("compiled"), str(witness))
    with pytest.raises(InputError):
        circuit.check_witness(json.loads(witness.read_text()))
    with pytest.raises(ProvingError, match="stopped making progress"):
        prove_witness(circuit, witness, tmp_path / "proof.json", stall_seconds=3)
    assert not (tmp_path / "proof.json").exists()
    assert not _ezkl_children(os.getpid())


def test_the_ezkl_child_imports_this_package_not_one_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child of an isolated call runs `python -m zkml_oracle._ezkl`: a `zkml_oracle`
    folder where the caller works must not be what it runs."""
    from zkml_oracle import _ezkl, field

    planted = tmp_path / "zkml_oracle"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    (planted / "_ezkl.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path)
    felt = _ezkl.isolated("float_to_felt", 1.5, 1, error=ProvingError)
    assert field.felt_from_ezkl_hex(felt) == 3  # 1.5 at scale 1


def test_a_deadlocked_process_that_still_ticks_counts_as_stalled() -> None:
    """A deadlocked prover is not at zero CPU: its waiting threads take 0.01 s every 1-2 s
    (measured on the witness above). The first watchdog waited for a window with no CPU at all:
    it fired by luck after 77 s with a 3 s window, and never with the default 60 s."""
    from zkml_oracle._ezkl import StallClock

    # The measured trace: 0.5 s samples, 0.01 s of CPU at every third sample.
    clock = StallClock(60)
    stalled_at = None
    for i in range(200):
        now = i * 0.5
        if clock.stalled(now, 0.73 + 0.01 * (i // 3)):
            stalled_at = now
            break
    assert stalled_at is not None and 60 <= stalled_at <= 61
    # A prover at work, even one starved to a tenth of a core, is never stalled.
    busy = StallClock(3)
    assert not any(busy.stalled(i * 0.5, 0.05 * i) for i in range(200))


def _ezkl_children(pid: int) -> list[int]:
    """The child processes of ``pid`` that run an isolated ezkl call."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"zkml_oracle._ezkl" in cmdline:
                found.append(int(child))
    return found


# --- the manifest is checked against the files ---


@pytest.fixture()
def build_copy(built: BuildResult, tmp_path: Path) -> Path:
    return copy_build(built, tmp_path / "copy")


def _edit_manifest(build_dir: Path, **changes: object) -> None:
    path = build_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "ezkl":
            manifest["tools"]["ezkl"] = value
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def test_a_hand_edited_vk_digest_is_refused_by_verify_and_deploy(
    build_copy: Path, proof: ProofResult, tmp_path: Path
) -> None:
    """Before the check, `deploy` registered a model id under a digest that matches no file
    (on the real local chain `deploy` starts)."""
    _edit_manifest(build_copy, vk_sha256="00" * 32)
    for args in (("verify", build_copy, proof.proof_path), ("deploy", build_copy)):
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert f"{build_copy / 'vk.key'} does not match the manifest's vk_sha256" in line
        assert "rebuild" in line
    assert not (tmp_path / "deployments").exists()  # nothing was deployed or recorded


def test_a_swapped_vk_is_named_not_reported_as_an_invalid_proof(
    build_copy: Path, other_built: BuildResult, proof: ProofResult
) -> None:
    from zkml_oracle.prover import verify

    shutil.copy(other_built.build_dir / "vk.key", build_copy / "vk.key")
    with pytest.raises(ArtifactError, match=r"vk\.key does not match the manifest's vk_sha256"):
        verify(build_copy, proof.proof_path)


def test_a_build_from_another_ezkl_version_is_refused_with_the_way_out(
    build_copy: Path, example: dict[str, Path], tmp_path: Path
) -> None:
    _edit_manifest(build_copy, ezkl="22.2.1")
    done = run_cli("prove", build_copy, example["input"], "--out", tmp_path / "p.json")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "built with ezkl 22.2.1 but ezkl 23.0.5 is installed" in line
    assert "rebuild it, or `pip install ezkl==22.2.1`" in line


# --- --out: claimed atomically, checked before any work ---


def test_a_second_build_into_the_same_new_out_is_refused(tmp_path: Path) -> None:
    from zkml_oracle._fs import staged_dir

    out = tmp_path / "out"
    with staged_dir(out, force=False) as stage:
        (stage / "a").write_text("first")
        # A second build while the first runs, even with --force: refused, nothing touched.
        for force in (False, True):
            with (
                pytest.raises(InputError, match="another build is writing into"),
                staged_dir(out, force=force),
            ):
                pass
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    # After it: the folder is not empty, so only --force replaces it.
    with pytest.raises(InputError, match="not empty: pass --force"), staged_dir(out, force=False):
        pass
    with staged_dir(out, force=True) as stage:
        (stage / "b").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no stage, no claim left


@pytest.mark.parametrize(
    ("command", "out", "expect"),
    [
        ("build", "/proc/x", "cannot write /proc/x"),
        ("prove", "/proc/x", "cannot write /proc/x"),
        ("prove", "DIR", "is a directory: give a file path as --out"),
        # A read-only folder: a read-only tmpfs, since root (as the suite runs) ignores modes.
        ("build", "READ_ONLY", "(Read-only file system): choose another --out"),
        ("prove", "READ_ONLY", "(Read-only file system): choose another --out"),
    ],
)
def test_an_impossible_out_is_refused_before_any_work(
    command: str,
    out: str,
    expect: str,
    example: dict[str, Path],
    built: BuildResult,
    tmp_path: Path,
) -> None:
    target = {"DIR": str(tmp_path), "READ_ONLY": str(tmp_path / "ro" / "out")}.get(out, out)
    if out == "READ_ONLY":
        (tmp_path / "ro").mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(tmp_path / "ro")]
        subprocess.run(mount, check=True)
    args: tuple[object, ...] = (
        ("build", example["model"], "--calibration", example["calibration"], "--dev-srs")
        if command == "build"
        else ("prove", built.build_dir, example["input"])
    )
    start = time.monotonic()
    try:
        done = run_cli(*args, "--out", target)
    finally:
        if out == "READ_ONLY":
            subprocess.run(["umount", "-l", str(tmp_path / "ro")], check=False)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert expect in line and "Traceback" not in done.stderr
    assert time.monotonic() - start < 60  # not after a build or a proof (both take longer)


def test_ctrl_c_during_key_generation_stops_at_once_and_leaves_nothing(
    example: dict[str, Path], built: BuildResult, tmp_path: Path
) -> None:
    """(``built``: its dev SRS is cached, so this build reaches key generation at once.)"""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "zkml-oracle"),
            "build",
            str(example["model"]),
            "--calibration",
            str(example["calibration"]),
            "--dev-srs",
            "--out",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started in the background (CI) inherits SIGINT ignored,
        # and the build would inherit that too and run to its end (it exited 0 there).
        preexec_fn=_sigint_default,
    )
    try:
        setup = _wait_for_setup(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr
    assert not out.exists() and sorted(tmp_path.iterdir()) == []
    assert _ended(setup)  # the key generation was stopped too


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_setup(pid: int) -> int:
    """The child process that runs ezkl's setup for the build ``pid``."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for child in _ezkl_children(pid):
            return child
        time.sleep(0.05)
    raise AssertionError("the build never reached key generation")


def _ended(pid: int) -> bool:
    """``pid`` is gone or a zombie (a container's init may not reap orphans at once)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat[stat.rfind(")") + 2] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(autouse=True)
def _no_stray_provers() -> Iterator[None]:
    yield
    assert not _ezkl_children(os.getpid())


def test_request_refuses_an_input_no_one_can_prove_before_escrowing(
    built: BuildResult,
    zkml_oracle_deployment: OracleDeployer,
    zkml_anvil: LocalNode,
    tmp_path: Path,
) -> None:
    """Before the check, the fee was escrowed for a request no relayer could ever prove.
    (The session's oracle deployment: no deploy of its own.)"""
    zkml = zkml_oracle_deployment(built)
    chain = ("--rpc-url", zkml_anvil.url, "--deployments", zkml_oracle_deployment.store.root)
    far = write_json(tmp_path / "far.json", {"input_data": [[1e6, 0.2, 0.3, 0.4]]})
    model_id = "0x" + zkml.model_id.hex()
    done = run_cli("request", model_id, far, "--fee", "1000", "--json", *chain)
    assert done.returncode == 2, done.stdout
    error = json.loads(done.stdout)["error"]
    assert "cannot run on this input" in error and "calibration data" in error


def test_ctrl_c_during_an_in_process_ezkl_call_is_never_lost() -> None:
    """An async ezkl call (create_evm_verifier) runs under asyncio.run, whose Ctrl-C handler
    only cancels the task: a call that completes anyway would return normally and the
    interrupt be gone. Stand-ins for the native call: a coroutine that is interrupted and
    finishes regardless, and a function that checks for signals and drops the error."""
    import asyncio

    from zkml_oracle import _ezkl

    async def finishes_anyway() -> str:
        os.kill(os.getpid(), signal.SIGINT)
        with contextlib.suppress(asyncio.CancelledError):  # a native future completes anyway
            await asyncio.sleep(0.2)
        return "done"

    def swallows() -> str:
        os.kill(os.getpid(), signal.SIGINT)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(0.2)
        return "done"

    # Ctrl-C as in a command started from a terminal (a suite started in the background
    # inherits SIGINT ignored, and Ape, once imported, puts in a handler of its own).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _ezkl.call(finishes_anyway, error=ProvingError, is_async=True)
        with pytest.raises(KeyboardInterrupt):
            _ezkl.call(swallows, error=ProvingError)
    finally:
        signal.signal(signal.SIGINT, previous)
