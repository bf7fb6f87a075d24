"""Refuse, before any circuit work, the ONNX constructs ezkl 23 mishandles.

Each rule was seen on the onnx package's PyTorch-converted conformance suite
(benchmarks/conformance.py): ezkl either refuses these late with an opaque message, runs for
minutes, or proves wrong outputs. Refusing them up front gives a clear line in bounded time.
A rule refuses only what ezkl cannot do: never a model that proves accurately.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

from .exceptions import UnsupportedModelError

if TYPE_CHECKING:
    from .model import OnnxModel


def check(model: OnnxModel) -> list[str]:
    """Raise UnsupportedModelError naming the first construct ezkl cannot prove faithfully;
    return warnings about constructs it proves faithfully only on some inputs."""
    import onnx

    graph = onnx.load(str(model.path), load_external_data=False).graph
    constants = _constants(graph)
    producers = {out: node.op_type for node in graph.node for out in node.output}
    warnings: list[str] = []
    for node in graph.node:
        op = node.op_type
        where = f"{op} node {node.name or node.output[0]!r}"
        # ezkl reads models through tract, which knows only the standard ONNX operators.
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(f"{where} is from operator set {node.domain!r}")
        # ezkl builds settings for a ConvTranspose of the wrong output size ("Cannot reshape
        # tensor of length 1008 to [1, 4, 12, 20]").
        if op == "ConvTranspose":
            raise UnsupportedModelError(f"{where}: transposed convolutions")
        # ezkl refuses dilated Conv at settings generation, but accepts a dilated MaxPool and
        # lays it out as tens of millions of rows: calibration then runs for many minutes.
        dilations = _ints(node, "dilations")
        if op in ("Conv", "MaxPool", "AveragePool") and any(d != 1 for d in dilations):
            raise UnsupportedModelError(f"{where}: dilations {dilations}")
        if op == "Pad":
            # ezkl pads with a constant only ("a node has misformed params: pad mode or pad
            # type" for reflect/edge). A constant other than zero, which ezkl refuses too, is
            # rewritten into zero padding by zkml_oracle.rewrite before ezkl sees it.
            mode = _attr(node, "mode", b"constant").decode()
            if mode != "constant":
                raise UnsupportedModelError(f"{where}: padding mode {mode!r} (only constant)")
        # tract has no PRelu with a slope per channel (settings fail with "Prelu
        # ToTypedTranslator"); one slope shared by all channels works.
        if op == "PRelu" and len(node.input) > 1 and node.input[1] in constants:
            n = prod(constants[node.input[1]].dims)
            if n != 1:
                raise UnsupportedModelError(
                    f"{where}: {n} slopes, one per channel (only one shared)"
                )
        # ezkl pads MaxPool with 0, not -inf, so a padded MaxPool is off wherever all real
        # values in a border window are negative. After a Relu that cannot happen; elsewhere
        # the fidelity check catches it only if the calibration data hits it (as
        # test_MaxPool3d_stride_padding does), so the build says so.
        pads = _ints(node, "pads")
        if op == "MaxPool" and any(pads) and producers.get(node.input[0]) != "Relu":
            warnings.append(
                f"{where} pads its input and ezkl pads with 0, not -infinity: where a whole "
                "border window is negative the circuit computes 0 instead of the maximum; "
                "calibrate with such inputs (the build then refuses the model) or put a Relu "
                "before it"
            )
    return warnings


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _ints(node: Any, name: str) -> list[int]:
    value = _attr(node, name, [])
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _constants(graph: Any) -> dict[str, Any]:
    """The graph's constant tensors (initializers and Constant nodes) as TensorProtos, by name."""
    found: dict[str, Any] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            tensor = _attr(node, "value", None)
            if tensor is not None:
                found[node.output[0]] = tensor
    return found
