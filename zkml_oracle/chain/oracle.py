"""The oracle contract from Python: deploy it, register models, request, fulfil, push, read.

Transactions go through Ape (accounts, confirmations, decoded custom errors); reads and event
decoding go straight to the provider's web3. Values cross the boundary as felts encoded by
:mod:`zkml_oracle.field`, the twin of the contracts' ``FieldEncoding`` library.

What the CLI needs to talk about a model by id alone (its build directory, input scales,
output shapes) is kept in the chain's deployment record next to the oracle's address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..calldata import CONFIG_TYPES as CONFIG_TYPES  # defined there, importable here too
from ..calldata import ModelConfig as ModelConfig
from ..calldata import input_felts as input_felts
from ..calldata import input_hash as input_hash
from ..calldata import outputs_to_floats as outputs_to_floats
from ..calldata import proof_calldata as proof_calldata
from ..calldata import proven_slots as proven_slots
from ..exceptions import InputError, ZkmlOracleError
from ..exceptions import OracleRefused as OracleRefused  # defined there, importable here too
from ..exceptions import VerifierMismatch as VerifierMismatch
from ..prover import checked_manifest
from ..types import Manifest
from .deploy import _deploy_verifier, check_dev_srs, deploy_contract
from .deployments import DeploymentStore, FeedEntry, InputEntry, ModelEntry, OracleEntry
from .node import Chain, ChainError

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class RequestStatus(IntEnum):
    """``IZkmlOracle.RequestStatus``."""

    NONE = 0
    PENDING = 1
    FULFILLED = 2
    CANCELLED = 3


class SkipReason(IntEnum):
    """``IZkmlOracle.SkipReason``: why ``fulfillBatch`` left a slot's request alone."""

    FULFILLED = 0
    CANCELLED = 1
    EXPIRED = 2


@dataclass(frozen=True)
class Result:
    """``IZkmlOracle.Result``: a round of a model's push feed, read by ABI field name."""

    round: int
    updated_at: int
    input_hash: str  # 0x-hex
    outputs: tuple[int, ...]  # signed fixed point at the model's output scale

    @classmethod
    def decode(cls, raw: Any) -> Result:
        return cls(
            round=int(raw.round),
            updated_at=int(raw.updatedAt),
            input_hash="0x" + bytes(raw.inputHash).hex(),
            outputs=tuple(int(v) for v in raw.outputs),
        )


@dataclass(frozen=True)
class Sent:
    """A mined transaction of a plain connection (the fields the CLI reads of Ape's receipt)."""

    txn_hash: str
    gas_used: int


@dataclass(frozen=True)
class Request:
    """``IZkmlOracle.Request``: a request's fields as ``InferenceRequested`` emits them. The
    oracle stores only their commitment; ``fulfill``, ``fulfillBatch`` and ``cancel`` take them
    back (:meth:`as_tuple`) and refuse any other value."""

    id: int
    model_id: str  # 0x-hex
    input_hash: str  # 0x-hex
    requester: str
    refund_to: str
    callback: str
    callback_gas_limit: int
    deadline: int
    open_at: int
    fee: int
    seed: int  # low 64 bits of the hash of the block before the request's
    input_felts: tuple[int, ...] = ()

    @classmethod
    def from_event(cls, args: Any) -> Request:
        """From a decoded ``InferenceRequested`` log's ``args``."""
        felts = tuple(int(f) for f in args["inputFelts"])
        return cls(
            id=int(args["requestId"]),
            model_id="0x" + bytes(args["modelId"]).hex(),
            input_hash=input_hash(list(felts)),
            requester=str(args["requester"]),
            refund_to=str(args["refundTo"]),
            callback=str(args["callback"]),
            callback_gas_limit=int(args["callbackGasLimit"]),
            deadline=int(args["deadline"]),
            open_at=int(args["openAt"]),
            fee=int(args["fee"]),
            seed=int(args["seed"]),
            input_felts=felts,
        )

    def as_terms(self) -> tuple[Any, ...]:
        """The ``RequestTerms`` struct ``fulfillBatch`` takes: the fields but ``modelId`` (the
        batch's) and ``inputHash`` (the oracle hashes the slot's input instances)."""
        full = self.as_tuple()
        return (full[0], *full[3:])

    def as_tuple(self) -> tuple[Any, ...]:
        """The ``Request`` struct as the contract's ABI takes it."""
        return (
            self.id,
            bytes.fromhex(self.model_id.removeprefix("0x")),
            bytes.fromhex(self.input_hash.removeprefix("0x")),
            self.requester,
            self.refund_to,
            self.callback,
            self.callback_gas_limit,
            self.deadline,
            self.open_at,
            self.fee,
            self.seed,
        )


@dataclass(frozen=True)
class OnChainRequest:
    """A request's state: its status (the oracle's one slot per request), its deadline (from
    its log) and, once fulfilled, its fulfiller (from ``RequestFulfilled``)."""

    status: RequestStatus
    deadline: int
    fulfiller: str


@dataclass(frozen=True)
class Fulfilment:
    """A request's fulfilment, from its ``RequestFulfilled`` log (``fulfill``) or its entry in
    a ``BatchFulfilled`` log (``fulfillBatch``): who answered, in which transaction, with
    what outputs."""

    tx_hash: str
    fulfiller: str
    outputs: tuple[int, ...]
    block_number: int | None = None
    block_hash: str | None = None

    @classmethod
    def from_log(cls, log: Any, tx_hash: str | None = None) -> dict[int, Fulfilment]:
        """Every fulfilment a decoded ``RequestFulfilled`` or ``BatchFulfilled`` log records,
        by request id (a receipt's logs carry no block fields worth keeping: ``tx_hash`` is
        given)."""
        args = log["args"]
        fulfiller = str(args["fulfiller"])
        where: tuple[str, int | None, str | None] = (
            (tx_hash, None, None)
            if tx_hash is not None
            else (
                "0x" + bytes(log["transactionHash"]).hex(),
                int(log["blockNumber"]),
                "0x" + bytes(log["blockHash"]).hex(),
            )
        )
        return {
            rid: cls(where[0], fulfiller, outputs, where[1], where[2])
            for rid, outputs in fulfilled_outputs(log).items()
        }


def fulfilled_outputs(log: Any) -> dict[int, tuple[int, ...]]:
    """The outputs of each request a decoded ``RequestFulfilled`` (one request) or
    ``BatchFulfilled`` (every request of one ``fulfillBatch``: request ``requestIds[j]``'s
    outputs are ``outputs[j * k : (j + 1) * k]``, ``k`` the model's output count) log
    fulfilled, by request id."""
    args = log["args"]
    if "requestIds" not in args:
        return {int(args["requestId"]): tuple(int(v) for v in args["outputs"])}
    ids = [int(r) for r in args["requestIds"]]
    flat = [int(v) for v in args["outputs"]]
    k = len(flat) // len(ids) if ids else 0
    return {rid: tuple(flat[j * k : (j + 1) * k]) for j, rid in enumerate(ids)}


def fulfilled_by_request(
    contract: Any, from_block: int = 0, to_block: int | str = "latest"
) -> dict[int, list[tuple[int, ...]]]:
    """Every fulfilment ``contract`` (a web3.py oracle contract) logged in
    ``from_block..to_block``, ``RequestFulfilled`` and ``BatchFulfilled`` alike: request id ->
    the outputs of each time it was fulfilled (once, on a sound oracle), in chain order."""
    logs = sorted(
        [
            *contract.events.RequestFulfilled().get_logs(from_block=from_block, to_block=to_block),
            *contract.events.BatchFulfilled().get_logs(from_block=from_block, to_block=to_block),
        ],
        key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])),
    )
    found: dict[int, list[tuple[int, ...]]] = {}
    for log in logs:
        for rid, outputs in fulfilled_outputs(log).items():
            found.setdefault(rid, []).append(outputs)
    return found


def credit_features_typed_data(
    pool: str, chain_id: int, applicant: str, subject: bytes, felts: list[int], expiry: int
) -> dict[str, Any]:
    """The EIP-712 message ``CreditFeatures`` that a data provider signs (``eth_signTypedData_v4``)
    to vouch that ``felts`` are ``applicant``'s features, for the ``CreditGrant`` at ``pool``."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "CreditFeatures": [
                {"name": "applicant", "type": "address"},
                {"name": "subject", "type": "bytes32"},
                {"name": "inputHash", "type": "bytes32"},
                {"name": "expiry", "type": "uint256"},
            ],
        },
        "primaryType": "CreditFeatures",
        "domain": {
            "name": "CreditGrant",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": pool,
        },
        "message": {
            "applicant": applicant,
            "subject": "0x" + subject.hex(),
            "inputHash": input_hash(felts),
            "expiry": expiry,
        },
    }


def sign_credit_features(
    rpc_url: str,
    attestor: str,
    *,
    pool: str,
    chain_id: int,
    applicant: str,
    subject: bytes,
    felts: list[int],
    expiry: int,
) -> bytes:
    """:func:`credit_features_typed_data` signed by ``attestor``, an account the node at
    ``rpc_url`` holds unlocked (a dev chain's; a real data provider signs with its own key)."""
    from .node import rpc

    data = credit_features_typed_data(pool, chain_id, applicant, subject, felts, expiry)
    signature: str = rpc(rpc_url, "eth_signTypedData_v4", [attestor, data])
    return bytes.fromhex(signature.removeprefix("0x"))


class Oracle:
    """A deployed ZkmlOracle on a connected chain."""

    #: How refusals name the contract ("the oracle refused fulfill: ...").
    label = "the oracle"

    def __init__(self, chain: Chain, address: str) -> None:
        from .contracts import oracle

        self._bind(chain, address, oracle(), "run `zkml-oracle deploy`")

    def _bind(self, chain: Chain, address: str, compiled: Any, fix: str) -> None:
        """Bind to the contract ``compiled`` at ``address``; no code there is refused with
        ``fix``. Subclasses (other contracts of the project) call it from their ``__init__``."""
        if not chain.web3.eth.get_code(address):
            raise ChainError(
                f"no {compiled.name} contract at {address} on {chain.describe()}: {fix}"
            )
        self.chain = chain
        self.address = address
        self._abi = compiled
        # decode_tuples: structs come back as named tuples, read by their ABI field names.
        self._web3 = chain.web3.eth.contract(address=address, abi=compiled.abi, decode_tuples=True)

    def send(self, method: str, *args: Any, sender: Any, value: int = 0) -> Any:
        """A transaction; a refusal raises OracleRefused with the decoded custom error.

        ``fulfill`` and ``cancel`` take a request, ``fulfillBatch`` a list of them: a request
        id (int) is resolved here to its committed fields (:meth:`request`); a :class:`Request`
        or a raw tuple is passed as given.

        Through Ape when the chain was connected through it (its accounts sign); on a plain
        connection (:func:`zkml_oracle.chain.node.connect_rpc`), the node's unlocked dev account."""
        if method in ("fulfill", "cancel") and args:
            args = (self._request_arg(args[0]), *args[1:])
        elif method == "fulfillBatch" and len(args) > 1:
            args = (args[0], [self._request_arg(r, terms=True) for r in args[1]], *args[2:])
        if not self.chain.uses_ape:
            return self._send_plain(method, *args, sender=sender, value=value)
        from ape.contracts import ContractInstance
        from ape.exceptions import ApeException, ContractLogicError, CustomError
        from ethpm_types import ContractType

        from .._ezkl import captured_fds
        from .reverts import from_ape

        instance = ContractInstance(
            self.address,
            ContractType.model_validate({"contractName": self._abi.name, "abi": self._abi.abi}),
        )
        try:
            # Ape prints a call trace of every revert to stdout; the refusal is reported below.
            with captured_fds():
                return getattr(instance, method)(*args, sender=sender, value=value)
        except ContractLogicError as e:
            detail = str(from_ape(e)) if isinstance(e, CustomError) else self.decode_error(e)
            raise OracleRefused(f"{self.label} refused {method}: {detail}") from None
        except ApeException as e:
            raise ChainError(f"{method} failed: {e}") from None

    def _send_plain(self, method: str, *args: Any, sender: Any, value: int) -> Sent:
        from web3.exceptions import ContractCustomError, ContractLogicError, Web3Exception

        fn = getattr(self._web3.functions, method)(*args)
        try:
            tx_hash = fn.transact({"from": sender.address, "value": value})  # estimates first
        except (ContractCustomError, ContractLogicError) as e:
            raise OracleRefused(f"{self.label} refused {method}: {self.decode_error(e)}") from None
        except (Web3Exception, ValueError) as e:
            raise ChainError(f"{method} failed: {e}") from None
        receipt = self.chain.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if int(receipt["status"]) != 1:
            raise ChainError(f"{method} reverted on-chain (tx {tx_hash.to_0x_hex()})")
        return Sent(tx_hash.to_0x_hex(), int(receipt["gasUsed"]))

    def events(self, receipt: Any, name: str) -> list[Any]:
        from web3.logs import DISCARD

        raw = self.chain.web3.eth.get_transaction_receipt(receipt.txn_hash)
        return list(getattr(self._web3.events, name)().process_receipt(raw, errors=DISCARD))

    def call(self, method: str, *args: Any) -> Any:
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            return getattr(self._web3.functions, method)(*args).call()
        except (ContractCustomError, ContractLogicError) as e:
            raise OracleRefused(f"{method} reverted: {self.decode_error(e)}") from None

    def _request_arg(self, request: Any, terms: bool = False) -> Any:
        if isinstance(request, int):
            request = self.request(request)
        if isinstance(request, Request):
            return request.as_terms() if terms else request.as_tuple()
        return request

    def request(self, request_id: int, from_block: int = 0) -> Request:
        """Request ``request_id``'s fields, from its ``InferenceRequested`` log (the oracle
        stores only their commitment; ``isCommitted`` checks them); unknown ids are refused
        with the fix."""
        logs = self._web3.events.InferenceRequested().get_logs(
            from_block=from_block, argument_filters={"requestId": request_id}
        )
        if not logs:
            raise InputError(
                f"no request {request_id} on the oracle at {self.address}: check the id"
            )
        return Request.from_event(logs[-1]["args"])

    def request_status(self, request_id: int) -> RequestStatus:
        """The status the oracle's one slot per request holds (``NONE``: no such request)."""
        return RequestStatus(int(self._web3.functions.requestStatus(request_id).call()))

    def state(self, request_id: int, request: Request | None = None) -> OnChainRequest:
        """Request ``request_id``'s status, deadline and, once fulfilled, its fulfiller
        (``request``: its fields, when already read)."""
        status = self.request_status(request_id)
        if status == RequestStatus.NONE:
            return OnChainRequest(status, 0, ZERO_ADDRESS)
        request = request or self.request(request_id)
        fulfiller = ZERO_ADDRESS
        if status == RequestStatus.FULFILLED:
            done = self.fulfilment(request_id)
            fulfiller = done.fulfiller if done is not None else ZERO_ADDRESS
        return OnChainRequest(status, request.deadline, fulfiller)

    def fulfilment(self, request_id: int, from_block: int = 0) -> Fulfilment | None:
        """Request ``request_id``'s fulfilment (None before it is fulfilled): its
        ``RequestFulfilled`` log, found by its id, or its entry in a ``BatchFulfilled`` of its
        model from ``from_block`` on (a batch log does not index its ids)."""
        logs = self._web3.events.RequestFulfilled().get_logs(
            from_block=from_block, argument_filters={"requestId": request_id}
        )
        if logs:
            return Fulfilment.from_log(logs[-1])[request_id]
        model = bytes.fromhex(self.request(request_id, from_block).model_id.removeprefix("0x"))
        for log in reversed(
            self._web3.events.BatchFulfilled().get_logs(
                from_block=from_block, argument_filters={"modelId": model}
            )
        ):
            found = Fulfilment.from_log(log).get(request_id)
            if found is not None:
                return found
        return None

    def fulfilments_in(self, receipt: Any) -> dict[int, Fulfilment]:
        """The fulfilments one mined transaction made (``fulfill``'s or ``fulfillBatch``'s),
        by request id."""
        from web3.logs import DISCARD

        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        found: dict[int, Fulfilment] = {}
        for event in (self._web3.events.RequestFulfilled(), self._web3.events.BatchFulfilled()):
            for log in event.process_receipt(receipt, errors=DISCARD):
                if log["address"] == self.address:
                    found.update(Fulfilment.from_log(log, tx_hash))
        return found

    def model_registered(self, model_id: str) -> bool:
        """Whether ``model_id`` is registered (a failure to reach the node is raised)."""
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            model = self._web3.functions.getModel(model_id).call()
        except (ContractCustomError, ContractLogicError):
            return False
        return bool(model.registeredAt)

    def latest_result(self, model_id: str) -> Result | None:
        """The latest round of ``model_id``'s push feed; None before its first round."""
        from web3.exceptions import ContractCustomError, ContractLogicError

        from .contracts import error_decoder, revert_data

        try:
            return Result.decode(self._web3.functions.latestResult(model_id).call())
        except (ContractCustomError, ContractLogicError) as e:
            raw = revert_data(e)
            if raw is not None and error_decoder().describe(raw).name == "ZkmlOracleNoResult":
                return None
            raise OracleRefused(f"latestResult reverted: {self.decode_error(e)}") from None

    def decode_error(self, exc: Exception) -> str:
        """A custom error from revert data, readable and with its fix (web3 keeps only the raw
        data; :mod:`zkml_oracle.chain.reverts` presents it)."""
        from .contracts import error_decoder, revert_data

        raw = revert_data(exc)
        if raw is None or not error_decoder().known(raw):
            return str(exc)
        return str(error_decoder().describe(raw))


# --- admin settings (issue 14's hardening: who fulfils, callback gas, deadlines, feeds) ---

#: AccessControl's admin role, and the role that fulfils during the grace period.
DEFAULT_ADMIN_ROLE = b"\0" * 32
FULFILLER_ROLE_NAME = "FULFILLER_ROLE"


@dataclass(frozen=True)
class OracleSettings:
    """The oracle's admin settings (``IZkmlOracle.Settings``)."""

    #: The most gas a request may ask for its callback.
    max_callback_gas_limit: int
    #: Seconds after a request during which only FULFILLER_ROLE holders may fulfil it (0: open).
    fulfiller_grace_period: int
    #: The furthest a request's deadline may be, in seconds from the request.
    max_request_ttl: int

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.max_callback_gas_limit, self.fulfiller_grace_period, self.max_request_ttl)


@dataclass(frozen=True)
class FeedPolicy:
    """Who may move a model's push feed: its publishers, or anyone once it is open."""

    model_id: str
    open: bool
    #: Whether each account asked about is a publisher.
    publishers: dict[str, bool]


def checksum_address(value: str) -> str:
    """``value`` as a checksummed address, or one line naming the problem."""
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(value):
        raise InputError(f"{value!r} is not an address: give 0x and 40 hex digits")
    return str(to_checksum_address(value))


def settings(oracle: Oracle) -> OracleSettings:
    """The oracle's current settings."""
    return OracleSettings(*(int(v) for v in oracle.call("settings")))


def _require_admin(oracle: Oracle, account: Any) -> None:
    """Refuse up front, in one line, a signer who is not the oracle's admin."""
    address = str(account.address)
    if not oracle.call("hasRole", DEFAULT_ADMIN_ROLE, address):
        raise OracleRefused(
            f"{address} is not the oracle's admin (DEFAULT_ADMIN_ROLE at {oracle.address}): "
            "sign with the admin's account (--account)"
        )


def set_settings(
    oracle: Oracle,
    account: Any,
    *,
    max_callback_gas_limit: int | None = None,
    fulfiller_grace_period: int | None = None,
    max_request_ttl: int | None = None,
) -> OracleSettings:
    """Replace the given settings (the others kept); returns the settings now in force."""
    _require_admin(oracle, account)
    current = settings(oracle)
    given = {
        "max_callback_gas_limit": max_callback_gas_limit,
        "fulfiller_grace_period": fulfiller_grace_period,
        "max_request_ttl": max_request_ttl,
    }
    wanted = replace(current, **{k: v for k, v in given.items() if v is not None})
    for name, value in asdict(wanted).items():
        if value < 0:
            raise InputError(f"{name} must not be negative (got {value})")
    if wanted != current:
        oracle.send("setSettings", wanted.as_tuple(), sender=account)
    return settings(oracle)


def is_fulfiller(oracle: Oracle, address: str) -> bool:
    """Whether ``address`` may fulfil requests during their grace period."""
    role = oracle.call(FULFILLER_ROLE_NAME)
    return bool(oracle.call("hasRole", role, checksum_address(address)))


def set_fulfiller(oracle: Oracle, account: Any, address: str, allowed: bool) -> bool:
    """Grant (or revoke) FULFILLER_ROLE to ``address``; returns whether it holds it now."""
    address = checksum_address(address)
    _require_admin(oracle, account)
    role = oracle.call(FULFILLER_ROLE_NAME)
    if is_fulfiller(oracle, address) != allowed:
        oracle.send("grantRole" if allowed else "revokeRole", role, address, sender=account)
    return is_fulfiller(oracle, address)


def feed_policy(oracle: Oracle, model_id: str, accounts: list[str]) -> FeedPolicy:
    """Whether ``model_id``'s feed is open, and which of ``accounts`` publish to it."""
    if not oracle.model_registered(model_id):
        raise InputError(f"model {model_id} is not registered on the oracle at {oracle.address}")
    return FeedPolicy(
        model_id=model_id,
        open=bool(oracle.call("feedOpen", model_id)),
        publishers={a: bool(oracle.call("isFeedPublisher", model_id, a)) for a in accounts},
    )


def set_feed_publisher(
    oracle: Oracle, account: Any, model_id: str, address: str, allowed: bool
) -> FeedPolicy:
    """Let ``address`` publish to ``model_id``'s feed (or stop it)."""
    address = checksum_address(address)
    _require_admin(oracle, account)
    feed_policy(oracle, model_id, [])  # refuse an unknown model in one line
    oracle.send("setFeedPublisher", model_id, address, allowed, sender=account)
    return feed_policy(oracle, model_id, [address])


def set_feed_open(oracle: Oracle, account: Any, model_id: str, open_: bool) -> FeedPolicy:
    """Open ``model_id``'s feed to anyone (or close it to its publishers again)."""
    _require_admin(oracle, account)
    feed_policy(oracle, model_id, [])
    oracle.send("setFeedOpen", model_id, open_, sender=account)
    return feed_policy(oracle, model_id, [])


# --- the verifier behind a model, checked off-chain ---


@dataclass(frozen=True)
class VerifierCheck:
    """A registered model's verifier against the one its build reproduces."""

    model_id: str
    verifier: str
    #: keccak256 of the code: recorded at registration, on-chain now, reproduced from the vk.
    registered_codehash: str
    onchain_codehash: str
    reproduced_codehash: str

    @property
    def matches(self) -> bool:
        return self.registered_codehash == self.onchain_codehash == self.reproduced_codehash


def check_verifier(oracle: Oracle, model_id: str, build_dir: Path) -> VerifierCheck:
    """Whether ``model_id``'s verifier is, byte for byte, what ezkl and solc produce from
    ``build_dir``'s verifying key (settings and SRS): the check that closes what the oracle's
    registration-time scan leaves open (docs/protocol.md, row 8). Raises
    :class:`VerifierMismatch` when it is not."""
    from eth_utils.crypto import keccak

    from ..circuit.verifier import reproduce_runtime

    manifest = Manifest.load(Path(build_dir))
    try:
        config = oracle.call("getModel", model_id).config
    except OracleRefused:
        raise InputError(
            f"model {model_id} is not registered on the oracle at {oracle.address}"
        ) from None
    digest = bytes(config.artifactDigest).hex()
    if digest != manifest.artifact_digest.removeprefix("0x"):
        raise InputError(
            f"model {model_id} was registered from another build (artifact digest 0x{digest}, "
            f"{build_dir} has 0x{manifest.artifact_digest.removeprefix('0x')}): give that "
            "model's build directory"
        )
    verifier = str(config.verifier)
    runtime = reproduce_runtime(
        settings=manifest.artifact("settings", build_dir),
        vk=manifest.artifact("vk", build_dir),
        srs=manifest.artifact("srs", build_dir),
    )
    check = VerifierCheck(
        model_id=model_id,
        verifier=verifier,
        registered_codehash="0x" + bytes(oracle.call("verifierCodehash", model_id)).hex(),
        onchain_codehash="0x" + keccak(bytes(oracle.chain.web3.eth.get_code(verifier))).hex(),
        reproduced_codehash="0x" + keccak(runtime).hex(),
    )
    if not check.matches:
        raise VerifierMismatch(
            f"the verifier of model {model_id} at {verifier} is not ezkl's verifier for "
            f"{build_dir}'s verifying key (code hash {check.onchain_codehash}, registered "
            f"{check.registered_codehash}, expected {check.reproduced_codehash}): do not "
            "trust its results"
        )
    return check


def model_record(store: DeploymentStore, chain: Chain, model_id: str) -> ModelEntry:
    """The deployment record's entry of a registered model (its build directory, output
    layout, verifier); one line with the fix when it has none."""
    record = store.load(chain).models.get(model_id.lower())
    if record is None:
        raise InputError(
            f"model {model_id} is not recorded on {chain.describe()}: register it with "
            "`zkml-oracle deploy DIR` (same chain options, same --deployments)"
        )
    return record


def check_build_serves(
    chain: Chain,
    store: DeploymentStore,
    build_dir: Path,
    manifest: Manifest,
    record: ModelEntry,
    what: str,
) -> None:
    """Refuse a build directory that is not the one of the model ``record`` names (one line
    naming both model ids), before a proof is sent for the wrong model."""
    if manifest.artifact_digest == record.artifact_digest:
        return
    from .deploy import recorded_model_id

    theirs = record.model_id
    try:
        mine = f"model {recorded_model_id(chain, manifest, store)}"
    except ZkmlOracleError:
        mine = f"a model not registered here (artifact {manifest.artifact_digest[:16]}…)"
    raise InputError(
        f"{what} is for model {theirs}, but {build_dir} builds {mine}: pass model {theirs}'s "
        f"build directory ({record.build_dir})"
    )


def oracle_address(store: DeploymentStore, chain: Chain) -> str:
    entry = store.load(chain).oracle
    if not entry:
        raise InputError(
            f"no oracle recorded on {chain.describe()}: run `zkml-oracle deploy DIR` first"
        )
    return entry.address


@dataclass(frozen=True)
class OracleDeployment:
    oracle: str
    verifier: str
    model_id: str
    gas: dict[str, int]
    reused: dict[str, bool]


def deploy_and_register(
    chain: Chain,
    build_dir: Path,
    account: Any,
    *,
    allow_dev_srs: bool = False,
    store: DeploymentStore | None = None,
    manifest: Manifest | None = None,
) -> OracleDeployment:
    """The verifier, the oracle (once per chain) and the model's registration, each reused
    when already recorded and present on-chain (``manifest``: the build's manifest, as
    :func:`~zkml_oracle.prover.checked_manifest` read it)."""
    from .contracts import oracle as oracle_artifact

    build_dir = Path(build_dir).resolve()
    store = store or DeploymentStore()
    manifest = manifest or checked_manifest(build_dir)
    check_dev_srs(manifest, chain, allow_dev_srs)
    if manifest.verifier is None or manifest.verifier.kind != "standalone":
        raise InputError(
            "the oracle calls a standalone verifier: rebuild without --reusable to register "
            "this model (the reusable verifier still works with `deploy` + `verify --onchain` "
            "through its own contract)"
        )
    ModelConfig.from_manifest(manifest, ZERO_ADDRESS)  # refuse a model the oracle can't serve
    verifier = _deploy_verifier(chain, build_dir, manifest, account, store)
    gas = {"verifier": verifier.gas_used}
    reused = {"verifier": verifier.reused}

    entry = store.load(chain).oracle
    if entry and chain.web3.eth.get_code(entry.address):
        address, reused["oracle"] = entry.address, True
        gas["oracle"] = 0
    else:
        address, tx, used = deploy_contract(
            chain, account, oracle_artifact(), account.address, allow_dev_srs
        )
        gas["oracle"], reused["oracle"] = used, False
        record = OracleEntry(
            address=address,
            tx=tx,
            gas_used=used,
            deployer=str(account.address),
            allow_dev_srs=allow_dev_srs,
        )
        store.update(chain, lambda r: setattr(r, "oracle", record))
    oracle = Oracle(chain, address)
    _check_deployed_code(chain, build_dir, manifest, verifier.address)
    config = ModelConfig.from_manifest(manifest, verifier.address)
    model_id = config.model_id
    on_chain = oracle.call("getModel", model_id) if oracle.model_registered(model_id) else None
    if on_chain is None:
        receipt = oracle.send("registerModel", config.as_tuple(), sender=account)
        gas["register"], reused["model"] = int(receipt.gas_used), False
    else:
        gas["register"], reused["model"] = 0, True
    model_entry = ModelEntry(
        model_id=model_id,
        build_dir=str(build_dir),
        artifact_digest=manifest.artifact_digest,
        verifier=verifier.address,
        visibility=asdict(manifest.visibility),
        inputs=[InputEntry(name=t.name, size=t.size, scale=t.scale) for t in manifest.inputs],
        output_scale=config.output_scale,
        output_sizes=[t.size for t in manifest.outputs],
    )
    store.update(chain, lambda r: r.models.__setitem__(model_id, model_entry))
    return OracleDeployment(address, verifier.address, model_id, gas, reused)


def _check_deployed_code(chain: Chain, build_dir: Path, manifest: Manifest, address: str) -> None:
    """The code at ``address`` is the build's compiled verifier (a recorded address may hold
    other code after a chain reset or a replaced record): never register anything else."""
    from ..circuit.verifier import CompiledContract

    expected = CompiledContract.load(manifest.artifact("verifier", build_dir)).runtime
    if bytes(chain.web3.eth.get_code(address)) != expected:
        raise ChainError(
            f"the code at {address} is not the verifier compiled in {build_dir}: refusing to "
            "register it (deploy the build's verifier again with a fresh --deployments record)"
        )


def deploy_feed(
    chain: Chain,
    account: Any,
    model_id: str,
    *,
    output: int,
    decimals: int,
    store: DeploymentStore,
) -> dict[str, Any]:
    """A ZkmlFeedAdapter over output ``output`` of the model's push feed: deployed once per
    model, output and decimals (recorded; ``reused`` tells), its latest round read."""
    from .contracts import feed_adapter

    record = model_record(store, chain, model_id)
    count = sum(record.output_sizes)
    if not 0 <= output < count:
        raise InputError(f"--output {output} is out of range: the model has {count} outputs")
    model_id = record.model_id
    for address, known in store.load(chain).feeds.items():
        same = (known.model_id, known.output, known.decimals) == (
            model_id,
            output,
            decimals,
        )
        if same and chain.web3.eth.get_code(address):
            return {**known.model_dump(), "reused": True, "latest": read_feed(chain, address)}
    description = f"zkml {Path(record.build_dir).name} output {output}"
    address, tx, gas = deploy_contract(
        chain,
        account,
        feed_adapter(),
        oracle_address(store, chain),
        model_id,
        output,
        decimals,
        description,
        b"\0" * 32,  # unbound: the model's latest round, whatever its input
    )
    entry = FeedEntry(
        feed=address,
        tx=tx,
        gas_used=gas,
        model_id=model_id,
        output=output,
        decimals=decimals,
        description=description,
    )
    store.update(chain, lambda r: r.feeds.__setitem__(address, entry))
    return {**entry.model_dump(), "reused": False, "latest": read_feed(chain, address)}


def read_feed(chain: Chain, address: str) -> dict[str, Any] | None:
    """A feed adapter's ``latestRoundData`` (answer scaled by its decimals); None before the
    model's first round."""
    from web3.exceptions import ContractCustomError, ContractLogicError

    from .contracts import feed_adapter

    adapter = chain.web3.eth.contract(address=address, abi=feed_adapter().abi)
    decimals = int(adapter.functions.decimals().call())
    try:
        round_id, answer, _, updated_at, _ = adapter.functions.latestRoundData().call()
    except (ContractCustomError, ContractLogicError):
        return None  # ZkmlOracleNoResult: nothing published yet
    return {
        "round": int(round_id),
        "answer": int(answer),
        "value": int(answer) / 10**decimals,
        "updated_at": int(updated_at),
    }


def status(
    oracle: Oracle, request_id: int, record_of: Callable[[str], ModelEntry]
) -> dict[str, Any]:
    """pending | fulfilled | cancelled | expired, with outputs and fulfiller once fulfilled:
    the status from the oracle's one slot per request, the rest from its events."""
    state = oracle.request_status(request_id)
    if state == RequestStatus.NONE:
        raise InputError(f"no request {request_id} on the oracle at {oracle.address}: check the id")
    req = oracle.request(request_id)
    out: dict[str, Any] = {
        "request_id": request_id,
        "model_id": req.model_id,
        "deadline": req.deadline,
        "requester": req.requester,
        "fee": req.fee,
        "input_hash": req.input_hash,
    }
    if state == RequestStatus.PENDING:
        now = int(oracle.chain.web3.eth.get_block("latest")["timestamp"])
        out["status"] = "expired" if now > req.deadline else "pending"
    elif state == RequestStatus.CANCELLED:
        out["status"] = "cancelled"
    else:
        out["status"] = "fulfilled"
        done = oracle.fulfilment(request_id)
        if done is not None:
            out["fulfiller"] = done.fulfiller
            out["outputs"] = outputs_to_floats(list(done.outputs), record_of(req.model_id))
    return out
