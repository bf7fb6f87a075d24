"""Equivalent rewrites of an ONNX graph into forms ezkl proves.

The build proves the rewritten copy (``model.onnx`` in the build directory) while the
manifest's ``model_sha256`` names the user's file, and the fidelity check compares the
circuit against onnxruntime running the user's original, so a wrong rewrite fails the build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pad_fill(node: Any, constants: dict[str, Any]) -> tuple[float, bool]:
    """(fill value, whether it is statically known) of a constant-mode Pad."""
    from onnx import helper, numpy_helper

    if len(node.input) > 2 and node.input[2]:
        tensor = constants.get(node.input[2])
        if tensor is None:
            return 0.0, False
        values = numpy_helper.to_array(tensor).reshape(-1)
        return (float(values[0]) if values.size else 0.0), True
    for attr in node.attribute:
        if attr.name == "value":
            return float(helper.get_attribute_value(attr)), True
    return 0.0, True


def rewrite(source: Path, target: Path) -> list[str]:
    """Write ``source`` to ``target`` with the rewrites applied; return what was rewritten.

    Pad with a constant c != 0 (ezkl pads with zeros only) becomes
    ``Pad(x - c, 0) + c``: inside the tensor ``x - c + c = x``, on the border ``0 + c = c``.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    constants: dict[str, Any] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = attr.t
    # Before opset 7, Add/Sub broadcast a scalar only when told to.
    broadcast: dict[str, Any] = {"broadcast": 1} if opset < 7 else {}
    notes: list[str] = []
    nodes: list[Any] = []

    def scalar(name: str, value: float) -> None:
        graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        if model.ir_version < 4:  # old IRs list every initializer as a graph input too
            graph.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, []))

    for k, node in enumerate(graph.node):
        mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
        if node.op_type != "Pad" or mode != "constant":
            nodes.append(node)
            continue
        fill, known = _pad_fill(node, constants)
        if not known or fill == 0.0:
            nodes.append(node)
            continue
        tag = f"zkml_pad{k}"
        scalar(f"{tag}_c", fill)
        shifted, padded = f"{tag}_shifted", f"{tag}_padded"
        nodes.append(helper.make_node("Sub", [node.input[0], f"{tag}_c"], [shifted], **broadcast))
        new_pad = onnx.NodeProto()
        new_pad.CopyFrom(node)
        new_pad.input[0] = shifted
        new_pad.output[0] = padded
        if len(new_pad.input) > 2 and new_pad.input[2]:
            scalar(f"{tag}_zero", 0.0)
            new_pad.input[2] = f"{tag}_zero"
        else:
            for attr in new_pad.attribute:
                if attr.name == "value":
                    attr.f = 0.0
        nodes.append(new_pad)
        nodes.append(helper.make_node("Add", [padded, f"{tag}_c"], [node.output[0]], **broadcast))
        notes.append(f"Pad {node.name or node.output[0]!r} with {fill:g} → Pad(x - c, 0) + c")
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(target))
    return notes
