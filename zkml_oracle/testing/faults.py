"""A JSON-RPC fault proxy on loopback, for the relayer's fault tests and soak benchmark.

It forwards each HTTP JSON-RPC call to a real node (Anvil) and, by rules, fails chosen calls:
an HTTP error status (502 ...), a connection dropped without an answer, a delay (past the
client's timeout: a timeout), a malformed body, or a JSON-RPC error; it can also run a hook
just before forwarding a call (mine a block, set a balance: to hit a race window exactly), or
add latency to every call, or fail a random share of calls (the soak's background noise).

    proxy = FaultProxy(anvil.url)
    proxy.add(Fault("eth_maxPriorityFeePerGas", "http", status=502, times=1))
    ... relay --rpc-url {proxy.url} ...
    proxy.close()

Stdlib only; each call is served on its own thread.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: How a call fails: ``http`` (an HTTP error ``status``), ``drop`` (the connection closed
#: without an answer), ``delay`` (answered ``seconds`` late), ``malformed`` (200 with a body
#: that is not JSON), ``rpc`` (a JSON-RPC error ``message``), ``hook`` (``hook`` runs first,
#: then the call is forwarded).
KINDS = ("http", "drop", "delay", "malformed", "rpc", "hook")


@dataclass
class Fault:
    method: str  # JSON-RPC method, or "*" for any
    kind: str
    times: int = 1  # how many matching calls it hits (then it is spent); -1: for ever
    status: int = 502
    seconds: float = 0.0
    message: str = "injected fault"
    hook: Callable[[], None] | None = None
    #: Only calls whose params match (e.g. ``lambda p: p[1] == "latest"``).
    when: Callable[[list[Any]], bool] | None = None
    after: str | None = None  # armed only once a call to this method went through
    hits: int = 0
    armed: bool = field(default=True)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r}: one of {KINDS}")
        if self.after is not None:
            self.armed = False


class FaultProxy:
    """``url`` forwards to ``upstream``, failing calls as its :class:`Fault` rules say."""

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 0,
        noisy: tuple[str, ...] = (),
    ) -> None:
        self.upstream = upstream
        self.latency = latency
        #: Share of calls (of the ``noisy`` methods, or all if empty) answered with a random
        #: failure (502, drop, malformed).
        self.error_rate = error_rate
        self.noisy = noisy
        self._random = random.Random(seed)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy._serve(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.error_rate = 0.0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- serving ---

    def _pick(self, method: str, params: list[Any]) -> Fault | None:
        with self._lock:
            self.calls[method] += 1
            chosen = None
            for fault in self._faults:
                if not fault.armed and fault.after == method:
                    fault.armed = True
                    continue
                if chosen is not None or not fault.armed:
                    continue
                if fault.method not in ("*", method) or fault.times == 0:
                    continue
                if fault.when is not None and not fault.when(params):
                    continue
                fault.hits += 1
                if fault.times > 0:
                    fault.times -= 1
                chosen = fault
            noisy = not self.noisy or method in self.noisy
            if chosen is None and noisy and self._random.random() < self.error_rate:
                chosen = Fault(method, self._random.choice(("http", "drop", "malformed")))
            if chosen is not None:
                self.injected[f"{method}:{chosen.kind}"] += 1
            return chosen

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        first = doc[0] if isinstance(doc, list) and doc else doc
        method = str(first.get("method", "")) if isinstance(first, dict) else ""
        params = first.get("params") or [] if isinstance(first, dict) else []
        if self.latency:
            time.sleep(self.latency)
        fault = self._pick(method, params)
        if fault is not None:
            if fault.kind == "drop":
                handler.close_connection = True
                handler.connection.close()
                return
            if fault.kind == "http":
                self._answer(handler, fault.status, b"<html>bad gateway</html>", "text/html")
                return
            if fault.kind == "malformed":
                self._answer(handler, 200, b'{"jsonrpc": "2.0", "id": ', "application/json")
                return
            if fault.kind == "rpc":
                error = {"code": -32000, "message": fault.message}
                answer = {"jsonrpc": "2.0", "id": first.get("id"), "error": error}
                self._answer(handler, 200, json.dumps(answer).encode(), "application/json")
                return
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault.kind == "hook" and fault.hook is not None:
                fault.hook()
        try:
            request = urllib.request.Request(
                self.upstream, body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=60) as answer:
                self._answer(handler, answer.status, answer.read(), "application/json")
        except urllib.error.HTTPError as e:
            self._answer(handler, e.code, e.read(), "application/json")
        except OSError:
            self._answer(handler, 502, b"upstream unreachable", "text/plain")

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, data: bytes, kind: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (its timeout): nothing to answer


def rpc(url: str, method: str, *params: Any) -> Any:
    """One JSON-RPC call straight to a node (Anvil's test methods: evm_snapshot, evm_revert,
    evm_mine, evm_setAutomine, anvil_setBalance ...)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        doc = json.loads(answer.read())
    if "error" in doc:
        raise RuntimeError(f"{method}: {doc['error']}")
    return doc.get("result")
