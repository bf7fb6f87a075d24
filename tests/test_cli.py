"""The console script as a user runs it: --help, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
        env={"ZKML_PROGRESS_AFTER": "0"},  # every step told, however short
    )
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)  # ezkl's own chatter must not reach stdout
    # stderr is a pipe here, not a terminal: each step is still told, one JSON event a line,
    # its start and its end.
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    told = [e["message"] for e in events if e["event"] == "progress"]
    assert "· generating proving and verifying keys …" in told
    assert any(m.startswith("✓ generating proving and verifying keys (") for m in told)
    assert len(told) >= 2 * len(built["timings"]), told
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


@pytest.mark.parametrize("as_json", [False, True])
def test_steps_are_told_one_line_each_on_a_stderr_that_is_not_a_terminal(as_json: bool) -> None:
    # Two quick steps with the announce threshold at 0 (ZKML_PROGRESS_AFTER), in a child
    # whose stderr is a pipe: each step's start and end, one line each (JSON with --json).
    script = (
        "from zkml_oracle._progress import Steps, progress_reporter\n"
        f"steps = Steps(progress_reporter(json_events={as_json}))\n"
        "with steps.step('a', 'making the dev SRS'): pass\n"
        "with steps.step('b', 'generating keys'): pass\n"
    )
    env = {**os.environ, "ZKML_PROGRESS_AFTER": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    lines = proc.stderr.splitlines()
    if as_json:
        assert [json.loads(line)["event"] for line in lines] == ["progress"] * 4
        lines = [json.loads(line)["message"] for line in lines]
    assert [line.split(" (")[0].strip() for line in lines] == [
        "· making the dev SRS …",
        "✓ making the dev SRS",
        "· generating keys …",
        "✓ generating keys",
    ]
    assert proc.stdout == ""
    # Unset, the threshold is 10 s: quick steps say nothing.
    env.pop("ZKML_PROGRESS_AFTER")
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_settings_come_from_zkml_variables_older_names_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zkml_oracle.exceptions import InputError
    from zkml_oracle.settings import settings

    monkeypatch.setenv("ZKML_RPC_URL", "http://127.0.0.1:8545")
    monkeypatch.setenv("ZKML_ORACLE_DEPLOYMENTS", "/srv/deployments")  # the name it had
    monkeypatch.setenv("ZKML_STALL_SECONDS", "5")
    now = settings()
    assert now.rpc_url == "http://127.0.0.1:8545" and now.stall_seconds == 5.0
    assert str(now.deployments) == "/srv/deployments" and now.progress_after == 10.0
    monkeypatch.setenv("ZKML_CHAIN_ID", "mainnet")
    with pytest.raises(InputError, match=r"^\$ZKML_CHAIN_ID='mainnet': .*: fix or unset it$"):
        settings()
