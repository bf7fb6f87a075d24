"""Finding the external tools zkml-oracle needs, offline: node, solc and anvil.

Nothing here downloads. solc is a native binary when the user has one (py-solc-x's or svm's
install folders, or PATH); otherwise the official WebAssembly compiler from
``node_modules/solc`` behind a small front (``_solc_front.cjs``) that answers like native solc.
The front is registered where py-solc-x looks (``$SOLCX_BINARY_PATH`` or ``~/.solcx``, file
``solc-v0.8.20``) and where ezkl looks (svm's ``~/.svm/0.8.20/solc-0.8.20``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._fs import atomic_write_bytes
from .exceptions import ToolchainError

SOLC_VERSION = "0.8.20"
ANVIL_VERSION = "1.7.1"
FRONT_MARKER = "# zkml-oracle solc front"
SETUP_FIX = "run `make setup` in the zkml-oracle checkout (it runs `npm install`)"


@dataclass(frozen=True)
class Tool:
    """A tool as found on this machine; ``path`` is None when it is missing."""

    name: str
    path: Path | None
    version: str | None
    source: str
    fix: str | None = None
    #: What needs it: an installed wheel deploys and relays without the build-only tools.
    needed_for: str = ""

    @property
    def ok(self) -> bool:
        return self.path is not None and self.fix is None

    def require(self) -> Path:
        if self.path is None or self.fix is not None:
            raise ToolchainError(f"{self.name} is not usable ({self.source}): {self.fix}")
        return self.path


def _run_version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def node_modules_dirs() -> list[Path]:
    """Where to look for ``node_modules``: ``$ZKML_ORACLE_NODE_MODULES``, the current folder and
    its parents, then the checkout this package is installed from (editable installs)."""
    found: list[Path] = []
    env = os.environ.get("ZKML_ORACLE_NODE_MODULES")
    if env:
        found.append(Path(env))
    cwd = Path.cwd().resolve()
    found.extend(p / "node_modules" for p in (cwd, *cwd.parents))
    found.append(Path(__file__).resolve().parent.parent / "node_modules")
    return [p for p in dict.fromkeys(found) if p.is_dir()]


def find_node() -> Tool:
    path = shutil.which("node")
    if path is None:
        return Tool(
            "node", None, None, "not on PATH", "install Node.js (apt-get install nodejs npm)"
        )
    out = _run_version([path, "--version"])
    return Tool("node", Path(path), out.strip().lstrip("v") if out else None, "PATH")


def _solcjs_dir() -> Path | None:
    for nm in node_modules_dirs():
        pkg = nm / "solc" / "package.json"
        if pkg.is_file():
            return pkg.parent
    return None


def _is_front(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return FRONT_MARKER.encode() in f.read(512)
    except OSError:
        return False


def _solc_version(path: Path) -> str | None:
    out = _run_version([str(path), "--version"])
    m = re.search(r"Version:\s*(\d+\.\d+\.\d+)", out or "")
    return m.group(1) if m else None


def solcx_install_dir() -> Path:
    env = os.environ.get("SOLCX_BINARY_PATH")
    return Path(env) if env else Path.home() / ".solcx"


def svm_install_path(version: str = SOLC_VERSION) -> Path:
    return Path.home() / ".svm" / version / f"solc-{version}"


def _native_solc_candidates() -> list[Path]:
    cands = [solcx_install_dir() / f"solc-v{SOLC_VERSION}", svm_install_path()]
    on_path = shutil.which("solc")
    if on_path:
        cands.append(Path(on_path))
    return cands


def find_solc() -> Tool:
    """A native solc of the pinned version if there is one, else the WebAssembly front."""
    for cand in _native_solc_candidates():
        if cand.is_file() and os.access(cand, os.X_OK) and not _is_front(cand):
            version = _solc_version(cand)
            if version == SOLC_VERSION:
                return Tool("solc", cand, version, "native")
    pkg = _solcjs_dir()
    if pkg is None:
        return Tool(
            "solc",
            None,
            None,
            "no native solc and no node_modules/solc",
            f"{SETUP_FIX}, or `npm install solc@{SOLC_VERSION}` in your project",
        )
    version = json.loads((pkg / "package.json").read_text()).get("version")
    if version != SOLC_VERSION:
        return Tool(
            "solc",
            None,
            version,
            f"{pkg} is solc {version}",
            f"`npm install solc@{SOLC_VERSION}` (ezkl's verifiers ask for {SOLC_VERSION})",
        )
    node = find_node()
    if not node.ok:
        return Tool("solc", None, version, "the WebAssembly solc needs node", node.fix)
    return Tool(
        "solc", solcx_install_dir() / f"solc-v{SOLC_VERSION}", version, f"wasm front ({pkg})"
    )


def _front_script(node: Path, solcjs: Path) -> bytes:
    front = Path(__file__).resolve().parent / "_solc_front.cjs"
    return (
        "#!/bin/sh\n"
        f"{FRONT_MARKER}: the WebAssembly solc {SOLC_VERSION} behind native solc's CLI.\n"
        f"ZKML_SOLCJS={shlex.quote(str(solcjs))} exec {shlex.quote(str(node))} "
        f'{shlex.quote(str(front))} "$@"\n'
    ).encode()


def ensure_solc() -> Path:
    """Return a solc that py-solc-x, Ape and ezkl will all find, registering the front if needed.

    A native solc already in place is never overwritten; a front of ours is rewritten so it
    points at this checkout's node and node_modules.
    """
    tool = find_solc()
    path = tool.require()
    if tool.source == "native":
        return path
    solcjs = _solcjs_dir()
    node = find_node().require()
    assert solcjs is not None
    script = _front_script(node, solcjs)
    for target in (solcx_install_dir() / f"solc-v{SOLC_VERSION}", svm_install_path()):
        if target.exists() and not _is_front(target):
            continue  # someone's native solc (maybe another version's checks failed): keep it
        if not target.exists() or target.read_bytes() != script:
            atomic_write_bytes(target, script)
            target.chmod(0o755)
    if _solc_version(path) != SOLC_VERSION:
        raise ToolchainError(f"the solc front at {path} does not answer --version: {SETUP_FIX}")
    return path


def _anvil_candidates() -> list[Path]:
    cands: list[Path] = []
    on_path = shutil.which("anvil")
    if on_path:
        cands.append(Path(on_path))
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), ""
    )
    exe = "anvil.exe" if system == "win32" else "anvil"
    for nm in node_modules_dirs():
        cands.append(nm / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / exe)
    return cands


def find_anvil() -> Tool:
    for cand in _anvil_candidates():
        if cand.is_file() and os.access(cand, os.X_OK):
            out = _run_version([str(cand), "--version"])
            m = re.search(r"(\d+\.\d+\.\d+)", out or "")
            if m:
                source = "PATH" if shutil.which("anvil") == str(cand) else "node_modules"
                return Tool("anvil", cand, m.group(1), source)
    return Tool(
        "anvil",
        None,
        None,
        "not on PATH nor in node_modules/@foundry-rs",
        f"{SETUP_FIX}, or `npm install @foundry-rs/anvil@{ANVIL_VERSION}` "
        "(never with --omit=optional: the binary is an optional package)",
    )


def find_ezkl() -> Tool:
    try:
        import ezkl
    except ImportError:
        return Tool(
            "ezkl", None, None, "not importable", "run `make setup` (pip install ezkl==23.0.5)"
        )
    return Tool("ezkl", Path(ezkl.__file__), getattr(ezkl, "__version__", None), "python package")


def find_contracts() -> Tool:
    """The oracle's compiled contracts: shipped in the package, or (in a checkout whose
    ``contracts/`` changed since ``make artifacts``) compiled from source, which needs solc."""
    from .chain.contracts import ARTIFACTS, INDEX, REGENERATE, checkout, stale_sources

    index = ARTIFACTS / INDEX
    if not index.is_file():
        return Tool(
            "contracts",
            None,
            None,
            f"{index} is missing",
            f"reinstall zkml-oracle, or run `{REGENERATE}` in the checkout",
        )
    recorded = json.loads(index.read_text())
    digest = str(recorded["sourcesSha256"])[:12]
    source = f"shipped artifacts, {len(recorded['contracts'])} contracts"
    root = checkout()
    if root is not None and stale_sources(root):
        # Not a failure: a developer editing a contract gets it compiled from source.
        source = f"compiled from {root / 'contracts'} (changed since `{REGENERATE}`)"
    return Tool("contracts", ARTIFACTS, digest, source)


def doctor() -> list[Tool]:
    """Every tool with its version and where it was found; missing ones carry their fix.

    Only ``build`` needs solc (ezkl compiles each circuit's verifier with it) and node (the
    WebAssembly solc): deploy, request, fulfil and the relayer use the compiled contracts
    shipped in the package and the verifier compiled into the build directory.
    """
    solc = find_solc()
    if solc.ok and solc.source != "native":
        try:
            ensure_solc()
        except ToolchainError as e:
            solc = Tool("solc", None, solc.version, solc.source, str(e))
    needs = {
        "ezkl": "build, prove, verify, fulfil, relay (proofs and their calldata)",
        "node": "build (the WebAssembly solc)",
        "solc": "build (compiling the circuit's verifier)",
        "anvil": "the local chain (not needed with --network/--rpc-url)",
        "contracts": "deploy, request, fulfil, relay",
    }
    tools = [find_ezkl(), find_node(), solc, find_anvil(), find_contracts()]
    return [dataclasses.replace(t, needed_for=needs[t.name]) for t in tools]
