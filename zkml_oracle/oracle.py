"""The oracle contract from Python: deploy it, register models, request, fulfil, push, read.

Transactions go through Ape (accounts, confirmations, decoded custom errors); reads and event
decoding go straight to the provider's web3. Values cross the boundary as felts encoded by
:mod:`zkml_oracle.field`, the twin of the contracts' ``FieldEncoding`` library.

What the CLI needs to talk about a model by id alone (its build directory, input scales,
output shapes) is kept in the chain's deployment record next to the oracle's address.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from . import _ezkl, field
from .chain import Chain, ChainError
from .commitment import Binding
from .deploy import check_dev_srs, deploy_contract, deploy_verifier
from .deployments import DeploymentStore
from .exceptions import InputError, ZkmlOracleError
from .types import Manifest

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
CONFIG_TYPES = (
    "(address,bytes32,uint32,uint32,uint32,uint32,uint32,uint8,bool,bool,uint32,"
    "uint32,uint32,bytes32,uint32,bool)"
)


class RequestStatus(IntEnum):
    NONE = 0
    PENDING = 1
    FULFILLED = 2
    CANCELLED = 3


class OracleRefused(ZkmlOracleError):
    """The oracle contract refused a transaction; the message names its custom error."""


@dataclass(frozen=True)
class RequestRecord:
    """IZkmlOracle.Request: a request's fields as ``InferenceRequested`` emits them. The oracle
    stores only their commitment; ``fulfill``, ``fulfillBatch`` and ``cancel`` take them back
    (:meth:`as_tuple`) and refuse any other value."""

    id: int
    model_id: str
    input_hash: str
    requester: str
    refund_to: str
    callback: str
    callback_gas_limit: int
    deadline: int
    open_at: int
    fee: int
    input_felts: tuple[int, ...] = ()

    @classmethod
    def from_event(cls, args: Any) -> RequestRecord:
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
            input_felts=felts,
        )

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
        )


@dataclass(frozen=True)
class ModelConfig:
    """IZkmlOracle.ModelConfig, derived from a build's manifest."""

    verifier: str
    artifact_digest: bytes
    num_instances: int
    input_offset: int
    input_count: int
    output_offset: int
    output_count: int
    output_scale: int
    hashed_inputs: bool
    dev_srs: bool
    batch_size: int = 1  # slot i: inputs at input_offset + i * input_count, outputs likewise
    params_offset: int = 0
    params_count: int = 0  # hashed params: their commitments, checked on every verification
    params_commitment: bytes = bytes(32)  # keccak256 of the params commitments
    requester_offset: int = 0  # slot i's requester limbs from requester_offset + 7 * i
    requester_bound: bool = False

    @classmethod
    def from_manifest(cls, manifest: Manifest, verifier: str) -> ModelConfig:
        if manifest.visibility.output != "public":
            raise InputError(
                "the oracle delivers outputs, so they must be public: rebuild with "
                "--output-visibility public"
            )
        if manifest.visibility.input == "private":
            raise InputError(
                "a private input commits to nothing, so no request could be bound to it: "
                "rebuild with --input-visibility hashed (only its commitment goes on-chain)"
            )
        if manifest.visibility.param == "private":
            raise InputError(
                "private params commit to nothing, so a proof made with other weights under the "
                "same keys would verify: rebuild with --param-visibility hashed (private weights "
                "bound to a public commitment) or fixed"
            )
        scales = {t.scale for t in manifest.outputs}
        if len(scales) != 1:
            raise InputError(
                f"the model's outputs have different scales {sorted(scales)}: the oracle keeps "
                "one output scale per model; export the outputs at one scale"
            )
        lay = manifest.layout
        return cls(
            verifier=verifier,
            artifact_digest=bytes.fromhex(manifest.artifact_digest),
            num_instances=lay.total,
            input_offset=lay.inputs.offset,
            input_count=lay.inputs.count,
            output_offset=lay.outputs.offset,
            output_count=lay.outputs.count,
            output_scale=scales.pop(),
            hashed_inputs=manifest.visibility.input == "hashed",
            dev_srs=manifest.dev_srs,
            batch_size=lay.batch,
            params_offset=lay.params.offset if manifest.params_commitment else 0,
            params_count=len(manifest.params_commitment),
            params_commitment=(
                bytes.fromhex(input_hash(list(manifest.params_commitment))[2:])
                if manifest.params_commitment
                else bytes(32)
            ),
            requester_offset=lay.requester.offset if lay.requester else 0,
            requester_bound=lay.requester is not None,
        )

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(asdict(self).values())

    @property
    def model_id(self) -> str:
        """keccak256(abi.encode(config)), as the contract computes it."""
        from eth_abi import encode  # type: ignore[attr-defined]
        from eth_utils.crypto import keccak

        return "0x" + keccak(encode([CONFIG_TYPES], [self.as_tuple()])).hex()


def input_felts(
    manifest: Manifest, sample: list[list[float]], binding: Binding | None = None
) -> list[int]:
    """What a request commits to: the input felts, or one Poseidon hash per input tensor
    (the same hash the circuit exposes for a hashed input). A requester-bound model's
    commitments also cover ``binding``'s salt and requester (:mod:`zkml_oracle.commitment`)."""
    if manifest.requester_bound != (binding is not None):
        raise InputError(
            "this model binds each commitment to a salt and the requester: give a binding"
            if manifest.requester_bound
            else "this model's inputs are not requester-bound: give no binding"
        )
    felts = [
        [field.encode(v, spec.scale) for v in values] + (binding.felts if binding else [])
        for values, spec in zip(sample, manifest.inputs, strict=True)
    ]
    if manifest.visibility.input == "public":
        return [f for tensor in felts for f in tensor]
    if manifest.visibility.input != "hashed":
        raise InputError("a private input commits to nothing on-chain: rebuild with hashed inputs")
    import ezkl

    hashes: list[int] = []
    for tensor in felts:
        out = _ezkl.call(
            ezkl.poseidon_hash,
            [field.felt_to_ezkl_hex(f) for f in tensor],
            error=lambda m: InputError(f"cannot hash the input: {m}"),
        )
        hashes.extend(field.felt_from_ezkl_hex(h) for h in out)
    return hashes


def input_hash(felts: list[int]) -> str:
    """keccak256(abi.encodePacked(uint256[])), how the oracle identifies an input."""
    from eth_utils.crypto import keccak

    return "0x" + keccak(b"".join(f.to_bytes(32, "big") for f in felts)).hex()


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
    from .chain import rpc

    data = credit_features_typed_data(pool, chain_id, applicant, subject, felts, expiry)
    signature: str = rpc(rpc_url, "eth_signTypedData_v4", [attestor, data])
    return bytes.fromhex(signature.removeprefix("0x"))


def proof_calldata(proof_path: Path) -> tuple[bytes, list[int]]:
    """The proof bytes and instances exactly as ezkl encodes them for its verifier."""
    import ezkl
    from eth_abi import decode  # type: ignore[attr-defined]

    from ._fs import temp_path_beside
    from .prover import read_proof

    read_proof(Path(proof_path))
    with temp_path_beside(Path(proof_path), ".calldata") as out:
        data = bytes(
            _ezkl.call(
                ezkl.encode_evm_calldata,
                str(proof_path),
                str(out),
                error=lambda m: InputError(f"{proof_path} is not a usable proof ({m})"),
            )
        )
    proof, instances = decode(["bytes", "uint256[]"], data[4:])
    return bytes(proof), list(instances)


def proven_slots(manifest: Manifest, instances: list[int]) -> int:
    """How many slots of a batched proof hold distinct samples: trailing slots that repeat
    the one before are padding (:func:`zkml_oracle.data.pack`)."""
    lay = manifest.layout

    def slot(i: int) -> list[int]:
        a, b = lay.input_slot(i), lay.output_slot(i)
        return instances[a.offset : a.end] + instances[b.offset : b.end]

    used = lay.batch
    while used > 1 and slot(used - 1) == slot(used - 2):
        used -= 1
    return used


def outputs_to_floats(outputs: list[int], record: dict[str, Any]) -> list[list[float]]:
    """Signed fixed-point outputs → one list of reals per output tensor (sizes from the record)."""
    scale = int(record["output_scale"])
    values = [float(v) / (1 << scale) for v in outputs]
    grouped: list[list[float]] = []
    start = 0
    for size in record["output_sizes"]:
        grouped.append(values[start : start + size])
        start += size
    return grouped


class Oracle:
    """A deployed ZkmlOracle on a connected chain."""

    def __init__(self, chain: Chain, address: str) -> None:
        from ape.contracts import ContractInstance
        from ethpm_types import ContractType

        from .contracts import oracle

        compiled = oracle()
        if not chain.web3.eth.get_code(address):
            raise ChainError(
                f"no oracle contract at {address} on {chain.describe()}: run `zkml-oracle deploy`"
            )
        self.chain = chain
        self.address = address
        self._ape = ContractInstance(
            address,
            ContractType.model_validate({"contractName": compiled.name, "abi": compiled.abi}),
        )
        self._web3 = chain.web3.eth.contract(address=address, abi=compiled.abi)

    def send(self, method: str, *args: Any, sender: Any, value: int = 0) -> Any:
        """A transaction; a refusal raises OracleRefused with the decoded custom error.

        ``fulfill`` and ``cancel`` take a request, ``fulfillBatch`` a list of them: a request
        id (int) is resolved here to its committed fields (:meth:`request`); a
        :class:`RequestRecord` or a raw tuple is passed as given."""
        from ape.exceptions import ApeException, ContractLogicError, CustomError

        from ._ezkl import captured_fds

        if method in ("fulfill", "cancel") and args:
            args = (self._request_arg(args[0]), *args[1:])
        elif method == "fulfillBatch" and len(args) > 1:
            args = (args[0], [self._request_arg(r) for r in args[1]], *args[2:])
        try:
            # Ape prints a call trace of every revert to stdout; the refusal is reported below.
            with captured_fds():
                return getattr(self._ape, method)(*args, sender=sender, value=value)
        except ContractLogicError as e:
            inputs = getattr(e, "inputs", None) or {}
            detail = (
                f"{type(e).__name__}({', '.join(f'{k}={v}' for k, v in inputs.items())})"
                if isinstance(e, CustomError)
                else str(e)
            )
            raise OracleRefused(f"the oracle refused {method}: {detail}") from None
        except ApeException as e:
            raise ChainError(f"{method} failed: {e}") from None

    def _request_arg(self, request: Any) -> Any:
        if isinstance(request, RequestRecord):
            return request.as_tuple()
        if isinstance(request, int):
            return self.request(request).as_tuple()
        return request

    def request(self, request_id: int, from_block: int = 0) -> RequestRecord:
        """Request ``request_id``'s fields, from its ``InferenceRequested`` log (the oracle
        stores only their commitment; ``isCommitted`` checks them)."""
        logs = self._web3.events.InferenceRequested().get_logs(
            from_block=from_block, argument_filters={"requestId": request_id}
        )
        if not logs:
            raise InputError(
                f"no request {request_id} on the oracle at {self.address}: check the id"
            )
        return RequestRecord.from_event(logs[-1]["args"])

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

    def decode_error(self, exc: Exception) -> str:
        """Name a custom error from revert data (web3 keeps only the raw selector)."""
        from .contracts import error_decoder, revert_data

        raw = revert_data(exc)
        if raw is None or not error_decoder().known(raw):
            return str(exc)
        name, args = error_decoder().decode(raw)
        return f"{name}{args}"


def _record_models(store: DeploymentStore, chain: Chain) -> dict[str, Any]:
    models: dict[str, Any] = store.load(chain).get("models", {})
    return models


def model_record(store: DeploymentStore, chain: Chain, model_id: str) -> dict[str, Any]:
    record = _record_models(store, chain).get(model_id.lower())
    if record is None:
        raise InputError(
            f"model {model_id} is not recorded on {chain.describe()}: register it with "
            "`zkml-oracle deploy DIR` (same chain options, same --deployments)"
        )
    return dict(record)


def oracle_address(store: DeploymentStore, chain: Chain) -> str:
    entry = store.load(chain).get("oracle")
    if not entry:
        raise InputError(
            f"no oracle recorded on {chain.describe()}: run `zkml-oracle deploy DIR` first"
        )
    return str(entry["address"])


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
) -> OracleDeployment:
    """The verifier, the oracle (once per chain) and the model's registration, each reused
    when already recorded and present on-chain."""
    from .contracts import oracle as oracle_artifact

    build_dir = Path(build_dir).resolve()
    store = store or DeploymentStore()
    manifest = Manifest.load(build_dir)
    check_dev_srs(manifest, chain, allow_dev_srs)
    if manifest.verifier is None or manifest.verifier.kind != "standalone":
        raise InputError(
            "the oracle calls a standalone verifier: rebuild without --reusable to register "
            "this model (the reusable verifier still works with `deploy` + `verify --onchain` "
            "through its own contract)"
        )
    ModelConfig.from_manifest(manifest, ZERO_ADDRESS)  # refuse a model the oracle can't serve
    verifier = deploy_verifier(chain, build_dir, account, allow_dev_srs=allow_dev_srs, store=store)
    gas = {"verifier": verifier.gas_used}
    reused = {"verifier": verifier.reused}

    entry = store.load(chain).get("oracle")
    if entry and chain.web3.eth.get_code(entry["address"]):
        address, reused["oracle"] = entry["address"], True
        gas["oracle"] = 0
    else:
        address, tx, used = deploy_contract(
            chain, account, oracle_artifact(), account.address, allow_dev_srs
        )
        gas["oracle"], reused["oracle"] = used, False
        record = {
            "address": address,
            "tx": tx,
            "gas_used": used,
            "deployer": str(account.address),
            "allow_dev_srs": allow_dev_srs,
        }
        store.update(chain, lambda r: r.__setitem__("oracle", record))
    oracle = Oracle(chain, address)
    config = ModelConfig.from_manifest(manifest, verifier.address)
    model_id = config.model_id
    on_chain = oracle.call("getModel", model_id) if _registered(oracle, model_id) else None
    if on_chain is None:
        receipt = oracle.send("registerModel", config.as_tuple(), sender=account)
        gas["register"], reused["model"] = int(receipt.gas_used), False
    else:
        gas["register"], reused["model"] = 0, True
    model_entry = {
        "model_id": model_id,
        "build_dir": str(build_dir),
        "artifact_digest": manifest.artifact_digest,
        "verifier": verifier.address,
        "visibility": asdict(manifest.visibility),
        "inputs": [{"name": t.name, "size": t.size, "scale": t.scale} for t in manifest.inputs],
        "output_scale": config.output_scale,
        "output_sizes": [t.size for t in manifest.outputs],
    }
    store.update(chain, lambda r: r.setdefault("models", {}).__setitem__(model_id, model_entry))
    return OracleDeployment(address, verifier.address, model_id, gas, reused)


def _registered(oracle: Oracle, model_id: str) -> bool:
    try:
        model = oracle.call("getModel", model_id)
    except OracleRefused:
        return False
    return bool(model[2])  # registeredAt


def deploy_feed(
    chain: Chain,
    account: Any,
    model_id: str,
    *,
    output: int,
    decimals: int,
    store: DeploymentStore,
) -> dict[str, Any]:
    """A ZkmlFeedAdapter over output ``output`` of the model's push feed, recorded."""
    from .contracts import feed_adapter

    record = model_record(store, chain, model_id)
    count = sum(record["output_sizes"])
    if not 0 <= output < count:
        raise InputError(f"--output {output} is out of range: the model has {count} outputs")
    description = f"zkml {Path(record['build_dir']).name} output {output}"
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
    entry = {
        "feed": address,
        "tx": tx,
        "gas_used": gas,
        "model_id": model_id,
        "output": output,
        "decimals": decimals,
        "description": description,
    }
    store.update(chain, lambda r: r.setdefault("feeds", {}).__setitem__(address, entry))
    return entry


def status(oracle: Oracle, request_id: int, record_of: Any) -> dict[str, Any]:
    """pending | fulfilled | cancelled | expired, with outputs and fulfiller once fulfilled:
    the status from the oracle's one slot per request, the rest from its events."""
    state = RequestStatus(int(oracle.call("requestStatus", request_id)))
    if state == RequestStatus.NONE:
        raise InputError(f"no request {request_id} on the oracle at {oracle.address}: check the id")
    req = oracle.request(request_id)
    out: dict[str, Any] = {
        "request_id": request_id,
        "model_id": req.model_id,
        "deadline": req.deadline,
    }
    if state == RequestStatus.PENDING:
        now = int(oracle.chain.web3.eth.get_block("latest")["timestamp"])
        out["status"] = "expired" if now > req.deadline else "pending"
    elif state == RequestStatus.CANCELLED:
        out["status"] = "cancelled"
    else:
        out["status"] = "fulfilled"
        logs = oracle._web3.events.RequestFulfilled().get_logs(
            from_block=0, argument_filters={"requestId": request_id}
        )
        if logs:
            out["fulfiller"] = str(logs[-1]["args"]["fulfiller"])
            out["outputs"] = outputs_to_floats(
                list(logs[-1]["args"]["outputs"]), record_of(req.model_id)
            )
    return out
