"""Batched circuits: one proof for N inferences of a model.

The proven graph holds N copies of the model side by side ("slots"), each with its own graph
inputs and outputs, all reading the same weights (shared initializers). Copies rather than a
batch dimension, for two reasons:

- it works on the models users have: exported with a fixed batch of 1 (whose ``Reshape``
  targets often spell that 1 out) as well as with a symbolic batch dimension of any name;
- ezkl commits to each graph input with one Poseidon hash, so per-slot inputs give every
  request of a batch its own commitment. One ``[N, d]`` tensor would get a single hash for the
  whole batch, which no single request could be bound to.

The proof's instances are then ``[in_0 .. in_N-1 | params | out_0 .. out_N-1]``
(:class:`~zkml_oracle.types.InstanceLayout` with ``batch`` = N). Proving time follows the
circuit's logrows, which for small models do not move with N up to a few dozen slots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._fs import atomic_write_bytes
from ..exceptions import InputError, UnsupportedModelError

#: Largest batch accepted: the verifier's calldata and the oracle's loop grow with N.
MAX_BATCH = 256


def slot_name(slot: int, name: str) -> str:
    """The name of a model tensor in slot ``slot`` of the batched graph."""
    return f"s{slot}_{name}"


def check_batch(batch: int) -> None:
    if not 1 <= batch <= MAX_BATCH:
        raise InputError(f"--batch must be between 1 and {MAX_BATCH}, not {batch}")


def replicate(src: Path, dst: Path, batch: int) -> None:
    """Write to ``dst`` a graph running ``batch`` independent copies of ``src``'s model."""
    import onnx

    check_batch(batch)
    proto = onnx.load(str(src))
    graph = proto.graph
    shared = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
    for node in graph.node:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise UnsupportedModelError(
                f"node {node.name or node.op_type!r} holds a subgraph ({node.op_type}): "
                "control flow cannot be batched; build without --batch"
            )
    if any(o.name in shared for o in graph.output):
        raise UnsupportedModelError(
            "an output of the model is one of its weights: batched slots could not tell their "
            "outputs apart; build without --batch"
        )

    inputs: list[Any] = [vi for vi in graph.input if vi.name in shared]
    outputs: list[Any] = []
    nodes: list[Any] = []
    for slot in range(batch):

        def rename(name: str, slot: int = slot) -> str:
            return name if not name or name in shared else slot_name(slot, name)

        for vi in graph.input:
            if vi.name not in shared:
                inputs.append(_renamed_value(vi, rename(vi.name)))
        outputs.extend(_renamed_value(vi, rename(vi.name)) for vi in graph.output)
        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.input[:] = [rename(x) for x in node.input]
            copy.output[:] = [rename(x) for x in node.output]
            if copy.name:
                copy.name = slot_name(slot, copy.name)
            nodes.append(copy)
    for container, items in (
        (graph.input, inputs),
        (graph.output, outputs),
        (graph.node, nodes),
    ):
        del container[:]
        container.extend(items)
    del graph.value_info[:]  # per-slot intermediate shapes are re-inferred
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise UnsupportedModelError(
            f"the batched graph is not valid ONNX ({e}); build without --batch"
        ) from None
    atomic_write_bytes(Path(dst), proto.SerializeToString())


def _renamed_value(vi: Any, name: str) -> Any:
    import onnx

    copy = onnx.ValueInfoProto()
    copy.CopyFrom(vi)
    copy.name = name
    return copy
