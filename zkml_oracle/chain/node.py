"""Chains: the embedded local Anvil, remote endpoints, and who signs.

Every chain command connects through Ape (``ape.networks.parse_network_choice``), so a user's
Ape networks and accounts work as they do in ``ape run``:

- no network given: the toolkit's local Anvil. A node started by ``zkml-oracle node`` is
  reused; otherwise one is started for the command and stopped after it, its state kept in
  ``<state dir>/anvil-state.json`` so the next command sees the same chain;
- ``--network ethereum:sepolia:node`` (any Ape choice), or ``--rpc-url URL`` for any JSON-RPC
  endpoint (Ape then uses the chain id the node reports).

A local dev chain is chain id 31337 or 1337: only there do Anvil's well-known dev keys sign.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._fs import atomic_write_json, file_lock
from ..exceptions import ChainError as ChainError  # defined there, importable here too
from ..exceptions import InputError

DEV_CHAIN_IDS = frozenset({31337, 1337})
DEFAULT_STATE_DIR = Path(".zkml-oracle")


@dataclass(frozen=True)
class ChainOptions:
    """Where to connect and who signs; all None means the local Anvil and its dev account."""

    network: str | None = None
    rpc_url: str | None = None
    account: str | None = None
    expect_chain_id: int | None = None
    state_dir: Path = DEFAULT_STATE_DIR


@dataclass(frozen=True)
class Chain:
    """A connected chain."""

    provider: Any  # ape.api.ProviderAPI; None on a plain web3 connection (connect_rpc)
    chain_id: int
    genesis_hash: str
    url: str | None
    w3: Any = None  # web3.Web3 of a plain connection

    @property
    def uses_ape(self) -> bool:
        return self.provider is not None

    @property
    def is_local_dev(self) -> bool:
        return self.chain_id in DEV_CHAIN_IDS

    @property
    def web3(self) -> Any:
        return self.w3 if self.w3 is not None else self.provider.web3

    @classmethod
    def from_provider(cls, provider: Any, url: str | None = None) -> Chain:
        """The chain behind a connected Ape provider (also inside ``ape run``)."""
        # Calls and gas estimates run against the next block (its timestamp, its number), the
        # one a transaction sent now lands in: against "latest", a time-dependent check (a
        # round "too soon", a deadline) answers for a moment already past, e.g. after
        # evm_increaseTime until a block is mined.
        provider.web3.eth.default_block = "pending"
        genesis = provider.web3.eth.get_block(0)["hash"].to_0x_hex()
        return cls(provider, int(provider.chain_id), genesis, url or getattr(provider, "uri", None))

    @classmethod
    def from_web3(cls, w3: Any, url: str | None = None) -> Chain:
        """The chain behind a plain web3.py connection (no Ape: reads, and transactions the
        node's unlocked accounts sign)."""
        genesis = "0x" + bytes(w3.eth.get_block(0)["hash"]).hex()
        return cls(None, int(w3.eth.chain_id), genesis, url, w3)

    def describe(self) -> str:
        return f"chain {self.chain_id} (genesis {self.genesis_hash[:10]}…)"


def redact(url: str) -> str:
    """An endpoint as it may appear in messages: RPC URLs often carry an API key in their path,
    query or user info, so only the scheme, host and port are shown."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not host:
        return url if "://" not in url else "<unparseable URL>"
    hidden = "/…" if parts.path.strip("/") or parts.query or parts.username else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    """One plain JSON-RPC call, used to probe endpoints before Ape connects."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise ChainError(f"{redact(url)} answered {method} with an error: {answer['error']}")
    return answer["result"]


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_chainId", timeout=2.0)
    except (OSError, ValueError, ChainError):
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalNode:
    """An Anvil process this toolkit started (and stops)."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url

    @classmethod
    def start(
        cls,
        *,
        port: int | None = None,
        chain_id: int | None = None,
        state_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
        foreground: bool = False,
        timeout: float = 30.0,
    ) -> LocalNode:
        from ..toolchain import find_anvil

        anvil = find_anvil().require()
        port = port or free_port()
        args = [str(anvil), "--host", "127.0.0.1", "--port", str(port)]
        if chain_id is not None:
            args += ["--chain-id", str(chain_id)]
        if state_file is not None:
            args += ["--state", str(state_file)]
        args += list(extra_args)
        out = None if foreground else subprocess.DEVNULL
        proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if proc.poll() is not None:
                raise ChainError(f"anvil exited with code {proc.returncode}: is port {port} taken?")
            if time.monotonic() > deadline:
                proc.kill()
                raise ChainError(f"anvil did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.05)
        return cls(proc, url)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Anvil writes its --state file then), SIGKILL past the timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def node_record(state_dir: Path) -> Path:
    return state_dir / "node.json"


def _running_node(state_dir: Path) -> str | None:
    """The URL of a ``zkml-oracle node`` serving ``state_dir``'s chain, if one answers."""
    with contextlib.suppress(ValueError, KeyError, OSError):
        url = str(json.loads(node_record(state_dir).read_text())["url"])
        if _answers(url):
            return url
    return None


def keep_time(url: str) -> None:
    """Set a restarted node's clock to the wall clock, or just past its last block if that is
    ahead (``evm_increaseTime``): chain time only moves forward.

    Anvil does not resume a saved chain's clock where it was, so without this the hours between
    two commands never pass on chain (rounds stay "too soon", deadlines never come), or the
    clock goes back."""
    latest = int(rpc(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    rpc(url, "evm_setTime", [max(int(time.time()), latest + 1)])


def _start_local(
    state_dir: Path,
    *,
    port: int | None = None,
    chain_id: int | None = None,
    foreground: bool = False,
) -> LocalNode:
    """Anvil on ``state_dir``'s chain (created on first use); call with the state lock held.

    The state is saved when Anvil stops (SIGTERM) and loaded on the next start, so every
    command and ``zkml-oracle node`` see one chain, whose time only moves forward."""
    state = state_dir / "anvil-state.json"
    genesis = state_dir / "local-chain.json"
    # Anvil regenerates its genesis block (new timestamp, new hash) on every start, even
    # from a saved state; a fixed genesis timestamp keeps the chain's identity. A new
    # state gets a new timestamp, so a fresh chain never matches old deployment records.
    if not state.is_file() or not genesis.is_file():
        atomic_write_json(genesis, {"genesis_timestamp": int(time.time())})
    timestamp = json.loads(genesis.read_text())["genesis_timestamp"]
    node = LocalNode.start(
        port=port,
        chain_id=chain_id,
        state_file=state,
        extra_args=("--timestamp", str(timestamp)),
        foreground=foreground,
    )
    try:
        keep_time(node.url)
    except BaseException:
        node.stop()
        raise
    return node


@contextlib.contextmanager
def local_chain_url(state_dir: Path) -> Iterator[str]:
    """The URL of the toolkit's local Anvil: the running ``zkml-oracle node``, or one started
    for this block (state persisted in ``state_dir``) and stopped after it."""
    url = _running_node(state_dir)
    if url is not None:
        yield url
        return
    with file_lock(state_dir / "lock"):
        # A node may have started while this command waited for the lock.
        url = _running_node(state_dir)
        if url is not None:
            yield url
            return
        node = _start_local(state_dir)
        try:
            yield node.url
        finally:
            node.stop()


def run_node(port: int, chain_id: int | None, state_dir: Path, state_file: Path | None) -> int:
    """``zkml-oracle node``: Anvil in the foreground, announced to other commands.

    With no ``state_file`` it serves the chain earlier commands used (``state_dir``'s), and
    saves it on exit for the commands after it."""
    url = f"http://127.0.0.1:{port}"
    if _answers(url):
        raise ChainError(f"something already answers on {url}: stop it or pass --port")
    state_dir.mkdir(parents=True, exist_ok=True)
    running = _running_node(state_dir)
    if running is not None:
        raise ChainError(
            f"a zkml-oracle node already serves {state_dir}'s chain ({running}): use it, or stop it"
        )
    with file_lock(state_dir / "lock"):  # wait for a command running its own Anvil
        if state_file is None:
            node = _start_local(state_dir, port=port, chain_id=chain_id, foreground=True)
        else:
            node = LocalNode.start(
                port=port, chain_id=chain_id, state_file=state_file, foreground=True
            )
            keep_time(node.url)
        atomic_write_json(node_record(state_dir), {"url": node.url, "pid": node.proc.pid})

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGTERM to this process must stop Anvil too, not orphan it.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return node.proc.wait()
    except KeyboardInterrupt:
        node.stop()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(FileNotFoundError):
            node_record(state_dir).unlink()


def _anvil_on_path() -> None:
    """ape-foundry looks for anvil on PATH; ours may live in node_modules."""
    from ..toolchain import find_anvil

    tool = find_anvil()
    if tool.path is not None:
        folder = str(tool.path.parent)
        if folder not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")


def _endpoint(options: ChainOptions, stack: contextlib.ExitStack) -> tuple[str, str | None]:
    """(Ape network choice, URL when known) for ``options``; the local Anvil is entered on
    ``stack`` (started if no ``zkml-oracle node`` serves it)."""
    if options.network and options.rpc_url:
        raise InputError("pass --network or --rpc-url, not both")
    if options.rpc_url:
        try:
            rpc(options.rpc_url, "eth_chainId")
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise ChainError(
                f"cannot reach {redact(options.rpc_url)} ({reason}): check the URL and "
                "that the node is up"
            ) from None
        return options.rpc_url, options.rpc_url
    if options.network:
        return options.network, None
    url = stack.enter_context(local_chain_url(options.state_dir))
    return url, url


def _check_chain_id(options: ChainOptions, chain: Chain, choice: str) -> None:
    if options.expect_chain_id is not None and chain.chain_id != options.expect_chain_id:
        raise ChainError(
            f"wrong chain: {redact(choice)} is chain {chain.chain_id}, not "
            f"{options.expect_chain_id}: check --network/--rpc-url"
        )


@contextlib.contextmanager
def connect_rpc(options: ChainOptions) -> Iterator[Chain]:
    """A plain web3 connection, for commands that only read or that a local dev chain's
    unlocked account signs: Ape's import and network manager cost seconds a command. An Ape
    network (--network) or account (--account) goes through :func:`connect`."""
    if options.network or options.account:
        with connect(options) as chain:
            yield chain
        return
    with contextlib.ExitStack() as stack:
        choice, url = _endpoint(options, stack)
        assert url is not None
        from web3 import HTTPProvider, Web3

        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 60}))
        w3.eth.default_block = "pending"  # as Chain.from_provider: the next block's view
        chain = Chain.from_web3(w3, url)
        _check_chain_id(options, chain, choice)
        yield chain


@contextlib.contextmanager
def connect(options: ChainOptions) -> Iterator[Chain]:
    """Connect through Ape to the chain ``options`` name (the local Anvil by default)."""
    _anvil_on_path()
    with contextlib.ExitStack() as stack:
        choice, url = _endpoint(options, stack)
        import ape
        from ape.exceptions import ApeException
        from ape.logging import LogLevel, logger

        logger.set_level(LogLevel.WARNING)
        try:
            provider = stack.enter_context(ape.networks.parse_network_choice(choice))
            chain = Chain.from_provider(provider, url)
        except ApeException as e:
            raise ChainError(f"cannot connect to {redact(choice)}: {e}") from None
        _check_chain_id(options, chain, choice)
        yield chain


@dataclass(frozen=True)
class NodeAccount:
    """An account the node holds unlocked (a local dev chain's), on a plain connection."""

    address: str


def sender(chain: Chain, alias: str | None) -> Any:
    """The account that signs: an Ape account by alias, or Anvil's first dev account on a
    local dev chain. Dev keys never sign anywhere else."""
    if alias is None:
        if not chain.is_local_dev:
            raise InputError(
                f"{chain.describe()} is not a local dev chain: pass --account ALIAS "
                "(an Ape account: `ape accounts import ALIAS`)"
            )
        if not chain.uses_ape:  # the node's own unlocked dev account signs (eth_sendTransaction)
            return NodeAccount(str(chain.web3.eth.accounts[0]))
        import ape

        return ape.accounts.test_accounts[0]
    import ape

    try:
        account = ape.accounts.load(alias)
    except Exception:
        raise InputError(
            f"no Ape account named {alias!r}: list them with `ape accounts list`, add one with "
            "`ape accounts import ALIAS`"
        ) from None
    if hasattr(account, "set_autosign"):
        try:
            account.set_autosign(True)
        except Exception:
            raise InputError(
                f"cannot unlock account {alias!r}: set APE_ACCOUNTS_{alias}_PASSPHRASE or run "
                "in a terminal to type the passphrase"
            ) from None
    return account
