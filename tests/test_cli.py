"""The console script as a user runs it: --help, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_json
from zkml_oracle.types import BuildResult, ProofResult

COMMANDS = [
    "doctor",
    "build",
    "prove",
    "verify",
    "deploy",
    "node",
    "demo",
    "request",
    "fulfill",
    "submit",
    "result",
    "feed",
    "status",
    "relay",
    "relay-status",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0 and "Usage: zkml-oracle" in proc.stdout
    assert "--json" in proc.stdout or command == "node"  # node runs in the foreground


def test_doctor_reports_every_tool_as_json() -> None:
    proc = run_cli("doctor", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    names = {t["name"] for t in report["tools"]}
    assert names == {"ezkl", "node", "solc", "anvil", "contracts"}
    assert all(t["ok"] and t["version"] and t["path"] for t in report["tools"])


def test_build_prove_verify_json(example: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "build"
    proc = run_cli(
        "build",
        example["model"],
        "--calibration",
        example["calibration"],
        "--out",
        out,
        "--dev-srs",
        "--input-visibility",
        "hashed",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)  # ezkl's own chatter must not reach stdout
    assert built["manifest"]["visibility"]["input"] == "hashed"
    assert built["manifest"]["layout"]["inputs"]["count"] == 1
    assert built["manifest"]["srs"]["kind"] == "dev"

    proc = run_cli("prove", out, example["input"], "--out", tmp_path / "p.json", "--json")
    assert proc.returncode == 0, proc.stderr
    proven = json.loads(proc.stdout)
    assert proven["proof"] == str(tmp_path / "p.json")
    assert [len(o) for o in proven["outputs"]] == [2]
    assert all(isinstance(v, float) for v in proven["outputs"][0])
    assert len(proven["instances"]) == 3 and all(i.startswith("0x") for i in proven["instances"])

    proc = run_cli("verify", out, tmp_path / "p.json", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["valid"] is True


def test_verify_exits_1_for_an_invalid_proof(
    built: BuildResult, proof: ProofResult, tmp_path: Path
) -> None:
    p = json.loads(proof.proof_path.read_text())
    p["instances"][0][0], p["instances"][0][1] = p["instances"][0][1], p["instances"][0][0]
    bad = write_json(tmp_path / "bad.json", p)
    proc = run_cli("verify", built.build_dir, bad)
    assert proc.returncode == 1 and "INVALID" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "nope.onnx", "-c", "cal.json", "-o", "b", "--dev-srs"], "no such model file"),
        (["prove", "nobuild", "in.json"], "not a build directory"),
        (["verify", "nobuild", "p.json"], "not a build directory"),
    ],
)
def test_errors_are_one_line_with_a_fix_and_no_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert ": " in lines[0][len("error: ") :]  # problem, then what to do


def test_json_errors_are_json(tmp_path: Path) -> None:
    proc = run_cli("prove", tmp_path, tmp_path / "in.json", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["kind"] == "ArtifactError"


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = run_cli("demo", "--workdir", tmp_path / "demo", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decision"] == "Granted" and result["granted_wei"] == 10**18
    [[score]] = result["outputs"]
    assert score > 0.5
    assert 400_000 < result["gas"]["fulfil_with_callback"] < 900_000
    assert {"request", "fulfil", "claim"} <= result["tx"].keys()
    assert {"train", "setup", "deploy", "fulfil", "request_to_fulfilment"} <= result[
        "timings"
    ].keys()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == "", "the demo leaves no process behind"


def test_relay_status_gives_the_chain_id_as_a_number(tmp_path: Path) -> None:
    from zkml_oracle.relayer.journal import Journal

    with Journal(tmp_path / "j.sqlite") as journal:
        journal.bind(31337, "0x" + "11" * 20)
    proc = run_cli("relay-status", "--db", tmp_path / "j.sqlite", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chain_id"] == 31337


def test_a_bad_option_value_is_one_line_naming_the_help(tmp_path: Path) -> None:
    proc = run_cli("request", "0x" + "ab" * 32, "in.json", "--fee", "-5", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "error: Invalid value for '--fee': -5 is not in the range x>=0. "
        "(see `zkml-oracle request --help`)"
    ]
