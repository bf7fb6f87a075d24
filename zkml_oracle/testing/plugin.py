"""A pytest plugin for testing consumer contracts against a real zkML oracle, in a few lines.

Enable it in your ``conftest.py`` (no entry point is registered, so it is opt-in)::

    pytest_plugins = ["zkml_oracle.testing"]

or for one run: ``pytest -p zkml_oracle.testing``. Everything is real: a local Anvil, ezkl
circuits built with a dev SRS, real proofs and the circuit's generated Solidity verifier.

Session-scoped fixtures:

- ``zkml_anvil`` (:class:`~zkml_oracle.chain.node.LocalNode`): a local Anvil (chain id 31337) on
  a free port, stopped when the session ends.
- ``zkml_chain`` (:class:`~zkml_oracle.chain.node.Chain`): that node, connected through Ape
  (``ChainOptions(rpc_url=...)``), as the toolkit's deployment code needs it.
- ``zkml_model_factory`` (:class:`ModelFactory`): ``zkml_model_factory(onnx, calibration,
  visibility=...)`` builds a circuit (dev SRS) once per session and per distinct model,
  calibration and options, in a session temporary folder, and returns the
  :class:`~zkml_oracle.types.BuildResult`.
- ``zkml_oracle_deployment`` (:class:`OracleDeployer`): ``zkml_oracle_deployment(built)``
  deploys the circuit's verifier, the oracle (once per session) and registers the model with
  :func:`zkml_oracle.chain.oracle.deploy_and_register` (records in a session temporary
  :class:`~zkml_oracle.chain.deployments.DeploymentStore`), and returns an :class:`OracleHarness`.

:class:`OracleHarness` is what a consumer test talks to, through web3.py on the node (whose
dev accounts are unlocked)::

    def test_my_consumer(zkml_model_factory, zkml_oracle_deployment):
        built = zkml_model_factory("model.onnx", "calibration.json")
        zkml = zkml_oracle_deployment(built)
        admin, user, relayer = zkml.accounts[:3]
        consumer = zkml.deploy("MyConsumer", zkml.oracle.address, zkml.model_id)
        receipt = zkml.transact(consumer.functions.ask(zkml.input_felts("in.json")), user)
        (request_id,) = zkml.requests_in(receipt)
        done = zkml.fulfill(request_id, zkml.prove("in.json"), sender=relayer)
        assert done.callback_succeeded and done.outputs == zkml.prove("in.json").outputs

For a model built with ``--batch N`` (``zkml_model_factory(..., options=BuildOptions(batch=N))``),
``zkml.prove(file)`` takes 1..N samples back to back and ``zkml.fulfill_batch(ids, proof)``
settles them with one verification (``proof.slots``: each sample's input felts and outputs).

``request``/``fulfill``/``submit`` return the decoded request id, outputs and receipts; a
refused transaction raises :class:`TransactionReverted`, whose ``error`` and ``args`` are the
decoded custom error (``zkml.reverts(fn, sender)`` returns them for a call that must revert).
Wrap a test in ``with zkml.snapshot():`` to undo its chain changes.

The plugin gives Ape a private data folder (``APE_DATA_FOLDER``) when none is set, so tests
never touch your Ape accounts. Dev SRS files are cached where the toolkit caches them
(``ZKML_ORACLE_CACHE``, default ``~/.cache/zkml-oracle``): a dev SRS is for tests only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import field as felts
from ..chain.contracts import ErrorDecoder, contract
from ..chain.deployments import DeploymentStore
from ..chain.node import Chain, ChainOptions, LocalNode, connect, rpc, sender
from ..chain.oracle import (
    ZERO_ADDRESS,
    OnChainRequest,
    Oracle,
    OracleDeployment,
    Request,
    SkipReason,
    deploy_and_register,
    fulfilled_outputs,
    input_felts,
    proof_calldata,
)
from ..circuit.builder import BuildOptions, build
from ..circuit.data import load, split_samples
from ..circuit.verifier import CompiledContract
from ..exceptions import (
    TransactionReverted as TransactionReverted,  # defined there, importable here too
)
from ..prover import prove
from ..types import BuildResult, Visibility

if TYPE_CHECKING:
    from ..apps.evaluation import Commitment, Evaluation
    from ..chain.attestations import Attestation

__all__ = [
    "HOUR",
    "AttestationHarness",
    "BatchResult",
    "FulfilResult",
    "InferenceRequest",
    "ModelFactory",
    "OracleDeployer",
    "OracleHarness",
    "Proof",
    "SubmitResult",
    "TransactionReverted",
]

HOUR = 3600
#: Callback gas the harness asks for when a test does not say.
DEFAULT_CALLBACK_GAS = 200_000


def pytest_configure(config: pytest.Config) -> None:
    """Give Ape a private data folder before anything imports it (unless the user set one)."""
    if "APE_DATA_FOLDER" not in os.environ:
        folder = tempfile.mkdtemp(prefix="zkml-testing-ape-")
        os.environ["APE_DATA_FOLDER"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


# --- results ---


@contextlib.contextmanager
def chain_snapshot(url: str) -> Iterator[None]:
    """Undoes every chain change made inside the block (Anvil's ``evm_snapshot`` and
    ``evm_revert``): module-wide deployments, each test on a clean copy of them."""
    snap = rpc(url, "evm_snapshot")
    try:
        yield
    finally:
        if rpc(url, "evm_revert", [snap]) is not True:
            raise AssertionError(f"{url} refused to revert to snapshot {snap}")


@dataclass(frozen=True)
class Proof:
    """A proof of one input (of 1..N for a model built with ``--batch N``), as the oracle
    takes it. ``outputs``, ``values`` and ``input_felts`` are the first sample's; a batched
    proof has every proven sample's in ``slots``."""

    path: Path
    proof: bytes = field(repr=False)
    instances: list[int] = field(repr=False)
    #: The model's outputs as the oracle delivers them: signed fixed point at ``output_scale``.
    outputs: list[int]
    #: The same outputs as reals (``output / 2**output_scale``).
    values: list[float]
    #: What a request for this input must carry (felts, or the Poseidon commitment).
    input_felts: list[int]
    #: Per proven sample, in slot order: ``(input_felts, outputs)``.
    slots: list[tuple[list[int], list[int]]] = field(default_factory=list)

    @property
    def calldata(self) -> tuple[bytes, list[int]]:
        """``(proof, instances)``, the arguments ``fulfill`` and ``submitResult`` take."""
        return self.proof, self.instances


@dataclass(frozen=True)
class InferenceRequest:
    request_id: int
    input_felts: list[int]
    receipt: Any = field(repr=False)


@dataclass(frozen=True)
class FulfilResult:
    request_id: int
    #: The verified outputs from ``RequestFulfilled`` (signed fixed point).
    outputs: list[int]
    callback_succeeded: bool
    #: The callback's revert data when it failed (the request is fulfilled anyway).
    callback_error: bytes | None
    gas_used: int
    receipt: Any = field(repr=False)


@dataclass(frozen=True)
class BatchResult:
    """One ``fulfillBatch``: what each request got, and what the oracle skipped."""

    #: request id → verified outputs (signed fixed point), for the requests settled.
    fulfilled: dict[int, list[int]]
    #: request id → why it was skipped (``fulfilled``, ``cancelled`` or ``expired``).
    skipped: dict[int, str]
    gas_used: int
    receipt: Any = field(repr=False)


@dataclass(frozen=True)
class SubmitResult:
    round: int
    outputs: list[int]
    gas_used: int
    receipt: Any = field(repr=False)


# --- model factory ---


class ModelFactory:
    """Builds circuits (dev SRS) once per session; see ``zkml_model_factory``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, BuildResult] = {}

    def __call__(
        self,
        onnx: str | Path,
        calibration: str | Path,
        *,
        visibility: Visibility | None = None,
        options: BuildOptions | None = None,
    ) -> BuildResult:
        """The circuit of ``onnx`` calibrated on ``calibration``; ``visibility`` chooses what is
        public (default: public inputs and outputs, fixed params), ``options`` everything
        (its ``dev_srs`` is forced on unless it names an SRS file)."""
        opts = options or BuildOptions()
        if visibility is not None:
            opts = dataclasses.replace(opts, visibility=visibility)
        if opts.srs_file is None and not opts.dev_srs:
            opts = dataclasses.replace(opts, dev_srs=True)
        digest = hashlib.sha256()
        digest.update(Path(onnx).read_bytes())
        digest.update(Path(calibration).read_bytes())
        digest.update(repr(opts).encode())
        key = digest.hexdigest()[:16]
        if key not in self._built:
            out = self.root / f"{Path(onnx).stem}-{key}"
            self._built[key] = build(Path(onnx), Path(calibration), out, opts)
        return self._built[key]


# --- the harness ---


def committed(oracle: Any, request: int | tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``Request`` struct that ``fulfill``/``fulfillBatch``/``cancel`` of ``oracle`` (a
    web3.py contract) take for request id ``request``, from its ``InferenceRequested`` log; an
    id with no log gives a struct with only that id (the oracle refuses it as unknown). A tuple
    is passed through (a test's tampered fields)."""
    if isinstance(request, tuple):
        return request
    logs = oracle.events.InferenceRequested().get_logs(
        from_block=0, argument_filters={"requestId": request}
    )
    if not logs:
        none = "0x" + "00" * 32
        z = ZERO_ADDRESS
        return Request(request, none, none, z, z, z, 0, 0, 0, 0, 0).as_tuple()
    return Request.from_event(logs[-1].args).as_tuple()


def terms(request: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``RequestTerms`` that ``fulfillBatch`` takes for a ``Request`` struct (as
    :func:`committed` gives it): every field but ``modelId`` and ``inputHash``."""
    return (request[0], *request[3:])


def _web3(url: str) -> Any:
    from web3 import HTTPProvider, Web3

    return Web3(HTTPProvider(url, request_kwargs={"timeout": 120}))


class OracleHarness:
    """One registered model on the session's oracle, and what a consumer test does with it."""

    def __init__(
        self, url: str, build_: BuildResult, deployment: OracleDeployment, proof_dir: Path
    ) -> None:
        self.url = url
        self.build = build_
        self.deployment = deployment
        self.web3: Any = _web3(url)
        self._errors = ErrorDecoder()
        self.oracle: Any = self.web3.eth.contract(
            address=deployment.oracle, abi=contract("ZkmlOracle").abi
        )
        #: The toolkit's typed client of the same oracle (requests' fields and states).
        self.client = Oracle(Chain.from_web3(self.web3, url), deployment.oracle)
        self._proofs: dict[str, Proof] = {}
        self._proof_dir = proof_dir

    # -- facts --

    @property
    def model_id(self) -> bytes:
        """The model's id as ``bytes32``."""
        return bytes.fromhex(self.deployment.model_id.removeprefix("0x"))

    @property
    def accounts(self) -> list[str]:
        """Anvil's unlocked dev accounts; ``accounts[0]`` deployed and administers the oracle."""
        return list(self.web3.eth.accounts)

    @property
    def admin(self) -> str:
        return self.accounts[0]

    @property
    def output_scale(self) -> int:
        return int(self.build.manifest.outputs[0].scale)

    def input_felts(self, input_file: str | Path) -> list[int]:
        """What a request for ``input_file`` (ezkl's ``{"input_data": [...]}``) carries: the
        input felts, or one Poseidon commitment per input for a hashed-input model."""
        sample = json.loads(Path(input_file).read_text())["input_data"]
        return input_felts(self.build.manifest, sample)

    def to_fixed(self, value: float) -> int:
        """A real at the model's output scale, as outputs and thresholds are compared."""
        return felts.quantize(value, self.output_scale)

    # -- generic chain helpers --

    def deploy(
        self, artifact: str | CompiledContract, *args: Any, sender: str | None = None
    ) -> Any:
        """Deploys a contract (a name from ``contracts/``, or a compiled artifact) and returns
        its web3 contract; its custom errors become decodable."""
        compiled = contract(artifact) if isinstance(artifact, str) else artifact
        self._errors.add(compiled.abi)
        factory = self.web3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        receipt = self.transact(factory.constructor(*args), sender or self.admin)
        return self.web3.eth.contract(address=receipt.contractAddress, abi=compiled.abi)

    def transact(self, fn: Any, sender: str, value: int = 0) -> Any:
        """Sends ``fn`` (a web3 contract function) from ``sender``; the mined receipt, or
        :class:`TransactionReverted` with the decoded custom error."""
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            tx_hash = fn.transact({"from": sender, "value": value})
        except (ContractCustomError, ContractLogicError) as e:
            raise TransactionReverted(*self._errors.from_exception(e)) from None
        receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt.status != 1:
            raise TransactionReverted("<reverted on-chain>", (tx_hash,))
        return receipt

    def reverts(self, fn: Any, sender: str, value: int = 0) -> tuple[str, tuple[Any, ...]]:
        """Sends ``fn``, which must revert; its decoded custom error (name, arguments)."""
        try:
            self.transact(fn, sender, value)
        except TransactionReverted as e:
            return e.decoded
        raise AssertionError("the transaction did not revert")

    def call_reverts(
        self, fn: Any, tx: dict[str, Any] | None = None
    ) -> tuple[str, tuple[Any, ...]]:
        """``eth_call`` of ``fn`` (a view, or a transaction with ``tx``), which must revert; its
        decoded custom error (name, arguments)."""
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            fn.call(tx or {})
        except (ContractCustomError, ContractLogicError) as e:
            return self._errors.from_exception(e)
        raise AssertionError("the call did not revert")

    def events(self, contract_: Any, name: str, receipt: Any) -> list[Any]:
        """The ``name`` events ``contract_`` emitted in ``receipt`` (decoded)."""
        from web3.logs import DISCARD

        return list(getattr(contract_.events, name)().process_receipt(receipt, errors=DISCARD))

    def fund(self, address: str, amount: int, sender: str | None = None) -> None:
        tx = {"from": sender or self.admin, "to": address, "value": amount}
        receipt = self.web3.eth.wait_for_transaction_receipt(self.web3.eth.send_transaction(tx))
        assert receipt.status == 1

    def balance(self, address: str) -> int:
        return int(self.web3.eth.get_balance(address))

    def now(self) -> int:
        return int(self.web3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        """Moves the chain's clock forward and mines a block."""
        rpc(self.url, "evm_increaseTime", [seconds])
        rpc(self.url, "evm_mine", [])

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Undoes every chain change made inside the block."""
        return chain_snapshot(self.url)

    # -- the oracle --

    def prove(self, input_file: str | Path) -> Proof:
        """A real proof of the model on ``input_file`` (cached per input contents)."""
        path = Path(input_file)
        key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if key not in self._proofs:
            self._proof_dir.mkdir(parents=True, exist_ok=True)
            result = prove(self.build.build_dir, path, self._proof_dir / f"{key}.json")
            proof, instances = proof_calldata(result.proof_path)
            manifest = self.build.manifest
            samples = split_samples(load(path), manifest.inputs, path)
            slots = []
            for i, sample in enumerate(samples):
                seg = manifest.layout.output_slot(i)
                outputs = [felts.felt_to_int(f) for f in instances[seg.offset : seg.end]]
                slots.append((input_felts(manifest, sample), outputs))
            self._proofs[key] = Proof(
                path=result.proof_path,
                proof=proof,
                instances=instances,
                outputs=slots[0][1],
                values=[v / 2**self.output_scale for v in slots[0][1]],
                input_felts=slots[0][0],
                slots=slots,
            )
        return self._proofs[key]

    def requests_in(self, receipt: Any) -> list[int]:
        """The ids of the requests made in ``receipt`` (e.g. by a consumer contract)."""
        return [
            int(e.args.requestId) for e in self.events(self.oracle, "InferenceRequested", receipt)
        ]

    def request(
        self,
        input_file: str | Path,
        *,
        sender: str,
        consumer: str | None = None,
        fee: int = 0,
        callback_gas_limit: int | None = None,
        ttl: int = HOUR,
    ) -> InferenceRequest:
        """``requestInference`` from ``sender`` for ``input_file``, called back on ``consumer``
        (none: no callback), with ``fee`` wei escrowed."""
        gas = callback_gas_limit
        if gas is None:
            gas = DEFAULT_CALLBACK_GAS if consumer else 0
        input_ = self.input_felts(input_file)
        fn = self.oracle.functions.requestInference(
            self.model_id, input_, consumer or ZERO_ADDRESS, gas, self.now() + ttl
        )
        receipt = self.transact(fn, sender, fee)
        (request_id,) = self.requests_in(receipt)
        return InferenceRequest(request_id, input_, receipt)

    def record(self, request_id: int) -> Request:
        """Request ``request_id``'s fields, from its ``InferenceRequested`` log: what
        ``fulfill``, ``fulfillBatch`` and ``cancel`` take (``.as_tuple()``)."""
        return self.client.request(request_id)

    def state(self, request_id: int) -> OnChainRequest:
        """Request ``request_id``'s status, deadline and fulfiller (once fulfilled)."""
        return self.client.state(request_id)

    def fulfill(self, request_id: int, proof: Proof, *, sender: str | None = None) -> FulfilResult:
        """``fulfill`` with ``proof`` (as a relayer: ``sender`` defaults to the last dev
        account); the verified outputs and whether the consumer's callback succeeded."""
        fn = self.oracle.functions.fulfill(
            committed(self.oracle, request_id), proof.proof, proof.instances
        )
        receipt = self.transact(fn, sender or self.accounts[-1])
        (done,) = self.events(self.oracle, "RequestFulfilled", receipt)
        failed = self.events(self.oracle, "CallbackFailed", receipt)
        succeeded = self.events(self.oracle, "CallbackSucceeded", receipt)
        return FulfilResult(
            request_id=request_id,
            outputs=[int(v) for v in done.args.outputs],
            callback_succeeded=bool(succeeded),
            callback_error=bytes(failed[0].args.reason) if failed else None,
            gas_used=int(receipt.gasUsed),
            receipt=receipt,
        )

    def fulfill_batch(
        self, request_ids: list[int], proof: Proof, *, sender: str | None = None
    ) -> BatchResult:
        """``fulfillBatch``: slot ``i`` of ``proof`` (a model built with ``--batch N``)
        answers ``request_ids[i]`` with one verification."""
        fn = self.oracle.functions.fulfillBatch(
            self.model_id,
            [terms(committed(self.oracle, r)) for r in request_ids],
            proof.proof,
            proof.instances,
        )
        receipt = self.transact(fn, sender or self.accounts[-1])
        return BatchResult(
            fulfilled={
                rid: list(outputs)
                for e in self.events(self.oracle, "BatchFulfilled", receipt)
                for rid, outputs in fulfilled_outputs(e).items()
            },
            skipped={
                int(e.args.requestId): SkipReason(e.args.reason).name.lower()
                for e in self.events(self.oracle, "RequestSkipped", receipt)
            },
            gas_used=int(receipt.gasUsed),
            receipt=receipt,
        )

    def attest_credit_features(
        self, pool: str, applicant: str, input_file: Path, *, subject: bytes | None = None
    ) -> tuple[list[int], bytes, int, bytes]:
        """``CreditGrant.applyForGrant``'s arguments for ``input_file``'s features, attested by
        the admin as the pool's data provider (EIP-712, valid for an hour); the subject
        defaults to one per applicant."""
        from eth_utils.crypto import keccak

        from ..chain.oracle import sign_credit_features

        felts = self.input_felts(input_file)
        subject = subject or keccak(text=applicant)
        expiry = self.now() + HOUR
        signature = sign_credit_features(
            self.url,
            self.admin,
            pool=pool,
            chain_id=int(self.web3.eth.chain_id),
            applicant=applicant,
            subject=subject,
            felts=felts,
            expiry=expiry,
        )
        return felts, subject, expiry, signature

    def submit(self, proof: Proof, *, sender: str | None = None) -> SubmitResult:
        """``submitResult``: ``proof``'s outputs become the push feed's next round (``sender``
        defaults to the admin, who registered the model and so is its feed's publisher)."""
        fn = self.oracle.functions.submitResult(self.model_id, proof.proof, proof.instances)
        receipt = self.transact(fn, sender or self.admin)
        (ev,) = self.events(self.oracle, "ResultSubmitted", receipt)
        return SubmitResult(
            round=int(ev.args.round),
            outputs=[int(v) for v in ev.args.outputs],
            gas_used=int(receipt.gasUsed),
            receipt=receipt,
        )


class OracleDeployer:
    """Deploys and registers models on the session's oracle; see ``zkml_oracle_deployment``."""

    def __init__(self, chain: Chain, store: DeploymentStore, proofs: Path) -> None:
        self.chain = chain
        self.store = store
        self.proofs = proofs
        self._harnesses: dict[Path, OracleHarness] = {}

    def __call__(self, built: BuildResult) -> OracleHarness:
        """The harness of ``built``, deployed and registered once per session."""
        key = built.build_dir.resolve()
        if key not in self._harnesses:
            deployment = deploy_and_register(
                self.chain, key, sender(self.chain, None), store=self.store
            )
            if self.chain.url is None:
                raise RuntimeError("the session's chain has no URL")
            proof_dir = self.proofs / f"{key.name}-{len(self._harnesses)}"
            self._harnesses[key] = OracleHarness(self.chain.url, built, deployment, proof_dir)
        return self._harnesses[key]


# --- fixtures ---


@pytest.fixture(scope="session")
def zkml_anvil() -> Iterator[LocalNode]:
    """A real Anvil (local dev chain, id 31337) on a free port, stopped after the session."""
    node = LocalNode.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def zkml_chain(zkml_anvil: LocalNode) -> Iterator[Chain]:
    """``zkml_anvil`` connected through Ape (``ChainOptions(rpc_url=...)``)."""
    with connect(ChainOptions(rpc_url=zkml_anvil.url)) as chain:
        yield chain


@pytest.fixture(scope="session")
def zkml_model_factory(tmp_path_factory: pytest.TempPathFactory) -> ModelFactory:
    """``zkml_model_factory(onnx, calibration, visibility=None, options=None)`` → the built
    circuit (:class:`~zkml_oracle.types.BuildResult`, dev SRS), built once per session per
    distinct model, calibration and options, in a session temporary folder."""
    return ModelFactory(tmp_path_factory.mktemp("zkml-models"))


@pytest.fixture(scope="session")
def zkml_oracle_deployment(
    zkml_chain: Chain, tmp_path_factory: pytest.TempPathFactory
) -> OracleDeployer:
    """``zkml_oracle_deployment(built)`` → an :class:`OracleHarness`: the circuit's verifier,
    the oracle (one per session) and the model's registration, via ``deploy_and_register``,
    recorded in a session temporary ``DeploymentStore``."""
    store = DeploymentStore(tmp_path_factory.mktemp("zkml-deployments"))
    return OracleDeployer(zkml_chain, store, tmp_path_factory.mktemp("zkml-proofs"))


# --- verifiable evaluation (docs/evaluation.md) ---


class AttestationHarness:
    """The attestation registry on the session's chain, for consumers that require a verified
    accuracy: publish a test set's commitment, record an evaluation of a registered model.

    ::

        def test_pool(zkml_oracle_deployment, zkml_attestations, evaluation):
            zkml = zkml_oracle_deployment(built)
            lender = zkml.accounts[1]
            test_set = zkml_attestations.publish(zkml, evaluation.commitment, sender=lender)
            zkml_attestations.attest(zkml, evaluation)  # its evaluator is registered once
            pool = zkml.deploy("AttestedCreditPool", zkml.oracle.address,
                               zkml_attestations.registry.address, test_set, 8000, 1, 0,
                               sender=lender)
    """

    def __init__(self, deployer: OracleDeployer) -> None:
        self._deployer = deployer
        self._registry: Any = None

    @property
    def registry(self) -> Any:
        """The registry's web3 contract (deployed on first use, over the session's oracle)."""
        from ..chain.attestations import registry

        if self._registry is None:
            d = self._deployer
            reg = registry(d.chain, sender(d.chain, None), d.store)
            self._registry = d.chain.web3.eth.contract(
                address=reg.address, abi=contract("ZkmlAttestations").abi
            )
        return self._registry

    def publish(self, zkml: OracleHarness, commitment: Commitment, *, sender: str) -> bytes:
        """``publishTestSet`` from ``sender`` (the test set's owner); the test set id."""
        hashes = [h.to_bytes(32, "big") for h in commitment.chunk_hashes]
        zkml.transact(self.registry.functions.publishTestSet(hashes, commitment.samples), sender)
        return bytes.fromhex(commitment.test_set_id.removeprefix("0x"))

    def register(self, zkml: OracleHarness, evaluator_dir: Path) -> bytes:
        """Register the evaluator for ``zkml``'s model (once); its evaluator id."""
        from ..chain.attestations import register_evaluator

        d = self._deployer
        _, eid, _ = register_evaluator(
            d.chain, sender(d.chain, None), evaluator_dir, zkml.deployment.model_id, d.store
        )
        return bytes.fromhex(eid.removeprefix("0x"))

    def attest(
        self, zkml: OracleHarness, evaluation: Evaluation, *, sender: str | None = None
    ) -> Attestation:
        """Register ``evaluation``'s evaluator for ``zkml``'s model and submit every chunk's
        proof (as ``sender``, default the last dev account); the recorded attestation."""
        from ..chain.attestations import Attestation

        eid = self.register(zkml, evaluation.evaluator_dir)
        tsid = bytes.fromhex(evaluation.commitment.test_set_id.removeprefix("0x"))
        for chunk in evaluation.chunks:
            proof, instances = proof_calldata(chunk.proof_path)
            fn = self.registry.functions.submitChunk(eid, tsid, chunk.index, proof, instances)
            zkml.transact(fn, sender or zkml.accounts[-1])
        raw = self.registry.functions.attestationOf(zkml.model_id, tsid).call()
        return Attestation.from_tuple(raw)


@pytest.fixture(scope="session")
def zkml_attestations(zkml_oracle_deployment: OracleDeployer) -> AttestationHarness:
    """An :class:`AttestationHarness` on the session's oracle and chain."""
    return AttestationHarness(zkml_oracle_deployment)
