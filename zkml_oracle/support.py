"""Refuse, before any circuit work, the ONNX constructs ezkl 23 mishandles.

Each rule was seen on the onnx package's PyTorch-converted conformance suite
(benchmarks/conformance.py): ezkl either refuses these late with an opaque message, runs for
minutes, or proves wrong outputs. Refusing them up front gives a clear line in bounded time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .exceptions import UnsupportedModelError

if TYPE_CHECKING:
    from .model import OnnxModel


def _ints(node: object, name: str) -> list[int]:
    from onnx import helper

    for attr in node.attribute:  # type: ignore[attr-defined]
        if attr.name == name:
            value = helper.get_attribute_value(attr)
            return list(value) if isinstance(value, (list, tuple)) else [int(value)]
    return []


def check(model: OnnxModel) -> None:
    """Raise UnsupportedModelError naming the first construct ezkl cannot prove faithfully."""
    import onnx

    graph = onnx.load(str(model.path), load_external_data=False).graph
    sizes = _constant_sizes(graph)
    for node in graph.node:
        op = node.op_type
        where = f"{op} node {node.name or node.output[0]!r}"
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(f"{where} is from operator set {node.domain!r}")
        if op == "ConvTranspose":
            raise UnsupportedModelError(f"{where}: transposed convolutions")
        dilations = _ints(node, "dilations")
        if op in ("Conv", "MaxPool", "AveragePool") and any(d != 1 for d in dilations):
            raise UnsupportedModelError(f"{where}: dilations {dilations}")
        if op == "Pad":
            mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
            if mode != "constant":
                raise UnsupportedModelError(f"{where}: padding mode {mode!r} (only 'constant')")
        # ezkl's tract import has no PRelu with a per-channel slope (it fails at settings with
        # "Prelu ToTypedTranslator"); a single shared slope works.
        if op == "PRelu" and len(node.input) > 1 and sizes.get(node.input[1], 1) != 1:
            n = sizes[node.input[1]]
            raise UnsupportedModelError(
                f"{where}: a slope per channel ({n} values; only one shared)"
            )


def _constant_sizes(graph: object) -> dict[str, int]:
    """Element counts of the graph's constant tensors (initializers and Constant nodes)."""
    from math import prod

    from onnx import helper

    sizes = {t.name: prod(t.dims) for t in graph.initializer}  # type: ignore[attr-defined]
    for node in graph.node:  # type: ignore[attr-defined]
        if node.op_type == "Constant":
            for attr in node.attribute:
                value = helper.get_attribute_value(attr)
                if hasattr(value, "dims"):
                    sizes[node.output[0]] = prod(value.dims)
    return sizes
