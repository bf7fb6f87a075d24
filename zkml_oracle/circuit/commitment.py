"""Salted, requester-bound input commitments.

ezkl commits to a hashed input tensor with one Poseidon hash of its felts. On its own that
hash binds a proof to an input, not to whoever asked: anyone may copy a pending commitment
into a request of their own and settle it with its owner's proof, and the hash of a
low-entropy input can be found by hashing guesses.

A requester-bound build (``build --input-visibility hashed --bind-requester``) therefore
extends every graph input ``x`` of the model with two elements the model ignores:
``x' = [x..., salt, requester]``. The circuit slices the features back out for the model,
and copies each slot's ``requester`` element out as one extra public output. So:

- the Poseidon commitment covers the salt (a random felt: guesses of the features alone no
  longer hash to it) and the requester's address;
- the proof exposes that address as an instance, which the oracle compares with the
  request's requester (``ZkmlOracleRequesterMismatch``): the copier's request names another
  address, and the owner's proof settles only the owner's request.

The salt and the address enter ezkl as raw field elements (ezkl's little-endian hex) in
24-bit limbs, least significant first: measured with ezkl 23.0.5, witness generation fails
("General synthesis error") for an input element of magnitude above 2**24 (its forward pass
goes through f32), so a 240-bit salt is 10 limbs and an address 7. The features are
quantized at the input scale as usual.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import field
from .._fs import atomic_write_bytes
from ..exceptions import InputError, UnsupportedModelError

#: Bits per appended element: ezkl's forward pass keeps input elements exact up to 2**24.
LIMB_BITS = 24
#: The salt's limbs (240 random bits) and the requester address's (160 bits in 7 limbs).
SALT_LIMBS = 10
ADDRESS_LIMBS = 7
#: Elements appended to every input tensor: the salt's limbs, then the requester's.
EXTRA = SALT_LIMBS + ADDRESS_LIMBS
#: Suffix of the extended graph inputs' names.
SUFFIX = "_committed"
#: Name of the per-slot requester output (prefixed ``s{i}_`` in a batched graph).
REQUESTER_OUTPUT = "requester"


@dataclass(frozen=True)
class Binding:
    """What a requester-bound commitment covers besides the features: a random salt (a felt,
    kept secret with the features) and the requester's address."""

    salt: int  # < 2**240
    requester: str

    def __post_init__(self) -> None:
        if not 0 <= self.salt < 1 << (LIMB_BITS * SALT_LIMBS):
            raise InputError(f"a salt is a number below 2**{LIMB_BITS * SALT_LIMBS}")
        if not (
            isinstance(self.requester, str)
            and self.requester.startswith("0x")
            and len(self.requester) == 42
        ):
            raise InputError(f"{self.requester!r} is not an address (0x and 40 hex digits)")
        int(self.requester, 16)

    @classmethod
    def new(cls, requester: str) -> Binding:
        """A fresh random salt for ``requester``."""
        return cls(secrets.randbits(LIMB_BITS * SALT_LIMBS), requester)

    @property
    def felts(self) -> list[int]:
        """The elements appended to each input tensor: salt limbs, then requester limbs."""
        return limbs(self.salt, SALT_LIMBS) + limbs(int(self.requester, 16), ADDRESS_LIMBS)

    def to_dict(self) -> dict[str, str]:
        return {"salt": f"0x{self.salt:060x}", "requester": self.requester}

    @classmethod
    def from_dict(cls, d: Any) -> Binding:
        try:
            return cls(int(str(d["salt"]), 16), str(d["requester"]))
        except (KeyError, TypeError, ValueError, field.FieldError) as e:
            raise InputError(
                f'a binding needs "salt" (a felt, 0x hex) and "requester" (an address): {e}'
            ) from None


def limbs(value: int, count: int) -> list[int]:
    """``value`` in ``count`` limbs of LIMB_BITS, least significant first."""
    mask = (1 << LIMB_BITS) - 1
    return [(value >> (LIMB_BITS * i)) & mask for i in range(count)]


def extend(sample: Sequence[Sequence[float]], binding: Binding | None) -> list[list[Any]]:
    """A sample as a requester-bound circuit reads it: each input tensor followed by the salt
    and requester limbs (ezkl's hex, taken as field elements as they are). Without a binding
    (calibration, fidelity) they are 0."""
    tail: list[Any] = (
        [0.0] * EXTRA if binding is None else [field.felt_to_ezkl_hex(f) for f in binding.felts]
    )
    return [[*tensor, *tail] for tensor in sample]


def bind(src: Path, dst: Path, shapes: Sequence[tuple[int, ...]], batch: int) -> None:
    """Write to ``dst`` ``src``'s graph with every input extended by the salt and requester
    elements, and each slot's requester element copied out as the last outputs (slot order).

    ``shapes``: one slot's input shapes (symbolic dimensions fixed); ``src`` holds ``batch``
    slots of ``len(shapes)`` inputs each (see :mod:`zkml_oracle.circuit.batching`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(str(src))
    graph = proto.graph
    shared = {t.name for t in graph.initializer}
    graph_inputs = [vi for vi in graph.input if vi.name not in shared]
    k = len(shapes)
    if len(graph_inputs) != k * batch:
        raise UnsupportedModelError(
            f"the graph has {len(graph_inputs)} inputs, expected {k * batch}: cannot bind it"
        )
    import numpy as np

    nodes: list[Any] = []
    inputs: list[Any] = []
    requester_outputs: list[Any] = []
    constants: list[Any] = []
    by_name = {vi.name: i for i, vi in enumerate(graph_inputs)}
    for vi in graph.input:
        if vi.name in shared:
            inputs.append(vi)
            continue
        idx = by_name[vi.name]
        shape = shapes[idx % k]
        size = math.prod(shape)
        ext = vi.name + SUFFIX
        inputs.append(helper.make_tensor_value_info(ext, TensorProto.FLOAT, [1, size + EXTRA]))

        def const(tag: str, values: list[int], idx: int = idx) -> str:
            name = f"_bind{idx}_{tag}"
            constants.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
            return name

        axis = const("axis", [1])
        flat = f"_bind{idx}_features"
        nodes.append(
            helper.make_node("Slice", [ext, const("s0", [0]), const("e0", [size]), axis], [flat])
        )
        nodes.append(
            helper.make_node("Reshape", [flat, const("shape", [int(d) for d in shape])], [vi.name])
        )
        if idx % k == 0:
            slot = idx // k
            out = REQUESTER_OUTPUT if batch == 1 else f"s{slot}_{REQUESTER_OUTPUT}"
            nodes.append(
                helper.make_node(
                    "Slice",
                    [ext, const("s1", [size + SALT_LIMBS]), const("e1", [size + EXTRA]), axis],
                    [out],
                )
            )
            requester_outputs.append(
                helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, ADDRESS_LIMBS])
            )
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + body)
    del graph.input[:]
    graph.input.extend(inputs)
    graph.output.extend(requester_outputs)
    graph.initializer.extend(constants)
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise UnsupportedModelError(
            f"the requester-bound graph is not valid ONNX ({e}); build without --bind-requester"
        ) from None
    atomic_write_bytes(Path(dst), proto.SerializeToString())
