"""Custom errors of the project's contracts as a person reads them: one place for the CLI, the
relayer and the pytest plugin.

A decoded revert keeps its arguments typed (:attr:`ContractError.values`, what tests compare)
and prints them readably: ``bytes``/``bytes32`` as 0x-hex, enums by member name, addresses
checksummed; then the way out where the toolkit knows one::

    ZkmlOracleRequestNotPending(requestId=3, status=Fulfilled): it is settled already ...

Decoding the raw revert data by selector is :class:`zkml_oracle.chain.contracts.ErrorDecoder`'s job;
this module only presents what it (or Ape) decoded. Nothing here imports web3 or Ape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .oracle import RequestStatus, SkipReason


def _names(enum: type[IntEnum]) -> tuple[str, ...]:
    return tuple(m.name.capitalize() for m in enum)


#: Solidity enums that appear in custom errors and events, by their ABI ``internalType``
#: (``enum <Contract>.<Enum>``), member names in declaration order.
ENUMS: Mapping[str, tuple[str, ...]] = {
    "IZkmlOracle.RequestStatus": _names(RequestStatus),
    "IZkmlOracle.SkipReason": _names(SkipReason),
    "IZkmlAttestations.Metric": ("Argmax", "Threshold", "WithinError"),
}

#: The way out of an error, where there is one the toolkit can name.
FIXES: Mapping[str, str] = {
    "ZkmlOracleUnknownModel": "register it with `zkml-oracle deploy BUILD_DIR` on this chain",
    "ZkmlOracleModelInactive": "the model's owner deactivated it: use another model id",
    "ZkmlOracleDevSrsModel": (
        "its keys come from a dev SRS, which this oracle refuses: rebuild with --srs "
        "(a ceremony's SRS), or use an oracle deployed on a local dev chain"
    ),
    "ZkmlOracleUnknownRequest": "check the request id (`zkml-oracle status ID`)",
    "ZkmlOracleRequestNotPending": (
        "it is settled already: `zkml-oracle status ID` shows how, and the outputs"
    ),
    "ZkmlOracleRequestExpired": (
        "its deadline passed: the requester can cancel it (fee refunded) and request again"
    ),
    "ZkmlOracleRequestNotExpired": "wait until the deadline (`zkml-oracle status ID`)",
    "ZkmlOracleNotRequester": (
        "only the account that made the request, or its refund address, may cancel it"
    ),
    "ZkmlOracleRequestMismatch": (
        "pass the request's fields exactly as its InferenceRequested log has them "
        "(zkml_oracle.chain.oracle.Oracle.request reads them); in a batch, every request must "
        "be for the proof's model and its slot must prove the input it committed to"
    ),
    "ZkmlOracleZeroRefundAddress": "give a non-zero refund address (`request --refund-to`)",
    "ZkmlOracleBadDeadline": "give a deadline in the future (`request --deadline SECONDS`)",
    "ZkmlOracleWrongInputCount": "the input file holds another number of values than the model",
    "ZkmlOracleWrongInstanceCount": (
        "the proof is of another circuit: prove with the build directory registered for this model"
    ),
    "ZkmlOracleInputMismatch": (
        "the proof is of another input: prove the input the request committed to"
    ),
    "ZkmlOracleInvalidProof": (
        "the proof does not verify under the model's verifier: prove again with the build "
        "directory registered for this model (`zkml-oracle verify` checks it off-chain)"
    ),
    "ZkmlOracleRoundTooSoon": ("one round per block: submit again once a new block is mined"),
    "ZkmlOracleNoResult": "no round yet: publish one with `zkml-oracle submit BUILD_DIR PROOF`",
    "ZkmlOracleNothingToWithdraw": "nothing is owed to this account",
    "ZkmlOracleFeeTooLarge": "escrow a smaller fee (`--fee` in wei)",
    "ZkmlOracleBadBatchSize": "settle at most the model's batch size in one proof",
    "ZkmlOracleNothingToSettle": (
        "every request named is already fulfilled, cancelled or expired: nothing to pay for"
    ),
    "ZkmlOracleCallbackGasLimitTooHigh": "give a smaller --callback-gas",
    "ZkmlOracleNotDesignatedFulfiller": (
        "the request is reserved for its designated relayer until openAt: retry after it"
    ),
    "ZkmlOracleNotPublisher": (
        "the model's owner must allow this account (setPublisher) or open the feed (setFeedOpen)"
    ),
    "ZkmlOracleVerifierChanged": (
        "the verifier's code is not the one registered: register the model again "
        "(`zkml-oracle deploy BUILD_DIR`)"
    ),
    "ZkmlOracleParamsMismatch": (
        "the proof was made with other weights than the registered ones: prove with the "
        "registered build directory"
    ),
    "ZkmlOracleRequesterMismatch": (
        "the proof binds another requester: prove the sealed input of this request"
    ),
}


@dataclass(frozen=True)
class Param:
    """One argument of a decoded error: its ABI name, type and internal type, and value."""

    name: str
    type: str
    internal_type: str
    value: Any

    def __str__(self) -> str:
        return format_value(self.value, self.type, self.internal_type)


@dataclass(frozen=True)
class ContractError:
    """A custom error with its arguments, readable: ``Name(arg=value, ...)``, and the fix."""

    name: str
    params: tuple[Param, ...] = ()

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(p.value for p in self.params)

    @property
    def fix(self) -> str | None:
        return FIXES.get(self.name)

    @property
    def signature(self) -> str:
        """``Name(arg=value, ...)``, values readable."""
        args = ", ".join(f"{p.name}={p}" if p.name else str(p) for p in self.params)
        return f"{self.name}({args})"

    def __str__(self) -> str:
        return f"{self.signature}: {self.fix}" if self.fix else self.signature


def format_value(value: Any, abi_type: str, internal_type: str = "") -> str:
    """One ABI value as text: bytes as 0x-hex, enums by name, arrays element by element."""
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        inner_internal = internal_type[: internal_type.rindex("[")] if "[" in internal_type else ""
        return "[" + ", ".join(format_value(v, inner, inner_internal) for v in value) + "]"
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    enum = internal_type.removeprefix("enum ")
    if internal_type.startswith("enum ") and enum in ENUMS:
        names = ENUMS[enum]
        return names[value] if 0 <= int(value) < len(names) else f"{value} (unknown {enum})"
    if isinstance(value, str) and abi_type == "string":
        return repr(value)
    return str(value)


def describe(abi: Mapping[str, Any], values: Sequence[Any]) -> ContractError:
    """A custom error from its ABI entry (``{"name", "inputs": [...]}``) and decoded values."""
    inputs = list(abi.get("inputs") or [])
    return ContractError(
        str(abi["name"]),
        tuple(
            Param(
                str(i.get("name") or ""),
                str(i.get("type", "")),
                str(i.get("internalType") or ""),
                v,
            )
            for i, v in zip(inputs, values, strict=True)
        ),
    )


def from_ape(exc: Any) -> ContractError:
    """A custom error as Ape decoded it (``ape.exceptions.CustomError``: ``abi``, ``inputs``)."""
    abi = exc.abi.model_dump(mode="json", by_alias=True)
    inputs: dict[str, Any] = exc.inputs
    return describe(abi, [inputs[str(i.get("name"))] for i in abi.get("inputs") or []])


def enum_name(enum: str, value: int) -> str:
    """An enum member's name, e.g. ``enum_name("IZkmlOracle.RequestStatus", 2) == "Fulfilled"``."""
    return format_value(value, "uint8", f"enum {enum}")
