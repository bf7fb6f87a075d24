"""Prometheus metrics for the relayer, served only when asked (``relay --metrics-port``).

``prometheus-client`` is imported only then, into a registry of the relayer's own.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import InputError


class Metrics:
    """No metrics: every hook does nothing."""

    def seen(self, n: int) -> None: ...
    def finished(self, state: str, latency: float | None) -> None: ...
    def proved(self, seconds: float, requests: int = 1) -> None: ...
    def sent(self) -> None: ...
    def rpc_error(self) -> None: ...
    def open_requests(self, n: int) -> None: ...
    def head(self, block: int) -> None: ...
    def alert(self, on: bool) -> None: ...
    def reorg(self) -> None: ...
    def deep_reorg(self) -> None: ...
    def gap_filled(self) -> None: ...


class PrometheusMetrics(Metrics):
    """``zkml_relayer_*`` metrics on ``http://ADDR:PORT/metrics``."""

    def __init__(self, port: int, addr: str = "127.0.0.1") -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise InputError(
                "--metrics-port needs prometheus-client: pip install prometheus-client"
            ) from None
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self._seen = prom.Counter("zkml_relayer_requests_seen", "Requests journaled.", registry=r)
        self._finished = prom.Counter(
            "zkml_relayer_requests_finished", "Requests by final state.", ["state"], registry=r
        )
        self._latency = prom.Histogram(
            "zkml_relayer_fulfil_latency_seconds",
            "From request seen to fulfilment mined.",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )
        self._prove = prom.Histogram(
            "zkml_relayer_prove_seconds",
            "Proving time per proof (one proof answers a whole batch).",
            buckets=(0.5, 1, 2, 5, 10, 20, 60, 120, 300),
            registry=r,
        )
        self._batch = prom.Histogram(
            "zkml_relayer_proof_requests",
            "Requests answered by one proof (the batch size).",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self._sent = prom.Counter(
            "zkml_relayer_transactions_sent", "fulfill / fulfillBatch sent.", registry=r
        )
        self._rpc = prom.Counter("zkml_relayer_rpc_errors", "Transient RPC failures.", registry=r)
        self._open = prom.Gauge("zkml_relayer_open_requests", "Requests not final.", registry=r)
        self._head = prom.Gauge("zkml_relayer_head_block", "Last block scanned.", registry=r)
        self._alert = prom.Gauge(
            "zkml_relayer_sending_paused",
            "1 while the node refuses our transactions (funds, fees, nonce): page someone.",
            registry=r,
        )
        self._reorgs = prom.Counter(
            "zkml_relayer_reorgs", "Reorgs seen under the scan cursor.", registry=r
        )
        self._deep = prom.Counter(
            "zkml_relayer_deep_reorgs",
            "Reorgs that orphaned a fulfilment counted final (deeper than --confirmations).",
            registry=r,
        )
        self._gaps = prom.Counter(
            "zkml_relayer_nonce_gaps_filled", "Nonces filled by a no-op transfer.", registry=r
        )
        try:
            self._server: Any = prom.start_http_server(port, addr=addr, registry=r)
        except OSError as e:
            raise InputError(
                f"cannot serve metrics on {addr}:{port} ({e}): pick another port"
            ) from None

    def seen(self, n: int) -> None:
        self._seen.inc(n)

    def finished(self, state: str, latency: float | None) -> None:
        self._finished.labels(state=state).inc()
        if latency is not None:
            self._latency.observe(latency)

    def proved(self, seconds: float, requests: int = 1) -> None:
        self._prove.observe(seconds)
        self._batch.observe(requests)

    def sent(self) -> None:
        self._sent.inc()

    def rpc_error(self) -> None:
        self._rpc.inc()

    def open_requests(self, n: int) -> None:
        self._open.set(n)

    def head(self, block: int) -> None:
        self._head.set(block)

    def alert(self, on: bool) -> None:
        self._alert.set(1 if on else 0)

    def reorg(self) -> None:
        self._reorgs.inc()

    def deep_reorg(self) -> None:
        self._deep.inc()

    def gap_filled(self) -> None:
        self._gaps.inc()
