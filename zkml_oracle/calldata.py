"""What goes on-chain, computed without the chain stack: input felts and input hashes, model
configs and ids, proof calldata and output decoding.

The prover workers (:mod:`zkml_oracle.prover`, :mod:`zkml_oracle.relayer.backend`, the Ray
backend) use this module, never :mod:`zkml_oracle.chain.oracle`: proving imports neither web3 nor
Ape (``tests/test_layout.py`` checks it). Only eth-abi and eth-utils (pure encoding and
keccak) are used, and only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from . import _ezkl, field
from .circuit.commitment import Binding
from .exceptions import InputError
from .types import Manifest

CONFIG_TYPES = (
    "(address,bytes32,uint32,uint32,uint32,uint32,uint32,uint8,bool,bool,uint32,"
    "uint32,uint32,bytes32,uint32,bool)"
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
    commitments also cover ``binding``'s salt and requester
    (:mod:`zkml_oracle.circuit.commitment`)."""
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
    return [h for tensor in felts for h in _ezkl.poseidon(tensor, what="the input")]


def input_hash(felts: list[int]) -> str:
    """keccak256(abi.encodePacked(uint256[])), how the oracle identifies an input."""
    from eth_utils.crypto import keccak

    return "0x" + keccak(b"".join(f.to_bytes(32, "big") for f in felts)).hex()


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
    the one before are padding (:func:`zkml_oracle.circuit.data.pack`)."""
    lay = manifest.layout

    def slot(i: int) -> list[int]:
        a, b = lay.input_slot(i), lay.output_slot(i)
        return instances[a.offset : a.end] + instances[b.offset : b.end]

    used = lay.batch
    while used > 1 and slot(used - 1) == slot(used - 2):
        used -= 1
    return used


class OutputLayout(Protocol):
    """Where a model's outputs sit in its output felts (a deployment record's model entry)."""

    @property
    def output_scale(self) -> int: ...

    @property
    def output_sizes(self) -> Sequence[int]: ...


def outputs_to_floats(outputs: list[int], record: OutputLayout) -> list[list[float]]:
    """Signed fixed-point outputs → one list of reals per output tensor (sizes from the record)."""
    scale = record.output_scale
    values = [float(v) / (1 << scale) for v in outputs]
    grouped: list[list[float]] = []
    start = 0
    for size in record.output_sizes:
        grouped.append(values[start : start + size])
        start += size
    return grouped
