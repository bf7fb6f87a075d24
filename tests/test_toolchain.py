"""Finding and registering tools offline (zkml_oracle.toolchain), with the real binaries."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import solcx

from zkml_oracle import toolchain
from zkml_oracle.exceptions import ToolchainError


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no ~/.solcx and no ~/.svm: the front must be registered from scratch."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SOLCX_BINARY_PATH", raising=False)
    return home


def test_the_front_is_registered_where_solcx_and_ezkl_look(empty_home: Path) -> None:
    path = toolchain.ensure_solc()
    solcx_copy = empty_home / ".solcx" / "solc-v0.8.20"
    svm_copy = empty_home / ".svm" / "0.8.20" / "solc-0.8.20"
    assert path == solcx_copy
    for p in (solcx_copy, svm_copy):
        assert os.access(p, os.X_OK)
        out = subprocess.run([p, "--version"], capture_output=True, text=True, check=True).stdout
        assert out.splitlines() == [
            "solc, the solidity compiler commandline interface",
            "Version: 0.8.20+commit.a1b79de6.Emscripten.clang",
        ]
    assert str(solcx.wrapper.get_solc_version(path)) == "0.8.20"


def test_the_front_compiles_through_py_solc_x(empty_home: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "Math.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.20;\n"
        "library Math {\n"
        "  function twice(uint256 x) internal pure returns (uint256) { return 2 * x; }\n}\n"
    )
    source = (
        '// SPDX-License-Identifier: MIT\npragma solidity 0.8.20;\nimport "lib/Math.sol";\n'
        "contract C {\n"
        "  function f(uint256 x) external pure returns (uint256) { return Math.twice(x); }\n}\n"
    )
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"C.sol": {"content": source}},
            "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
        },
        solc_binary=toolchain.ensure_solc(),
        base_path=str(tmp_path),
    )
    contract = out["contracts"]["C.sol"]["C"]
    assert contract["abi"][0]["name"] == "f"
    assert len(contract["evm"]["bytecode"]["object"]) > 100


def test_large_compiler_output_is_not_truncated(empty_home: Path) -> None:
    # Output past a pipe's 64 KiB is where a front that exits early cuts the JSON.
    body = "".join(
        f"contract C{i} {{ function f{i}(uint256 a, uint256 b) external pure returns (uint256) "
        f"{{ return a * b + {i}; }} }}\n"
        for i in range(60)
    )
    source = "// SPDX-License-Identifier: MIT\npragma solidity 0.8.20;\n" + body
    request = json.dumps(
        {
            "language": "Solidity",
            "sources": {"Many.sol": {"content": source}},
            "settings": {
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode", "evm.deployedBytecode"]}}
            },
        }
    )
    proc = subprocess.run(
        [toolchain.ensure_solc(), "--standard-json"],
        input=request,
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(proc.stdout) > 200_000
    assert len(json.loads(proc.stdout)["contracts"]["Many.sol"]) == 60


def test_a_native_solc_is_preferred_and_never_overwritten(empty_home: Path) -> None:
    native = empty_home / ".solcx" / "solc-v0.8.20"
    native.parent.mkdir(parents=True)
    # A stand-in for a user's own native binary: answers --version like native solc.
    native.write_text(
        "#!/bin/sh\necho 'solc, the solidity compiler commandline interface'\n"
        "echo 'Version: 0.8.20+commit.a1b79de6.Linux.g++'\n"
    )
    native.chmod(0o755)
    before = native.read_bytes()
    tool = toolchain.find_solc()
    assert (tool.source, tool.path) == ("native", native)
    assert toolchain.ensure_solc() == native
    assert native.read_bytes() == before


def test_anvil_is_found_in_node_modules() -> None:
    tool = toolchain.find_anvil()
    assert tool.ok and tool.version == "1.7.1"
    out = subprocess.run([tool.require(), "--version"], capture_output=True, text=True, check=True)
    assert "1.7.1" in out.stdout


def test_missing_tools_name_their_fix(monkeypatch: pytest.MonkeyPatch, empty_home: Path) -> None:
    monkeypatch.setattr(toolchain, "node_modules_dirs", lambda: [])
    monkeypatch.setenv("PATH", "/nonexistent")
    anvil = toolchain.find_anvil()
    assert not anvil.ok and "npm install @foundry-rs/anvil@1.7.1" in (anvil.fix or "")
    solc = toolchain.find_solc()
    assert not solc.ok and "npm install solc@0.8.20" in (solc.fix or "")
    with pytest.raises(ToolchainError, match="solc is not usable.*make setup"):
        toolchain.ensure_solc()
    node = toolchain.find_node()
    assert not node.ok and "nodejs" in (node.fix or "")
