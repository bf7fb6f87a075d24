"""The package as a user installs it: a wheel in a fresh venv, outside the checkout, with no
contracts/ folder and no Solidity compiler, serves the whole chain path on a real Anvil.

The venv reuses the already-installed dependencies through a .pth file naming this checkout's
site-packages (a path line, so the editable install's import hook there never runs): nothing is
downloaded and zkml_oracle is imported from the wheel, which the test checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from web3 import Web3

from zkml_oracle.chain import contracts, free_port, rpc
from zkml_oracle.toolchain import find_anvil
from zkml_oracle.types import BuildResult, ProofResult

REPO = Path(__file__).resolve().parent.parent
#: pip options: the package alone, nothing fetched.
OFFLINE = ("--no-deps", "--no-index", "--quiet")


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def _install_wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of the package's files, install it in a fresh venv; return
    the venv's bin folder."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src)
    shutil.copytree(
        REPO / "zkml_oracle", src / "zkml_oracle", ignore=shutil.ignore_patterns("__pycache__")
    )
    # No build isolation: setuptools and wheel come from the locked dev dependencies.
    dist = tmp / "dist"
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *OFFLINE,
            "--no-build-isolation",
            "-w",
            str(dist),
            str(src),
        ]
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("zkml_oracle-*.whl")

    venv = tmp / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    (Path(purelib.stdout.strip()) / "_checkout_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    # --ignore-installed: pip must not uninstall the editable install it sees through the .pth.
    installed = _run(
        [str(python), "-m", "pip", "install", *OFFLINE, "--ignore-installed", str(wheel)]
    )
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


@pytest.mark.slow
def test_an_installed_wheel_deploys_requests_fulfils_and_relays_without_solc_or_sources(
    built: BuildResult,
    proof: ProofResult,
    example: dict[str, Path],
    tmp_path: Path,
) -> None:
    venv_bin = _install_wheel(tmp_path)
    # Anvil by path (the native binary from node_modules); nothing else of the checkout's.
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "anvil").symlink_to(find_anvil().require())
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": os.pathsep.join([str(tools), str(venv_bin), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "ZKML_ORACLE_CACHE": os.environ["ZKML_ORACLE_CACHE"],  # the session's dev SRS
    }
    assert not (work / "contracts").exists() and shutil.which("solc", path=env["PATH"]) is None

    def cli(*args: str | Path) -> dict:  # type: ignore[type-arg]
        proc = _run([str(venv_bin / "zkml-oracle"), *map(str, args), "--json"], cwd=work, env=env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    where = _run(
        [str(venv_bin / "python"), "-c", "import zkml_oracle; print(zkml_oracle.__file__)"],
        cwd=work,
        env=env,
    )
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr

    doctor = _run([str(venv_bin / "zkml-oracle"), "doctor", "--json"], cwd=work, env=env)
    tools_found = {t["name"]: t for t in json.loads(doctor.stdout)["tools"]}
    assert doctor.returncode == 1  # solc is missing, and only build needs it
    assert not tools_found["solc"]["ok"] and "build" in tools_found["solc"]["needed_for"]
    assert tools_found["contracts"]["ok"] and tools_found["anvil"]["ok"]
    assert tools_found["contracts"]["path"].startswith(str(tmp_path / "venv"))

    # The wheel starts Anvil (found on PATH); commands name it by URL, as a user of a node would.
    port = free_port()
    node = subprocess.Popen(
        [str(venv_bin / "zkml-oracle"), "node", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert node.poll() is None and time.monotonic() < deadline, "the node did not start"
            try:
                assert rpc(url, "eth_chainId") == hex(31337)
                break
            except OSError:
                time.sleep(0.1)

        deployed = cli("deploy", built.build_dir, "--rpc-url", url)
        model_id = deployed["model_id"]
        by_hand = cli("request", model_id, example["input"], "--rpc-url", url)["request_id"]
        fulfilled = cli("fulfill", by_hand, built.build_dir, proof.proof_path, "--rpc-url", url)
        assert fulfilled["fulfilled"] == {str(by_hand): proof.outputs}

        relayed = cli("request", model_id, example["input"], "--rpc-url", url)["request_id"]
        cli("relay", "--model", built.build_dir, "--once", "--db", "j.sqlite", "--rpc-url", url)
        # Read from the chain here (faster than one more CLI start): who fulfilled what.
        web3 = Web3(Web3.HTTPProvider(url))
        oracle = web3.eth.contract(address=deployed["oracle"], abi=contracts.oracle().abi)
        fulfilments = oracle.events.RequestFulfilled().get_logs(from_block=0)
        assert sorted(int(e.args.requestId) for e in fulfilments) == [by_hand, relayed]
    finally:
        node.terminate()  # `node` stops its Anvil on SIGTERM
        node.wait(30)
    assert not {".solcx", ".svm"} & {p.name for p in home.iterdir()}  # no compiler was set up
