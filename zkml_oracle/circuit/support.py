"""Refuse, before any circuit work, the ONNX constructs ezkl 23 mishandles.

Each rule was seen on the onnx package's PyTorch-converted conformance suite
(benchmarks/conformance.py): ezkl either refuses these late with an opaque message, runs for
minutes, or proves wrong outputs. Refusing them up front gives a clear line in bounded time.
A rule refuses only what ezkl cannot do: never a model that proves accurately.
"""

from __future__ import annotations

import re
from math import prod
from pathlib import Path
from typing import Any

from ..exceptions import UnsupportedModelError

#: ONNX operators ezkl 23.0.5's model reader (tract) has no translation for: settings
#: generation fails on them with "Unimplemented(<op>)" (measured on the onnx node tests,
#: one single-operator model each, benchmarks/conformance.py --suite node). Operators that
#: zkml_oracle.circuit.rewrite expands into provable ones before this check are not here.
UNIMPLEMENTED = frozenset(
    {
        "Attention",
        "Bernoulli",
        "Binarizer",
        "CausalConvWithState",
        "DeformConv",
        "Det",
        "FlexAttention",
        "GridSample",
        "LinearAttention",
        "OptionalGetElement",
        "RotaryEmbedding",
        "TreeEnsemble",
        "Gelu",
        "GroupNormalization",
        "LpNormalization",
        "LpPool",
        "MeanVarianceNormalization",
        "Mish",
        "RMSNormalization",
        "SwiGLU",
        "Swish",
        "Upsample",
    }
)
#: Operators whose output is a random draw: a proof would certify one draw, not a function of
#: the input. Refused before anything else (their function bodies draw too).
RANDOM = frozenset(
    {
        "Bernoulli",
        "Multinomial",
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
    }
)
_UNIMPLEMENTED_MESSAGE = re.compile(r'node #\d+ "([^"]*)" Unimplemented\((\w+)\)')
#: tract knows the operator but not this use of it (attributes, inputs fed at run time).
_UNTRANSLATED_MESSAGE = re.compile(r'(?:Translating|analyse for) node #\d+ "([^"]*)" (\w+)')


def explain(message: str) -> str:
    """ezkl's message for a node tract cannot translate, as one line naming node and fix."""
    found = _UNIMPLEMENTED_MESSAGE.search(message)
    if found is not None:
        name, op = found.groups()
        return (
            f"{op} node {name!r}: ezkl 23 has no {op} operator; express it with operators "
            "ezkl proves"
        )
    found = _UNTRANSLATED_MESSAGE.search(message)
    if found is not None:
        name, op = found.groups()
        return (
            f"node {name!r} ({op}): ezkl 23 cannot read this use of {op} (an attribute or an "
            "input fed at run time it does not support); make its parameters constants, or "
            "express it with other operators"
        )
    return message


def largest_value(model_path: Path, feeds: list[dict[str, Any]]) -> str:
    """Where the model's largest magnitude sits on ``feeds`` (input name -> array), as
    "Op node 'name' (up to 4.8e+08)", read off onnxruntime with every intermediate float value
    made an output; "" if onnxruntime cannot run it so.

    ezkl's calibration fails with "could not find any suitable parameters" when no fixed-point
    scale and lookup range fit every value within the row budget; this names where to look."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
        graph = model.graph
        known = {v.name for v in graph.output}
        floats = [
            v
            for v in graph.value_info
            if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and v.name not in known
        ]
        graph.output.extend(floats)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(
            model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        largest: dict[str, float] = dict.fromkeys(feeds[0] if feeds else (), 0.0)
        for feed in feeds:
            for name, value in feed.items():
                largest[name] = max(largest[name], float(np.max(np.abs(value), initial=0.0)))
            for name, value in zip(names, session.run(None, feed), strict=True):
                array = np.asarray(value)
                if array.dtype.kind == "f" and array.size:
                    top = float(np.max(np.abs(np.nan_to_num(array, nan=np.inf))))
                    largest[name] = max(largest.get(name, 0.0), top)
    except Exception:
        return ""
    if not largest:
        return ""
    name = max(largest, key=lambda n: largest[n])
    producer = next((n for n in graph.node if name in n.output), None)
    where = f"{producer.op_type} node {producer.name or name!r}" if producer else f"input {name!r}"
    return f"{where} (up to {largest[name]:.3g})"


def check(path: Path) -> list[str]:
    """Raise UnsupportedModelError naming the first node ezkl cannot prove faithfully, and
    the way out; return warnings about constructs it proves faithfully only on some inputs.

    ``path`` is the model as :func:`zkml_oracle.circuit.rewrite.rewrite` left it: what the rewrites
    turn into provable forms (dilations, transposed convolutions, per-channel PRelu, reflect
    and edge padding, padded MaxPool) is gone by then; what is left here, they could not.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    # The constants' sizes; -1 for one computed from constants only (tract folds those).
    sizes = {t.name: prod(t.dims) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            sizes[n.output[0]] = _constant_size(n)
        elif n.op_type not in RANDOM and all(i in sizes for i in _value_inputs(n) if i):
            sizes.update((o, -1) for o in n.output)
    for node in graph.node:
        op = node.op_type
        where = f"{op} node {node.name or node.output[0]!r}"
        # ezkl reads models through tract, which knows only the standard ONNX operators.
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(
                f"{where} is from operator set {node.domain!r}; export with standard ONNX "
                "operators only"
            )
        if op in RANDOM:
            raise UnsupportedModelError(
                f"{where} draws random numbers: a proof cannot certify a random draw; "
                "remove it from the exported graph (e.g. export in eval mode)"
            )
        # A Resize with constant scales or sizes was rewritten; one fed at run time would
        # make the output's shape depend on a run-time value, which no circuit can.
        if op in ("Resize", "Upsample"):
            fed = [name for name in node.input[1:] if name and name not in sizes]
            if fed:
                raise UnsupportedModelError(
                    f"{where}: {fed[0]!r} fed at run time (a circuit has one output shape); "
                    "make the scales or sizes a constant"
                )
        # GridSample with a constant grid, DeformConv with constant weights and offsets were
        # rewritten into constant MatMuls; fed at run time, they weigh x by run-time values.
        if op == "GridSample" and len(node.input) > 1 and node.input[1] not in sizes:
            raise UnsupportedModelError(
                f"{where}: grid {node.input[1]!r} fed at run time (ezkl has no GridSample; a "
                "constant grid is rewritten into a constant MatMul); make the grid a constant"
            )
        if op == "DeformConv":
            fed = [name for name in node.input[1:] if name and name not in sizes]
            if fed:
                raise UnsupportedModelError(
                    f"{where}: {fed[0]!r} fed at run time (ezkl has no DeformConv; with constant "
                    "weights, offsets and mask it is rewritten into a constant MatMul); make "
                    "them constants"
                )
        if op in UNIMPLEMENTED:  # what has an ONNX function body was rewritten into it
            raise UnsupportedModelError(
                f"{where}: ezkl 23 has no {op} operator (and ONNX gives no function body to "
                "rewrite it into); express it with operators ezkl proves"
            )
        # ezkl builds settings for a ConvTranspose of the wrong output size ("Cannot reshape
        # tensor of length 1008 to [1, 4, 12, 20]"); the rewrite needs constant weights.
        if op == "ConvTranspose":
            raise UnsupportedModelError(
                f"{where}: transposed convolution with weights computed at run time; make "
                "its weights an initializer"
            )
        # ezkl refuses a dilated Conv at settings generation and lays a dilated MaxPool out as
        # tens of millions of rows; the rewrite removes both when the weights are constant.
        dilations = _ints(node, "dilations")
        if op in ("Conv", "MaxPool", "AveragePool") and any(d != 1 for d in dilations):
            raise UnsupportedModelError(
                f"{where}: dilations {dilations} with weights computed at run time; make its "
                "weights an initializer"
            )
        if op == "Pad":
            # ezkl pads with a constant only ("a node has misformed params: pad mode or pad
            # type" for reflect/edge); the rewrite turns those modes into Gathers.
            mode = _attr(node, "mode", b"constant").decode()
            if mode != "constant":
                raise UnsupportedModelError(f"{where}: padding mode {mode!r} (only constant)")
        # ezkl pads MaxPool with 0, not -inf: the rewrite replaces every padded MaxPool by
        # one without padding, except one that also returns indices.
        if op == "MaxPool" and any(_ints(node, "pads")):
            raise UnsupportedModelError(
                f"{where}: padded MaxPool with an Indices output (ezkl pads with 0, not "
                "-infinity); drop the indices output"
            )
        # ezkl proves x ** c for one constant c ("invalid dimensions" / "we only support scalar
        # powers" otherwise); the rewrite handles a tensor of non-negative integer exponents.
        if op == "Pow" and len(node.input) > 1:
            size = sizes.get(node.input[1])
            if size is None:
                raise UnsupportedModelError(
                    f"{where}: exponent {node.input[1]!r} fed at run time (ezkl proves a "
                    "constant power only); make the exponent a constant"
                )
            if size > 1:
                raise UnsupportedModelError(
                    f"{where}: one exponent per element, not all non-negative integers (ezkl "
                    "proves one scalar power); use a single exponent"
                )
        # ezkl reads strides and pads as given and fails, naming neither the node nor the
        # attribute, when they are missing.
        if op in ("Conv", "MaxPool", "AveragePool") and _attr(node, "strides", None) is None:
            raise UnsupportedModelError(
                f"{where} has no explicit strides; export it with strides set (e.g. [1, 1])"
            )
    return []


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _value_inputs(node: Any) -> list[str]:
    """The inputs whose values (not only type) the node's output depends on."""
    return list(node.input[:1]) if node.op_type == "CastLike" else list(node.input)


def _constant_size(node: Any) -> int:
    """How many elements a Constant node holds (``value`` tensor or one of ``value_*``)."""
    value = _attr(node, "value", None)
    if value is not None:
        return prod(value.dims)
    for attr in node.attribute:
        if attr.name in ("value_floats", "value_ints", "value_strings"):
            return len(_attr(node, attr.name, []))
    return 1


def _ints(node: Any, name: str) -> list[int]:
    value = _attr(node, name, [])
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
