"""Helpers for the tests of the oracle contracts on a real Anvil (tests/test_oracle.py and the
modules that reuse its deployment or its helpers): web3.py calls that must revert, decoded;
proofs as ``verifyProof`` takes them; model configs; and the ``env`` deployment fixture with
its per-test snapshot (``_isolated``), imported by the modules that use them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from dataclasses import field as field_
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from zkml_oracle import field
from zkml_oracle.chain import contracts, rpc
from zkml_oracle.chain import oracle as zo
from zkml_oracle.chain.deploy import calldata
from zkml_oracle.chain.oracle import ZERO_ADDRESS, ModelConfig, RequestStatus
from zkml_oracle.circuit.verifier import CompiledContract
from zkml_oracle.testing import committed
from zkml_oracle.types import BuildResult

R = field.FIELD_MODULUS
ZERO = ZERO_ADDRESS
UNBOUND = b"\0" * 32  # a ZkmlFeedAdapter over the model's latest round, any input
PENDING = RequestStatus.PENDING
FULFILLED = RequestStatus.FULFILLED
CANCELLED = RequestStatus.CANCELLED
HOUR = 3600


# --- helpers ---


@functools.cache
def _decoder() -> contracts.ErrorDecoder:
    """The shipped contracts' errors and the test doubles' (never shipped: compiled here)."""
    decoder = contracts.ErrorDecoder()
    decoder.add(contracts.contract("TestConsumer").abi)
    return decoder


def decode_error(data: bytes) -> tuple[str, tuple[Any, ...]]:
    """A revert payload as (error name, decoded arguments), against every project ABI."""
    return _decoder().decode(bytes(data))


def _revert_data(e: ContractLogicError) -> bytes:
    data = e.data
    if isinstance(data, dict):  # some providers nest it
        data = data.get("data")
    assert isinstance(data, str | bytes), f"no revert data in {e!r}"
    return bytes(HexBytes(data))


def tx_reverts(fn: Any, sender: str, value: int = 0) -> tuple[str, tuple[Any, ...]]:
    """Send ``fn`` as a transaction that must revert; its custom error, decoded."""
    try:
        fn.transact({"from": sender, "value": value})
    except ContractLogicError as e:
        return decode_error(_revert_data(e))
    pytest.fail("the transaction did not revert")


def call_reverts(fn: Any, tx: dict[str, Any] | None = None) -> tuple[str, tuple[Any, ...]]:
    """``eth_call`` of ``fn`` (a view, or a transaction with ``tx``) that must revert; decoded
    here, since a view's custom error is otherwise just a message."""
    try:
        fn.call(tx or {})
    except ContractLogicError as e:
        return decode_error(_revert_data(e))
    pytest.fail("the call did not revert")


def send(web3: Any, fn: Any, sender: str, value: int = 0) -> Any:
    receipt = web3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "value": value}))
    assert receipt.status == 1
    return receipt


def deploy(web3: Any, artifact: CompiledContract, sender: str, *args: Any) -> Any:
    factory = web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = send(web3, factory.constructor(*args), sender)
    return web3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)


def deploy_build_verifier(web3: Any, build: BuildResult, sender: str) -> str:
    """The circuit's real verifier (ezkl's, from the build's verifier/Verifier.json)."""
    artifact = CompiledContract.load(build.manifest.artifact("verifier", build.build_dir))
    return str(deploy(web3, artifact, sender).address)


def events(contract: Any, name: str, receipt: Any) -> list[Any]:
    return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))


def latest_time(web3: Any) -> int:
    return int(web3.eth.get_block("latest")["timestamp"])


def advance(url: str, seconds: int) -> None:
    rpc(url, "evm_increaseTime", [seconds])
    rpc(url, "evm_mine", [])


@dataclass(frozen=True)
class ProofData:
    """A proof as ``verifyProof`` takes it (ezkl's own calldata, decoded)."""

    proof: bytes = field_(repr=False)
    instances: list[int] = field_()
    calldata: bytes = field_(repr=False)


def proof_data(build: BuildResult, proof_path: Path) -> ProofData:
    data = calldata(build.manifest, build.build_dir, proof_path)
    proof, instances = abi_decode(["bytes", "uint256[]"], data[4:])
    return ProofData(bytes(proof), list(instances), data)


def model_config(build: BuildResult, verifier: str) -> tuple[Any, ...]:
    """The on-chain ModelConfig of a build, from its manifest (the toolkit's own derivation):
    (verifier, artifactDigest, numInstances, inputOffset, inputCount, outputOffset,
    outputCount, outputScale, hashedInputs, devSrs, batchSize, paramsOffset, paramsCount,
    paramsCommitment, requesterOffset, requesterBound)."""
    return ModelConfig.from_manifest(build.manifest, verifier).as_tuple()


def model_id(config: tuple[Any, ...]) -> bytes:
    return bytes.fromhex(ModelConfig(*config).model_id.removeprefix("0x"))


def inputs_of(build: BuildResult, instances: list[int]) -> list[int]:
    seg = build.manifest.layout.inputs
    return instances[seg.offset : seg.end]


def outputs_of(build: BuildResult, instances: list[int]) -> list[int]:
    seg = build.manifest.layout.outputs
    return [field.felt_to_int(f) for f in instances[seg.offset : seg.end]]


def input_hash(felts: list[int]) -> bytes:
    return bytes.fromhex(zo.input_hash(felts).removeprefix("0x"))


# --- fixtures ---


def web3_of(url: str) -> Any:
    """web3.py straight on the node: Anvil's dev accounts are unlocked there."""
    from web3 import HTTPProvider, Web3

    return Web3(HTTPProvider(url, request_kwargs={"timeout": 120}))


@dataclass(repr=False)
class Env:
    url: str
    web3: Any
    admin: str
    requester: str
    relayer: str
    stranger: str
    oracle: Any
    harness: Any
    consumer: Any
    mock_verifier: Any
    config: tuple[Any, ...]
    model: bytes
    other_config: tuple[Any, ...]
    other_model: bytes
    good: ProofData
    other: ProofData
    outputs: list[int]
    inputs: list[int]

    def request(
        self,
        felts: list[int] | None = None,
        *,
        fee: int = 0,
        callback: str | None = None,
        gas_limit: int = 0,
        deadline: int | None = None,
        model: bytes | None = None,
    ) -> int:
        fn = self.oracle.functions.requestInference(
            model or self.model,
            self.inputs if felts is None else felts,
            callback or "0x" + "00" * 20,
            gas_limit,
            deadline or latest_time(self.web3) + HOUR,
        )
        receipt = send(self.web3, fn, self.requester, fee)
        (event,) = events(self.oracle, "InferenceRequested", receipt)
        return int(event.args.requestId)

    def consumer_request(self, gas_limit: int = 200_000, fee: int = 0) -> int:
        fn = self.consumer.functions.request(
            self.model, self.inputs, gas_limit, latest_time(self.web3) + HOUR
        )
        receipt = send(self.web3, fn, self.requester, fee)
        (event,) = events(self.oracle, "InferenceRequested", receipt)
        return int(event.args.requestId)

    def fulfill(self, request_id: int, data: ProofData | None = None) -> Any:
        data = data or self.good
        fn = self.oracle.functions.fulfill(
            committed(self.oracle, request_id), data.proof, data.instances
        )
        return send(self.web3, fn, self.relayer)

    def fulfill_reverts(
        self, request_id: int, proof: bytes, instances: list[int]
    ) -> tuple[str, tuple[Any, ...]]:
        fn = self.oracle.functions.fulfill(committed(self.oracle, request_id), proof, instances)
        return tx_reverts(fn, self.relayer)


# --- a push feed and its Chainlink adapters (tests/test_feed_adapter.py) ---

DECIMALS = 8


def to_answer(q: int, scale: int, decimals: int = DECIMALS) -> int:
    """The adapter's documented conversion: q * 10**decimals / 2**scale, toward zero."""
    magnitude = abs(q) * 10**decimals // 2**scale
    return -magnitude if q < 0 else magnitude


@dataclass(repr=False)
class Feed:
    url: str
    web3: Any
    admin: str
    oracle: Any
    model: bytes
    scale: int
    feeds: list[Any]  # one adapter per output
    rounds: list[ProofData]  # two proofs of the same model, on different inputs
    outputs: list[list[int]]

    def adapter(
        self,
        decimals: int,
        description: str,
        *,
        model: bytes | None = None,
        input_hash: bytes = UNBOUND,
    ) -> Any:
        """A further adapter over output 0 of ``model`` (the fixture's by default)."""
        return deploy(
            self.web3,
            contracts.feed_adapter(),
            self.admin,
            self.oracle.address,
            model or self.model,
            0,
            decimals,
            description,
            input_hash,
        )

    def submit(self, data: ProofData) -> int:
        fn = self.oracle.functions.submitResult(self.model, data.proof, data.instances)
        receipt = send(self.web3, fn, self.admin)
        return int(self.web3.eth.get_block(receipt.blockNumber)["timestamp"])
