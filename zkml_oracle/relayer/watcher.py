"""The relayer's view of the chain, on plain web3.py: new requests, request states, receipts.

Every call here may fail with a transient RPC error (:func:`is_transient`); the service
retries those with capped backoff and keeps its loop turning meanwhile.
"""

from __future__ import annotations

import time
from typing import Any

from ..chain.contracts import ErrorDecoder, revert_data
from ..chain.node import Chain
from ..chain.oracle import Fulfilment, OnChainRequest, Oracle, Request, RequestStatus
from ..exceptions import RelayerFault as RelayerFault  # defined there, importable here too
from ..exceptions import Revert as Revert
from .journal import RequestEvent

__all__ = ["Fulfilment", "OnChainRequest", "OracleClient", "RequestStatus", "Revert"]

#: Blocks per eth_getLogs call.
LOG_CHUNK = 2000
#: Requests whose committed fields the client keeps (oldest evicted first).
MAX_RECORDS = 100_000


#: Node messages (geth, Anvil, reth, Erigon) that mean the relayer's account or fees are at
#: fault, not the request.
RELAYER_FAULTS = (
    "insufficient funds",
    "gas required exceeds allowance",
    "nonce too low",
    "nonce too high",
    "underpriced",
    "fee cap",
    "max fee per gas less than",
    "lack of funds",
    "out of funds",
)


def relayer_fault(exc: BaseException) -> RelayerFault | None:
    """``exc`` as a :class:`RelayerFault` if the node refused because of the relayer."""
    message = str(exc).lower()
    if any(m in message for m in RELAYER_FAULTS):
        return RelayerFault(str(exc)[:300])
    return None


def is_transient(exc: BaseException) -> bool:
    """A failure to reach the node (not a refusal by it)."""
    import requests
    from web3.exceptions import TimeExhausted

    if isinstance(exc, requests.exceptions.RequestException | TimeExhausted):
        return True
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ValueError | TypeError) and _malformed(exc):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_transient(cause)


def _malformed(exc: BaseException) -> bool:
    """An answer that is not JSON-RPC (a proxy's error page, a cut-off body): the endpoint's
    fault, to retry like a timeout."""
    from web3.exceptions import BadResponseFormat

    if isinstance(exc, BadResponseFormat):
        return True
    text = str(exc)
    return "Expecting value" in text or ("JSON" in text and "decode" in text.lower())


def connect_web3(url: str, timeout: float = 10.0) -> Any:
    """A web3 on ``url`` without web3's own retries (the service does its own)."""
    from web3 import Web3
    from web3.providers.rpc import HTTPProvider

    provider = HTTPProvider(
        url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
    )
    return Web3(provider)


class OracleClient(Oracle):
    """:class:`~zkml_oracle.chain.oracle.Oracle` on the relayer's own web3 (no retries of web3's
    own: the service retries), plus what the relayer does itself: scanning logs, building
    the transactions it signs, reading receipts and nonces."""

    label = "the oracle"

    def __init__(self, web3: Any, address: str) -> None:
        from eth_utils.address import to_checksum_address

        from ..chain.contracts import oracle

        compiled = oracle()
        chain = Chain.from_web3(web3)
        self._bind(chain, to_checksum_address(address), compiled, "run `zkml-oracle deploy`")
        self._requested = self._web3.events.InferenceRequested()
        self._errors = ErrorDecoder(compiled.abi)
        # Each request's committed fields (what fulfil takes back) and its log's block: bounded
        # by MAX_RECORDS, re-read from the chain when evicted or after a restart.
        self._records: dict[int, tuple[Request, int]] = {}

    @property
    def web3(self) -> Any:
        return self.chain.web3

    @property
    def contract(self) -> Any:
        """The oracle as a web3.py contract (its events, for the sealed-input reader)."""
        return self._web3

    def head(self) -> int:
        return int(self.web3.eth.block_number)

    def block_hash(self, number: int) -> str | None:
        """The canonical block ``number``'s hash, or None if the chain is not that long."""
        from web3.exceptions import BlockNotFound

        try:
            block = self.web3.eth.get_block(number)
        except BlockNotFound:
            return None
        return "0x" + bytes(block["hash"]).hex()

    def gas_limit(self) -> int:
        return int(self.web3.eth.get_block("latest")["gasLimit"])

    def has_code(self, address: str) -> bool:
        return len(self.web3.eth.get_code(address)) > 0

    def requests_between(
        self, first: int, last: int, model_ids: list[str] | None = None
    ) -> list[RequestEvent]:
        """``InferenceRequested`` logs in blocks ``first..last`` (of ``model_ids`` only, if
        given: the relayer asks for all, to journal the ones it does not serve too)."""
        from eth_utils.crypto import keccak

        abi = next(e for e in self._abi.abi if e.get("name") == "InferenceRequested")
        types = ",".join(i["type"] for i in abi["inputs"])
        topic0 = "0x" + keccak(text=f"InferenceRequested({types})").hex()
        models = None if model_ids is None else [m.lower() for m in model_ids]
        found: list[RequestEvent] = []
        start = first
        while start <= last:
            end = min(last, start + LOG_CHUNK - 1)
            logs = self.web3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": start,
                    "toBlock": end,
                    "topics": [topic0, None, models],
                }
            )
            for log in logs:
                request = Request.from_event(self._requested.process_log(log)["args"])
                self._remember(request, int(log["blockNumber"]))
                found.append(
                    RequestEvent(
                        request_id=request.id,
                        model_id=request.model_id,
                        input_felts=request.input_felts,
                        deadline=request.deadline,
                        fee=request.fee,
                        block_number=int(log["blockNumber"]),
                        log_index=int(log["logIndex"]),
                        callback=request.callback,
                        callback_gas=request.callback_gas_limit,
                    )
                )
            start = end + 1
        return found

    def _remember(self, request: Request, block: int) -> None:
        self._records[request.id] = (request, block)
        if len(self._records) > MAX_RECORDS:
            del self._records[next(iter(self._records))]

    def record(self, request_id: int) -> tuple[Request, int]:
        """Request ``request_id``'s committed fields and the block of its
        ``InferenceRequested`` (the oracle stores only their commitment)."""
        known = self._records.get(request_id)
        if known is not None:
            return known
        logs = self._requested.get_logs(from_block=0, argument_filters={"requestId": request_id})
        if not logs:
            raise Revert("ZkmlOracleUnknownRequest", f"no request {request_id} on the oracle")
        log = logs[-1]
        self._remember(Request.from_event(log["args"]), int(log["blockNumber"]))
        return self._records[request_id]

    def request(self, request_id: int, from_block: int = 0) -> Request:
        """As :meth:`Oracle.request`, from the fields scanned or read before when known."""
        return self.record(request_id)[0]

    def state(
        self, request_id: int, request: Request | None = None, tries: int = 3
    ) -> OnChainRequest:
        """As :meth:`Oracle.state`. A read, so a transient failure is retried here at once
        (twice): a batch reads one per request, and one flaky call should not undo the turn."""
        for attempt in range(tries):
            try:
                return super().state(request_id, request)
            except Exception as e:
                if not is_transient(e) or attempt == tries - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def fulfilment(self, request_id: int, from_block: int | None = None) -> Fulfilment | None:
        """As :meth:`Oracle.fulfilment`, searched from the request's own block by default."""
        if from_block is None:
            from_block = self.record(request_id)[1]
        return super().fulfilment(request_id, from_block)

    def model_registered(self, model_id: str) -> bool:
        try:
            return super().model_registered(model_id)
        except Exception as e:
            if is_transient(e):
                raise
            return False

    def fulfil_tx(
        self, request_id: int, proof: bytes, instances: list[int], sender: str
    ) -> dict[str, Any]:
        """The unsigned ``fulfill`` transaction, gas estimated (a would-be revert raises
        :class:`Revert` with the oracle's custom error)."""
        fn = self._web3.functions.fulfill(self.request(request_id).as_tuple(), proof, instances)
        return self._transaction(fn, sender, "fulfill")

    def fulfil_batch_tx(
        self,
        model_id: str,
        request_ids: list[int],
        proof: bytes,
        instances: list[int],
        sender: str,
    ) -> dict[str, Any]:
        """The unsigned ``fulfillBatch`` transaction (slot ``i`` answers ``request_ids[i]``),
        gas estimated, as :meth:`fulfil_tx`."""
        fn = self._web3.functions.fulfillBatch(
            bytes.fromhex(model_id.removeprefix("0x")),
            [self.request(r).as_terms() for r in request_ids],
            proof,
            instances,
        )
        return self._transaction(fn, sender, "fulfillBatch")

    def _transaction(self, fn: Any, sender: str, what: str) -> dict[str, Any]:
        try:
            gas = int(fn.estimate_gas({"from": sender}))
        except Exception as e:
            if is_transient(e):
                raise
            fault = relayer_fault(e)
            if fault is not None and revert_data(e) is None:
                raise fault from None
            raise self.revert(e, what) from None
        tx: dict[str, Any] = fn.build_transaction(
            {
                "from": sender,
                # A margin over the estimate, but never past the block's gas limit: a request
                # whose callback needs most of a block still fits.
                "gas": min(gas + gas // 5 + 10_000, max(gas, self.gas_limit())),
                "nonce": 0,
                "maxFeePerGas": 0,
                "maxPriorityFeePerGas": 0,
            }
        )
        return tx

    def revert(self, exc: BaseException, what: str = "fulfill") -> Revert:
        raw = revert_data(exc)
        if raw is not None and self._errors.known(raw):
            error = self._errors.describe(raw)
            return Revert(error.name, f"the oracle refused {what}: {error}", error.values)
        return Revert("", f"the oracle refused {what}: {exc}")

    def receipt(self, tx_hash: str) -> Any | None:
        from web3.exceptions import TransactionNotFound

        try:
            return self.web3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    def known(self, tx_hash: str) -> bool:
        """Does the node know the transaction (mined or in its mempool)?"""
        from web3.exceptions import TransactionNotFound

        try:
            self.web3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def mined_nonce(self, address: str) -> int:
        return int(self.web3.eth.get_transaction_count(address, "latest"))

    def pending_nonce(self, address: str) -> int:
        return int(self.web3.eth.get_transaction_count(address, "pending"))

    def broadcast(self, raw: bytes) -> None:
        """Send raw bytes; "already known" is success (the same bytes are in the mempool)."""
        try:
            self.web3.eth.send_raw_transaction(raw)
        except Exception as e:
            if is_transient(e):
                raise
            message = str(e).lower()
            if "already known" in message or "already imported" in message:
                return
            fault = relayer_fault(e)
            if fault is not None:
                raise fault from None
            raise
