"""Graph rewrites (zkml_oracle.circuit.rewrite): equal to the original under onnxruntime on random
inputs and random operator attributes (hypothesis), and proven by ezkl (one model each).

The property tests run onnxruntime only (milliseconds an example); the proofs are the onnx
package's conformance cases that raw ezkl refuses, built, proven and verified for real.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from zkml_oracle.circuit import conformance, support
from zkml_oracle.circuit.conformance import CaseResult
from zkml_oracle.circuit.rewrite import pool_window_index, rewrite
from zkml_oracle.exceptions import UnsupportedModelError

PROPERTY = settings(
    max_examples=int(os.environ.get("ZKML_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _model(
    node: Any,
    x_shape: list[int],
    inits: dict[str, np.ndarray[Any, Any]] | None = None,
    opset: int = 13,
    fed: dict[str, np.ndarray[Any, Any]] | None = None,
) -> onnx.ModelProto:
    """One node on input ``x`` (and the ``fed`` inputs), with ``inits`` as initializers."""
    graph = helper.make_graph(
        [node],
        "m",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
            *(
                helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape))
                for k, v in (fed or {}).items()
            ),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    try:  # the output's shape, as the exporters write it
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:
        assume(False)  # attributes the operator's definition does not allow: not an example
    model.graph.output[0].CopyFrom(inferred.graph.output[0])
    return model


def _run(
    model: onnx.ModelProto | Path,
    x: np.ndarray[Any, Any],
    fed: dict[str, np.ndarray[Any, Any]] | None = None,
) -> np.ndarray[Any, Any]:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    out: np.ndarray[Any, Any] = session.run(None, {"x": x, **(fed or {})})[0]
    return out


def _assert_rewrite_is_exact(
    tmp_path: Path,
    model: onnx.ModelProto,
    x: np.ndarray[Any, Any],
    expect_op: str | None,
    fed: dict[str, np.ndarray[Any, Any]] | None = None,
    atol: float = 1e-5,
) -> list[str]:
    """The original must run under onnxruntime (else the example is invalid: discarded)."""
    try:
        expected = _run(model, x, fed)
    except Exception:
        assume(False)
    onnx.save(model, str(tmp_path / "m.onnx"))
    notes = rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    rewritten = onnx.load(str(tmp_path / "r.onnx"))
    onnx.checker.check_model(rewritten)
    ops = [n.op_type for n in rewritten.graph.node]
    if expect_op is not None:
        assert expect_op not in ops, ops
        assert notes, "a rewrite is listed in the build report"
    got = _run(tmp_path / "r.onnx", x, fed)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=atol)
    support.check(tmp_path / "r.onnx")  # nothing left that the preflight refuses
    return notes


spatial_dims = st.integers(1, 3)


def _span(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


@PROPERTY
@given(data=st.data(), dims=spatial_dims)
def test_dilated_conv_equals_conv_with_zero_dilated_kernel(
    tmp_path: Path, data: st.DataObject, dims: int
) -> None:
    group = data.draw(st.sampled_from([1, 2]))
    cin, cout = group * data.draw(st.integers(1, 2)), group * data.draw(st.integers(1, 2))
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dil = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    assume(any(d > 1 for d in dil))
    strides = data.draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    pads = data.draw(st.lists(st.integers(0, 2), min_size=2 * dims, max_size=2 * dims))
    size = [_span(k, d) + data.draw(st.integers(0, 3)) for k, d in zip(kernel, dil, strict=True)]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    w = rng.normal(size=[cout, cin // group, *kernel]).astype(np.float32)
    b = rng.normal(size=[cout]).astype(np.float32)
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], dilations=dil, strides=strides, pads=pads, group=group
    )
    x = rng.normal(size=[1, cin, *size]).astype(np.float32)
    notes = _assert_rewrite_is_exact(
        tmp_path, _model(node, [1, cin, *size], {"w": w, "b": b}), x, None
    )
    assert any("zero-dilated kernel" in n for n in notes)


@PROPERTY
@given(data=st.data(), dims=spatial_dims)
def test_conv_transpose_equals_conv_over_zero_interleaved_input(
    tmp_path: Path, data: st.DataObject, dims: int
) -> None:
    group = data.draw(st.sampled_from([1, 2]))
    cin, cout_g = group * data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    strides = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dil = data.draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    pads = data.draw(st.lists(st.integers(0, 2), min_size=2 * dims, max_size=2 * dims))
    extra = [data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dil, strict=True)]
    size = data.draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    w = rng.normal(size=[cin, cout_g, *kernel]).astype(np.float32)
    # The kernel as a constant (folded) or as an input fed at run time (rewritten in-graph).
    runtime = data.draw(st.booleans())
    inits: dict[str, np.ndarray[Any, Any]] = {} if runtime else {"w": w}
    fed = {"w": w} if runtime else {}
    inputs = ["x", "w"]
    if data.draw(st.booleans()):
        inputs.append("b")
        inits["b"] = rng.normal(size=[cout_g * group]).astype(np.float32)
    attrs: dict[str, Any] = {"strides": strides, "dilations": dil, "group": group}
    padding = data.draw(st.sampled_from(["pads", "output_shape", "SAME_UPPER", "SAME_LOWER"]))
    if padding == "pads":
        attrs.update(pads=pads, output_padding=extra)
    elif padding == "output_shape":
        attrs["output_shape"] = [s * n + e for s, n, e in zip(strides, size, extra, strict=True)]
    else:
        attrs["auto_pad"] = padding
    node = helper.make_node("ConvTranspose", inputs, ["y"], **attrs)
    x = rng.normal(size=[1, cin, *size]).astype(np.float32)
    model = _model(node, [1, cin, *size], inits, fed=fed)
    _assert_rewrite_is_exact(tmp_path, model, x, "ConvTranspose", fed)


@PROPERTY
@given(data=st.data())
def test_per_channel_prelu_equals_relu_form(tmp_path: Path, data: st.DataObject) -> None:
    c = data.draw(st.integers(2, 4))
    rest = data.draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    shape = [data.draw(st.integers(1, 2)), c, *rest]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    full = data.draw(st.booleans())
    slope_shape = shape[1:] if full else [c] + [1] * len(rest)
    slope = rng.normal(size=slope_shape).astype(np.float32)
    node = helper.make_node("PRelu", ["x", "s"], ["y"])
    x = rng.normal(size=shape).astype(np.float32)
    _assert_rewrite_is_exact(tmp_path, _model(node, shape, {"s": slope}), x, "PRelu")


@PROPERTY
@given(data=st.data(), mode=st.sampled_from(["reflect", "edge", "wrap"]))
def test_mode_padding_equals_gathers(tmp_path: Path, data: st.DataObject, mode: str) -> None:
    rank = data.draw(st.integers(1, 4))
    shape = data.draw(st.lists(st.integers(2, 5), min_size=rank, max_size=rank))
    pads = [data.draw(st.integers(0, shape[a % rank] - 1)) for a in range(2 * rank)]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=shape).astype(np.float32)
    if mode != "wrap" and data.draw(st.booleans()):  # Pad-2: pads as an attribute
        node = helper.make_node("Pad", ["x"], ["y"], mode=mode, pads=pads)
        model = _model(node, shape, opset=10)
    else:
        node = helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)
        model = _model(node, shape, {"pads": np.array(pads, dtype=np.int64)}, opset=19)
    _assert_rewrite_is_exact(tmp_path, model, x, "Pad" if any(pads) else None)


@PROPERTY
@given(data=st.data(), dims=spatial_dims)
def test_padded_dilated_maxpool_equals_gather_then_unpadded_maxpool(
    tmp_path: Path, data: st.DataObject, dims: int
) -> None:
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    strides = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dil = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    pads = [data.draw(st.integers(0, kernel[a % dims] - 1)) for a in range(2 * dims)]
    size = [_span(k, d) + data.draw(st.integers(0, 3)) for k, d in zip(kernel, dil, strict=True)]
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides, "dilations": dil}
    padding = data.draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER"]))
    if padding == "pads":
        attrs["pads"] = pads
        attrs["ceil_mode"] = data.draw(st.integers(0, 1))
    else:  # with dilations, onnx and onnxruntime disagree on the output size: refused
        attrs["auto_pad"] = padding
        attrs["dilations"] = [1] * dims
        size = [k + data.draw(st.integers(0, 3)) for k in kernel]
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    # Negative inputs: where ezkl's zero padding would win over every real value.
    x = (rng.normal(size=[1, 2, *size]) - 3.0).astype(np.float32)
    _assert_rewrite_is_exact(tmp_path, _model(node, [1, 2, *size], opset=12), x, None)


def test_pool_window_index_repeats_a_real_tap_in_place_of_padding() -> None:
    # Length 5, kernel 3, stride 2, pad 1: windows [-1,0,1], [1,2,3], [3,4,5].
    assert pool_window_index(5, 3, 3, 2, 1, 1).tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 4]


def test_a_window_of_many_taps_is_refused_naming_node_and_fix(tmp_path: Path) -> None:
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[200], strides=[10], dilations=[10], pads=[100, 100]
    )
    onnx.save(_model(node, [1, 1, 220000], opset=12), str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedModelError, match=r"MaxPool node 'y': 200 taps .* use a smaller"):
        rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")


def _pad_model(path: Path, fill: float) -> None:
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], dtype=np.int64), "pads")
    value = numpy_helper.from_array(np.array(fill, dtype=np.float32), "fill")
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads", "fill"], ["y"], mode="constant")],
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])],
        [pads, value],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


@PROPERTY
@given(fill=st.floats(-100, 100, width=32).filter(lambda f: f != 0), seed=st.integers(0, 99))
def test_a_non_zero_pad_becomes_zero_padding_with_the_same_result(
    tmp_path: Path, fill: float, seed: int
) -> None:
    _pad_model(tmp_path / "m.onnx", fill)
    notes = rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    assert len(notes) == 1 and f"with {fill:g}" in notes[0]
    rewritten = onnx.load(str(tmp_path / "r.onnx"))
    onnx.checker.check_model(rewritten)
    assert [n.op_type for n in rewritten.graph.node] == ["Sub", "Pad", "Add"]
    x = np.random.default_rng(seed).normal(size=(1, 2, 3, 3)).astype(np.float32)
    expected = _run(tmp_path / "m.onnx", x)
    assert (expected == np.float32(fill)).sum() > 0
    np.testing.assert_allclose(_run(tmp_path / "r.onnx", x), expected, rtol=1e-6, atol=1e-5)


def test_zero_padding_is_left_alone(tmp_path: Path) -> None:
    _pad_model(tmp_path / "m.onnx", 0.0)
    assert rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx") == []
    assert [n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node] == ["Pad"]


def test_a_conv_without_strides_gets_them_written_out(tmp_path: Path) -> None:
    w = np.ones([1, 1, 2, 2], dtype=np.float32)
    onnx.save(
        _model(helper.make_node("Conv", ["x", "w"], ["y"]), [1, 1, 3, 3], {"w": w}),
        str(tmp_path / "m.onnx"),
    )
    notes = rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    assert notes == ["Conv node 'y': explicit default kernel_shape, strides, dilations, pads"]
    [conv] = onnx.load(str(tmp_path / "r.onnx")).graph.node
    assert {a.name for a in conv.attribute} >= {"strides", "pads", "dilations", "kernel_shape"}


# --- proofs: one model that needs every structural rewrite, built, proven and verified ----


@pytest.mark.slow
def test_a_model_that_needs_the_structural_rewrites_is_proven_accurately(tmp_path: Path) -> None:
    """One proof for the ten rewrites of refused layers (reflect and edge padding, a dilated
    Conv, per-channel PRelu, training-mode BatchNormalization, non-zero constant padding,
    ConvTranspose, padded AveragePool, padded MaxPool, a softmax over a causal -inf mask), in
    one graph: ten circuits cost the suite several times as long. The PyTorch exports of each
    (test_ConvTranspose2d, test_MaxPool3d_stride_padding, ...) run in the conformance
    benchmark. The pooled corners hold one element each, negative on this input: a MaxPool
    padded with 0 (ezkl's) would prove 0 there."""
    rng = np.random.default_rng(7)
    inits = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64),
        "dilated": (rng.normal(size=(2, 2, 3, 3)) * 0.5).astype(np.float32),
        "slope": np.array([[[0.25]], [[-0.5]]], dtype=np.float32),
        "fill": np.array(0.5, dtype=np.float32),
        "transposed": (rng.normal(size=(2, 2, 2, 2)) * 0.5).astype(np.float32),
        "bn_scale": np.array([1.5, -0.5], dtype=np.float32),
        "bn_bias": np.array([0.25, 1.0], dtype=np.float32),
        "bn_mean": np.zeros(2, dtype=np.float32),
        "bn_var": np.ones(2, dtype=np.float32),
        "causal": np.where(np.tril(np.ones((5, 5), dtype=bool)), 0, -np.inf).astype(np.float32),
    }
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["a"], mode="reflect"),
        helper.make_node(
            "Conv", ["a", "dilated"], ["b"], dilations=[2, 2], kernel_shape=[3, 3],
            strides=[1, 1], pads=[0, 0, 0, 0],
        ),
        helper.make_node("PRelu", ["b", "slope"], ["p"]),
        helper.make_node(
            "BatchNormalization", ["p", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
            ["c", "running_mean", "running_var"], training_mode=1,
        ),
        helper.make_node("Pad", ["c", "pads"], ["d"], mode="edge"),
        helper.make_node("Pad", ["d", "pads", "fill"], ["e"], mode="constant"),
        helper.make_node("ConvTranspose", ["e", "transposed"], ["t"], strides=[1, 1]),
        helper.make_node(  # count_include_pad 0: ezkl's own would divide the border by 9
            "AveragePool", ["t"], ["f"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]
        ),
        helper.make_node(
            "MaxPool", ["f"], ["g"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Add", ["g", "causal"], ["scores"]),  # a causal -inf mask
        helper.make_node("Softmax", ["scores"], ["y"], axis=-1),
    ]  # fmt: skip
    model = _chain_model(nodes, inits, [1, 2, 6, 6], opset=18, ir_version=8)
    onnx.save(model, str(tmp_path / "m.onnx"))
    notes = rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    assert [n.split(" ")[0] for n in notes] == [
        "Pad", "Conv", "PRelu", "BatchNormalization", "Pad", "Pad", "ConvTranspose",
        "AveragePool", "MaxPool", "Softmax",
    ], notes  # fmt: skip
    x = np.random.default_rng(6).normal(size=[1, 2, 6, 6]).astype(np.float32)
    pooled = onnx.load(str(tmp_path / "m.onnx"))
    pooled.graph.output[0].name = "g"
    del pooled.graph.node[-2:]
    corners = _run(pooled, x)[0][:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < 0).any()
    result = _proven(tmp_path / "proof", model, x)
    assert result.verdict == "accurate", result


FUNCTION_OPS = {  # operator: (opset, attributes) of a definition ezkl's reader lacks
    "Gelu": (20, {"approximate": "none"}),
    "Mish": (18, {}),
    "MeanVarianceNormalization": (13, {}),
    "Swish": (24, {"alpha": 0.75}),
    "SpaceToDepth": (28, {"blocksize": 2, "mode": "CRD"}),  # one ezkl misreads (proves DCR)
}


@PROPERTY
@given(data=st.data(), op=st.sampled_from(sorted(FUNCTION_OPS)))
def test_an_operator_ezkl_lacks_becomes_its_onnx_function_body(
    tmp_path: Path, data: st.DataObject, op: str
) -> None:
    opset, attrs = FUNCTION_OPS[op]
    if op == "Gelu":
        attrs = {"approximate": data.draw(st.sampled_from(["none", "tanh"]))}
    shape = data.draw(st.lists(st.integers(1, 4), min_size=4, max_size=4))
    if op == "SpaceToDepth":  # spatial dims: whole blocks
        shape[2:] = [2 * d for d in shape[2:]]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = (rng.normal(size=shape) * data.draw(st.floats(0.1, 10))).astype(np.float32)
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    notes = _assert_rewrite_is_exact(tmp_path, _model(node, shape, opset=opset), x, op)
    assert notes[0] == f"{op} node 'y' → its ONNX function body"
    # the body's own nodes rewritten again: Mish's Softplus (see the Softplus test)
    again = [n.split(" node ")[0] for n in notes[1:] if "made initializers" not in n]
    assert again == (["Softplus"] if op == "Mish" else []), notes


def _batch_norm_case(
    data: st.DataObject, *, max_batch: int
) -> tuple[list[int], np.random.Generator, dict[str, np.ndarray]]:
    """A BatchNormalization input shape (N, C, up to two spatial dims), a seeded generator, and
    the per-channel scale, bias, mean and (positive) variance."""
    c = data.draw(st.integers(1, 4))
    shape = [data.draw(st.integers(1, max_batch)), c]
    shape += data.draw(st.lists(st.integers(1, 4), max_size=2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    stats = {
        "scale": rng.normal(size=c).astype(np.float32),
        "bias": rng.normal(size=c).astype(np.float32),
        "mean": rng.normal(size=c).astype(np.float32),
        "var": rng.uniform(0.1, 3, size=c).astype(np.float32),
    }
    return shape, rng, stats


@PROPERTY
@given(data=st.data())
def test_batch_norm_with_statistics_fed_at_run_time_equals_its_formula(
    tmp_path: Path, data: st.DataObject
) -> None:
    shape, rng, fed = _batch_norm_case(data, max_batch=2)
    eps = data.draw(st.sampled_from([1e-5, 1e-2]))
    node = helper.make_node("BatchNormalization", ["x", *fed], ["y"], epsilon=eps)
    x = rng.normal(size=shape).astype(np.float32)
    model = _model(node, shape, opset=15, fed=fed)
    _assert_rewrite_is_exact(tmp_path, model, x, "BatchNormalization", fed)


@PROPERTY
@given(data=st.data(), dims=spatial_dims)
def test_a_conv_bias_fed_at_run_time_is_added_after_the_conv(
    tmp_path: Path, data: st.DataObject, dims: int
) -> None:
    """ezkl panics on a Conv whose bias is not a constant (CausalConvWithState with a bias)."""
    groups = data.draw(st.integers(1, 2))
    c_in, c_out = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    size = [k + data.draw(st.integers(0, 2)) for k in kernel]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fed = {
        "w": rng.normal(size=[c_out, c_in // groups, *kernel]).astype(np.float32),
        "b": rng.normal(size=c_out).astype(np.float32),
    }
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=groups)
    x = rng.normal(size=[1, c_in, *size]).astype(np.float32)
    model = _model(node, [1, c_in, *size], opset=13, fed=fed)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, None, fed)
    assert any("bias fed at run time" in n for n in notes), notes
    conv = next(n for n in onnx.load(str(tmp_path / "r.onnx")).graph.node if n.op_type == "Conv")
    assert list(conv.input) == ["x", "w"]


@PROPERTY
@given(data=st.data())
def test_training_mode_batch_norm_equals_its_formula_with_the_running_statistics(
    tmp_path: Path, data: st.DataObject
) -> None:
    shape, rng, params = _batch_norm_case(data, max_batch=3)
    outputs = ["y", "running_mean", "running_var"]  # onnxruntime wants all three
    node = helper.make_node(
        "BatchNormalization",
        ["x", *params],
        outputs,
        training_mode=1,
        epsilon=data.draw(st.sampled_from([1e-5, 1e-2])),
        momentum=data.draw(st.sampled_from([0.9, 0.5])),
    )
    graph = helper.make_graph(
        [node],
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in params.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    x = rng.normal(size=shape).astype(np.float32)
    runs = [
        ort.InferenceSession(str(tmp_path / f), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )
        for f in ("m.onnx", "r.onnx")
    ]
    ops = {n.op_type for n in onnx.load(tmp_path / "r.onnx").graph.node}
    assert "BatchNormalization" not in ops, ops
    for expected, got in zip(*runs, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_wrap_padding_is_proven_accurately(tmp_path: Path) -> None:
    """No conformance case pads with ``wrap`` (opset 19): a one-node model, its reference
    output from onnxruntime."""
    shape, pads = [1, 2, 4, 3], [0, 0, 2, 1, 0, 0, 1, 2]
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="wrap")
    model = _model(node, shape, {"pads": np.array(pads, dtype=np.int64)}, opset=19)
    x = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    result = _proven(tmp_path, model, x)
    assert result.verdict == "accurate", result


def _assert_exact_or_refused_where_onnxruntime_is_off(
    tmp_path: Path,
    model: onnx.ModelProto,
    x: np.ndarray[Any, Any],
    op: str,
    *,
    atol: float = 1e-5,
    off_by: float = 1e-5,
) -> None:
    """The rewrite equals the original under onnxruntime, or it was refused because
    onnxruntime and the ONNX reference implementation disagree (by more than ``off_by``)."""
    try:
        _assert_rewrite_is_exact(tmp_path, model, x, op, atol=atol)
    except UnsupportedModelError as e:
        assert "disagree" in str(e)
        reference = ReferenceEvaluator(model).run(None, {"x": x})[0]
        assert not np.allclose(_run(model, x), reference, atol=off_by)


def _chain_model(
    nodes: list[onnx.NodeProto],
    inits: dict[str, np.ndarray[Any, Any]],
    shape: list[int],
    *,
    opset: int,
    ir_version: int,
) -> onnx.ModelProto:
    """A model of ``nodes`` from input ``x`` (float, ``shape``) to output ``y``, its shapes
    inferred (the conformance run reads the output's)."""
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _proven(tmp_path: Path, model: onnx.ModelProto, x: np.ndarray[Any, Any]) -> CaseResult:
    """Build, prove and verify a one-input model as a conformance case (reference output
    from onnxruntime)."""
    folder = tmp_path / "suite" / "test_model" / "test_data_set_0"
    folder.mkdir(parents=True)
    onnx.save(model, str(folder.parent / "model.onnx"))
    for name, value in (("input_0", x), ("output_0", _run(model, x))):
        (folder / f"{name}.pb").write_bytes(numpy_helper.from_array(value).SerializeToString())
    [case] = conformance.discover(tmp_path / "suite")
    return conformance.run_case(case, tmp_path, timeout=300)


def _resize_model(data: st.DataObject, shape: list[int]) -> onnx.ModelProto:
    mode = data.draw(st.sampled_from(["nearest", "linear", "cubic"]))
    transform = data.draw(
        st.sampled_from(["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"])
    )
    factors = [1.0, 1.0] + [
        data.draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])) for _ in shape[2:]
    ]
    inits = {
        "roi": np.array([], dtype=np.float32),
        "scales": np.array(factors, dtype=np.float32),
    }
    node = helper.make_node(
        "Resize", ["x", "roi", "scales"], ["y"], mode=mode, coordinate_transformation_mode=transform
    )
    return _model(node, shape, inits, opset=13)


@PROPERTY
@given(data=st.data())
def test_resize_with_constant_scales_equals_gathers_and_matmuls(
    tmp_path: Path, data: st.DataObject
) -> None:
    shape = [
        1,
        data.draw(st.integers(1, 2)),
        *data.draw(st.lists(st.integers(2, 5), min_size=1, max_size=2)),
    ]
    model = _resize_model(data, shape)
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).normal(size=shape)
    # Refused: onnxruntime's align_corners downsampling.
    _assert_exact_or_refused_where_onnxruntime_is_off(
        tmp_path, model, x.astype(np.float32), "Resize", off_by=1e-3
    )


@pytest.mark.slow
def test_a_bilinear_upsample_is_proven_accurately(tmp_path: Path) -> None:
    """ezkl's reader refuses this Resize; rewritten into constant MatMuls, it proves."""
    shape = [1, 1, 3, 3]
    node = helper.make_node(
        "Resize",
        ["x", "roi", "scales"],
        ["y"],
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    inits = {"roi": np.array([], np.float32), "scales": np.array([1, 1, 2, 2], np.float32)}
    model = _model(node, shape, inits, opset=13)
    x = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    result = _proven(tmp_path, model, x)
    assert result.verdict == "accurate", result


# --- LpNormalization, LpPool, RMSNormalization, Pow, DFT, folded shape computations ----------


@PROPERTY
@given(data=st.data())
def test_lp_normalization_equals_division_by_the_norm(tmp_path: Path, data: st.DataObject) -> None:
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    p = data.draw(st.sampled_from([1, 2]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=shape).astype(np.float32)
    if data.draw(st.booleans()):  # a slice of zeros: onnxruntime returns 0 there, not NaN
        np.moveaxis(x, axis, 0)[...] *= rng.random(np.moveaxis(x, axis, 0).shape[1:]) > 0.5
    node = helper.make_node("LpNormalization", ["x"], ["y"], axis=axis, p=p)
    _assert_rewrite_is_exact(tmp_path, _model(node, shape, opset=22), x, "LpNormalization")


@PROPERTY
@given(data=st.data(), dims=spatial_dims)
def test_lp_pool_equals_depthwise_sum_of_powers(
    tmp_path: Path, data: st.DataObject, dims: int
) -> None:
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    strides = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dil = data.draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    size = [_span(k, d) + data.draw(st.integers(0, 3)) for k, d in zip(kernel, dil, strict=True)]
    attrs: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": strides,
        "p": data.draw(st.integers(1, 6)),
    }
    padding = data.draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if padding == "pads":
        attrs["pads"] = [data.draw(st.integers(0, kernel[a % dims] - 1)) for a in range(2 * dims)]
        attrs["ceil_mode"] = data.draw(st.integers(0, 1))
        attrs["dilations"] = dil
    else:  # SAME with windows that skip input is left alone (onnxruntime reads elsewhere)
        attrs["auto_pad"] = padding
        assume(padding == "VALID" or all(s <= k for s, k in zip(strides, kernel, strict=True)))
    node = helper.make_node("LpPool", ["x"], ["y"], **attrs)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=[1, 2, *size]).astype(np.float32)
    _assert_rewrite_is_exact(tmp_path, _model(node, [1, 2, *size], opset=22), x, "LpPool")
    # |x| ** p from p = 4 on by Muls, each rescaled in the circuit (ezkl's Pow rescales after
    # all p factors: past its range checks at p = 4); Pows: the root, and |x| ** 3.
    powers = [n for n in onnx.load(str(tmp_path / "r.onnx")).graph.node if n.op_type == "Pow"]
    assert len(powers) == (attrs["p"] > 2) + (attrs["p"] == 3), powers


@PROPERTY
@given(data=st.data(), dims=spatial_dims)
def test_padded_average_pool_equals_window_sums_times_each_divisor(
    tmp_path: Path, data: st.DataObject, dims: int
) -> None:
    kernel = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    strides = data.draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims))
    dil = data.draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims))
    size = [_span(k, d) + data.draw(st.integers(0, 3)) for k, d in zip(kernel, dil, strict=True)]
    attrs: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": strides,
        "count_include_pad": data.draw(st.integers(0, 1)),
    }
    padding = data.draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER"]))
    if padding == "pads":
        attrs["pads"] = [data.draw(st.integers(0, kernel[a % dims] - 1)) for a in range(2 * dims)]
        attrs["ceil_mode"] = data.draw(st.integers(0, 1))
        attrs["dilations"] = dil
    else:
        attrs["auto_pad"] = padding
        assume(all(s <= k for s, k in zip(strides, kernel, strict=True)))
    assume(any(attrs.get("pads", [1])) or attrs.get("ceil_mode") or any(d > 1 for d in dil))
    node = helper.make_node("AveragePool", ["x"], ["y"], **attrs)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=[1, 2, *size]).astype(np.float32)
    model = _model(node, [1, 2, *size], opset=22)
    _assert_exact_or_refused_where_onnxruntime_is_off(tmp_path, model, x, "AveragePool")


@PROPERTY
@given(data=st.data())
def test_rms_normalization_equals_its_formula(tmp_path: Path, data: st.DataObject) -> None:
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    scale = rng.normal(size=shape[axis % len(shape) :]).astype(np.float32)
    eps = data.draw(st.sampled_from([1e-5, 0.1]))
    node = helper.make_node("RMSNormalization", ["x", "s"], ["y"], axis=axis, epsilon=eps)
    x = rng.normal(size=shape).astype(np.float32)
    model = _model(node, shape, {"s": scale}, opset=23)
    _assert_rewrite_is_exact(tmp_path, model, x, "RMSNormalization")


def test_axes_computed_from_a_static_shape_are_folded_into_constants(tmp_path: Path) -> None:
    """Function bodies (RMSNormalization's, LayerNormalization's) compute their reduction axes
    with Shape, Size and Range, which ezkl's reader refuses: they become constants."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Size", ["shape"], ["rank"]),
        helper.make_node("Range", ["one", "rank", "one"], ["axes"]),
        helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 1])],
        [numpy_helper.from_array(np.array(1, dtype=np.int64), "one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    x = np.random.default_rng(5).normal(size=[2, 3, 4]).astype(np.float32)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, "Range")
    assert notes == ["3 constant-valued nodes (shapes, axes) made initializers"]
    assert [n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node] == ["ReduceMean"]


def test_an_infinite_mask_computed_from_constants_is_refused_naming_node_and_fix(
    tmp_path: Path,
) -> None:
    """An additive ``Where(tri, 0, -inf)`` mask that does not feed a softmax (where the
    rewrite below removes it): no fixed-point scale holds -inf (ezkl said "significant bit
    truncation", naming neither node nor fix). The same -inf compared with a constant only
    (folded by tract) is not refused."""
    tri = np.tril(np.ones((3, 3), dtype=bool))
    nodes = [
        helper.make_node("Where", ["tri", "zero", "neg_inf"], ["bias"]),
        helper.make_node("Equal", ["neg_inf", "zero"], ["never"]),
        helper.make_node("Where", ["never", "zero", "x"], ["kept"]),
        helper.make_node("Add", ["kept", "bias"], ["scores"]),
        helper.make_node("Relu", ["scores"], ["y"]),
    ]
    inits = {
        "tri": tri,
        "zero": np.array(0.0, dtype=np.float32),
        "neg_inf": np.array(-np.inf, dtype=np.float32),
    }
    model = _chain_model(nodes, inits, [1, 3, 3], opset=18, ir_version=8)
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedModelError) as refused:
        rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    message = str(refused.value)
    assert "Add node 'scores'" in message and "'bias' holds -inf" in message, message
    assert "mask with a finite value" in message and "\n" not in message
    # The masked scores a graph output too (Attention's qk_matmul_output): that output named.
    nodes[-1] = helper.make_node("Softmax", ["scores"], ["y"], axis=-1)
    nodes.append(helper.make_node("Identity", ["scores"], ["qk"]))
    model = _chain_model(nodes, inits, [1, 3, 3], opset=18, ir_version=8)
    model.graph.output.append(helper.make_tensor_value_info("qk", TensorProto.FLOAT, [1, 3, 3]))
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedModelError) as refused:
        rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    message = str(refused.value)
    assert "Add node 'scores': the graph output 'qk' holds scores masked with -inf" in message
    assert "drop that output" in message and "\n" not in message


def _masked_model(
    nodes: list[onnx.NodeProto],
    shape: list[int],
    mask_shape: list[int],
    inits: dict[str, np.ndarray[Any, Any]],
    opset: int,
) -> onnx.ModelProto:
    """A model of ``nodes`` from inputs ``x`` (``shape``) and a float ``mask`` fed at run time
    to ``y`` (``shape``), with ``inits`` and the scalars ``neg_inf`` and ``zero``."""
    inits = {
        **inits,
        "neg_inf": np.array(-np.inf, dtype=np.float32),
        "zero": np.array(0.0, dtype=np.float32),
    }
    graph = helper.make_graph(
        nodes,
        "m",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, mask_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _assert_no_infinite_constant_is_read(path: Path) -> None:
    rewritten = onnx.load(str(path))
    read = {i for n in rewritten.graph.node for i in n.input}
    infinite = {
        t.name
        for t in rewritten.graph.initializer
        if not np.isfinite(numpy_helper.to_array(t)).all()
    }
    assert not read & infinite, read & infinite


@PROPERTY
@given(data=st.data())
def test_a_run_time_value_compared_with_minus_infinity_is_false(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Attention's body with a float mask fed at run time: ``Equal(ReduceMax(mask), -inf)``
    ("row all masked"). A finite value never equals -inf: the Equal becomes False."""
    shape = [1, data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    fed = {"mask": (rng.normal(size=shape) * 3).astype(np.float32)}
    nodes = [
        helper.make_node("ReduceMax", ["mask"], ["row_max"], axes=[-1], keepdims=1),
        helper.make_node("Equal", ["row_max", "neg_inf"], ["all_masked"]),
        helper.make_node("Add", ["x", "mask"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("Where", ["all_masked", "zero", "p"], ["y"]),
    ]
    model = _masked_model(nodes, shape, shape, {}, opset=13)
    x = rng.normal(size=shape).astype(np.float32)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, "Equal", fed)
    assert notes == ["Equal node 'all_masked': a finite value == -inf → False"], notes


@PROPERTY
@given(data=st.data())
def test_softmax_over_a_constant_minus_infinity_mask_equals_one_over_the_kept_entries(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Attention's causal mask, ``Softmax(scores + Where(tri, 0, -inf))``, or FlexAttention's,
    ``Softmax(Where(tri, scores, -inf))``: a softmax over the kept entries, with no -inf left
    in the circuit."""
    rows, cols = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    keep = rng.random((rows, cols)) < 0.6
    keep[:, 0] = False  # a masked entry
    keep[np.arange(rows), rng.integers(1, cols, size=rows)] = True  # a kept entry per row
    inits = {
        "keep": keep,
        "zero": np.array(0.0, dtype=np.float32),
        "neg_inf": np.array(-np.inf, dtype=np.float32),
    }
    masking = [  # FlexAttention's causal mask: Where(keep, x, -inf), the same for a finite x
        helper.make_node("Where", ["keep", "zero", "neg_inf"], ["bias"]),
        helper.make_node("Add", ["x", "bias"], ["scores"]),
    ]
    if data.draw(st.booleans()):
        masking = [helper.make_node("Where", ["keep", "x", "neg_inf"], ["scores"])]
    nodes = [
        *masking,
        helper.make_node("Cast", ["scores"], ["cast"], to=TensorProto.FLOAT),
        helper.make_node("Softmax", ["cast"], ["y"], axis=-1),
    ]
    model = _chain_model(nodes, inits, [2, rows, cols], opset=18, ir_version=8)
    x = (rng.normal(size=[2, rows, cols]) * 4).astype(np.float32)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, "Softmax")
    assert notes == [
        "Softmax node 'y': over x + a constant -inf mask → a softmax over the kept entries"
    ]
    _assert_no_infinite_constant_is_read(tmp_path / "r.onnx")


@PROPERTY
@given(data=st.data())
def test_a_run_time_mask_added_to_a_causal_one_equals_a_softmax_over_the_kept_entries(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Attention with a mask fed at run time and ``is_causal``: ``Softmax(x + (mask +
    causal))``, where the sum also feeds the "row all masked" test ``Equal(ReduceMax(sum),
    -inf)`` (over the softmax axis, as Attention's body does, or any other axes drawn: the test
    then reads the constant mask alone, whichever axes). No -inf left in the circuit."""
    rows, cols = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    keep = rng.random((rows, cols)) < 0.6
    keep[:, 0] = False  # a column masked in every row: a row test over other axes is True
    keep[np.arange(rows), rng.integers(1, cols, size=rows)] = True  # a kept entry per row
    axes = data.draw(st.sampled_from([[-1], [-2], [-2, -1]]))
    shape = [2, rows, cols]
    nodes = [
        helper.make_node("Where", ["keep", "zero", "neg_inf"], ["causal"]),
        helper.make_node("Add", ["mask", "causal"], ["bias"]),
        helper.make_node("Cast", ["bias"], ["bias_t"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "bias_t"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("ReduceMax", ["bias_t", "axes"], ["row_max"], keepdims=1),
        helper.make_node("CastLike", ["neg_inf", "bias_t"], ["neg_inf_t"]),
        helper.make_node("Equal", ["row_max", "neg_inf_t"], ["all_masked"]),
        helper.make_node("Where", ["all_masked", "zero", "p"], ["y"]),
    ]
    mask_shape = data.draw(st.sampled_from([shape, [rows, cols], [2, 1, cols]]))
    inits = {"keep": keep, "axes": np.array(axes, dtype=np.int64)}
    model = _masked_model(nodes, shape, mask_shape, inits, opset=18)
    x = (rng.normal(size=shape) * 4).astype(np.float32)
    fed = {"mask": (rng.normal(size=mask_shape) * 3).astype(np.float32)}
    notes = _assert_rewrite_is_exact(tmp_path, model, x, "Equal", fed)
    assert notes == [
        "Equal node 'all_masked': whether a row is all masked, read from the constant mask",
        "Softmax node 'p': over x + a constant -inf mask → a softmax over the kept entries",
    ], notes
    assert "Softmax" not in {n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node}
    _assert_no_infinite_constant_is_read(tmp_path / "r.onnx")


def _scan_body(typed: bool, width: int, second: bool) -> onnx.GraphProto:
    """A step of a recurrence: ``state += x_t * c`` (``c`` read from the enclosing graph), the
    scan outputs ``state * x_t`` and (with a second scan input) ``x_t - x2_t``."""
    nodes = [
        helper.make_node("Mul", ["x_t", "c"], ["scaled"]),
        helper.make_node("Add", ["state", "scaled"], ["state_out"]),
        helper.make_node("Mul", ["state_out", "x_t"], ["y_t"]),
    ]
    outputs = ["state_out", "y_t"]
    if second:
        nodes.append(helper.make_node("Sub", ["x_t", "x2_t"], ["d_t"]))
        outputs.append("d_t")
    return helper.make_graph(
        nodes,
        "body",
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, [width])
            if typed
            else helper.make_value_info(n, onnx.TypeProto())
            for n in ["state", "x_t", *(["x2_t"] if second else [])]
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [width]) for n in outputs],
    )


@PROPERTY
@given(data=st.data())
def test_a_scan_over_a_static_length_equals_its_body_unrolled(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Scan's scan and output axes and directions, one or two scan inputs, the body reading a
    constant of the enclosing graph (pruning it once left an invalid model), declared with or
    without types (LinearAttention's function body declares none: ezkl's reader panicked);
    and Scan-8, whose states and scan inputs carry a batch axis first. The initial state is
    a constant or, as in LinearAttention without a past state, a ConstantOfShape fill, which
    becomes a constant (ezkl could not read the first step's MatMul of it)."""
    steps, width = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    batch = data.draw(st.sampled_from([0, 1, 2]))  # 0: Scan-9 and later; else Scan-8's batch
    opset = data.draw(st.sampled_from([11, 13, 18])) if not batch else 8
    second = data.draw(st.booleans())
    scans = outs = 2 if second else 1  # y_t, and d_t with a second scan input
    in_axes = data.draw(st.lists(st.sampled_from([0, 1, -1]), min_size=scans, max_size=scans))
    directions = data.draw(st.lists(st.sampled_from([0, 1]), min_size=scans, max_size=scans))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    constant = numpy_helper.from_array(rng.normal(size=[width]).astype(np.float32))
    nodes = [
        helper.make_node("Constant", [], ["c"], value=constant),
        helper.make_node("Shape", ["x"], ["s"]),  # folded: the pass that prunes runs
        helper.make_node("Reshape", ["x", "s"], ["x0"]),
        helper.make_node("Neg", ["x"], ["n"]),
    ]
    if batch:
        feeds = ["x0", "n"][:scans]
        scan = helper.make_node(
            "Scan",
            ["", "s0", *feeds],
            ["final", *[f"stacked{j}" for j in range(outs)]],
            num_scan_inputs=scans,
            directions=directions,
        )
    else:
        nodes += [
            helper.make_node("Transpose", ["x0"], ["xt"], perm=[1, 0]),
            helper.make_node("Transpose", ["n"], ["nt"], perm=[1, 0]),
        ]
        feeds = [("x0", "n")[j] if a == 0 else ("xt", "nt")[j] for j, a in enumerate(in_axes)]
        scan = helper.make_node(
            "Scan",
            ["s0", *feeds],
            ["final", *[f"stacked{j}" for j in range(outs)]],
            num_scan_inputs=scans,
            scan_input_axes=in_axes,
            scan_input_directions=directions,
            scan_output_axes=data.draw(
                st.lists(st.sampled_from([0, 1, -1]), min_size=outs, max_size=outs)
            ),
            scan_output_directions=data.draw(
                st.lists(st.sampled_from([0, 1]), min_size=outs, max_size=outs)
            ),
        )
    flat = [helper.make_node("Reshape", [v, "flat"], [f"{v}_flat"]) for v in scan.output]
    nodes += [scan, *flat, helper.make_node("Concat", [n.output[0] for n in flat], ["y"], axis=0)]
    lead = [batch] if batch else []
    inits = {"s0": rng.normal(size=[*lead, width]).astype(np.float32), "flat": np.array([-1])}
    fill = data.draw(st.sampled_from([None, 0.0, -1.5]))  # None: s0 an initializer
    if fill is not None:
        value = numpy_helper.from_array(np.array([fill], dtype=np.float32))
        nodes.insert(0, helper.make_node("ConstantOfShape", ["s0_shape"], ["s0"], value=value))
        inits["s0_shape"] = np.array(inits.pop("s0").shape, dtype=np.int64)
    scan.attribute.append(helper.make_attribute("body", _scan_body(True, width, second)))
    model = _chain_model(nodes, inits, [*lead, steps, width], opset=opset, ir_version=8)
    declared = _scan_body(data.draw(st.booleans()), width, second)
    next(n for n in model.graph.node if n.op_type == "Scan").attribute[-1].g.CopyFrom(declared)
    x = rng.normal(size=[*lead, steps, width]).astype(np.float32)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, "Scan")
    assert f"Scan node 'final' → its body unrolled over the {steps} step" in notes[0]
    if fill is not None:
        assert "ConstantOfShape node 's0': an unrolled Scan's initial state → a constant" in notes
        ops = {n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node}
        assert "ConstantOfShape" not in ops, ops


def test_a_loop_body_with_untyped_inputs_is_refused_naming_node_and_fix(tmp_path: Path) -> None:
    """What is not unrolled and declares its body's inputs untyped: ezkl's reader panicked on
    it naming nothing."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond"], ["cond_out"]),
            helper.make_node("Add", ["v", "x"], ["v_out"]),
        ],
        "body",
        [helper.make_value_info(n, onnx.TypeProto()) for n in ("i", "cond", "v")],
        [helper.make_value_info(n, onnx.TypeProto()) for n in ("cond_out", "v_out")],
    )
    nodes = [helper.make_node("Loop", ["trips", "go", "x"], ["y"], body=body)]
    inits = {"trips": np.array(3, dtype=np.int64), "go": np.array(True)}
    model = _chain_model(nodes, inits, [2], opset=18, ir_version=8)
    model.graph.node[0].attribute[0].g.CopyFrom(body)  # as declared, not as inferred
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedModelError, match=r"Loop node 'y': its body's inputs"):
        rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")


def test_the_shape_of_a_value_shaped_at_run_time_folds_to_its_real_shape(tmp_path: Path) -> None:
    """Attention's body reshapes K to a shape it computes, then takes that value's Shape.
    Shape inference alone names such dims ``unk__N``; read as 1 they folded to [1, 1], and
    the Reshape below could not run (every expanded Attention case was refused)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["cols"]),
        helper.make_node("Gather", ["s", "zero"], ["rows"]),
        helper.make_node("Concat", ["cols", "rows"], ["swapped"], axis=0),
        helper.make_node("Reshape", ["x", "swapped"], ["r"]),
        helper.make_node("Shape", ["r"], ["r_shape"]),
        helper.make_node("Transpose", ["x"], ["t"]),
        helper.make_node("Reshape", ["t", "r_shape"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 2])],
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    x = np.random.default_rng(5).normal(size=[2, 6]).astype(np.float32)
    _assert_rewrite_is_exact(tmp_path, model, x, "Shape")


@PROPERTY
@given(data=st.data())
def test_a_matmul_of_stacks_broadcast_both_ways_equals_one_of_repeated_stacks(
    tmp_path: Path, data: st.DataObject
) -> None:
    batch = data.draw(st.lists(st.integers(2, 3), min_size=1, max_size=2))
    ones = [
        data.draw(st.lists(st.booleans(), min_size=len(batch), max_size=len(batch))) for _ in "ab"
    ]
    assume(ones[0] != ones[1])  # batch dims that differ
    m, n, inner = (data.draw(st.integers(1, 3)) for _ in "mnk")
    a_shape = [1 if o else d for o, d in zip(ones[0], batch, strict=True)] + [m, inner]
    b_shape = [1 if o else d for o, d in zip(ones[1], batch, strict=True)] + [inner, n]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    b = rng.normal(size=b_shape).astype(np.float32)
    node = helper.make_node("MatMul", ["x", "b"], ["y"])
    x = rng.normal(size=a_shape).astype(np.float32)
    model = _model(node, a_shape, opset=13, fed={"b": b})
    notes = _assert_rewrite_is_exact(tmp_path, model, x, None, {"b": b})
    assert notes[0].startswith("MatMul node 'y': batch dims"), notes


@PROPERTY
@given(data=st.data())
def test_a_scalar_input_is_fed_as_one_element_and_reshaped(
    tmp_path: Path, data: st.DataObject
) -> None:
    """Gemm's bias fed at run time as a scalar: ezkl feeds it as [1], which tract refused
    against the scalar declaration."""
    rows, inner, cols = (data.draw(st.integers(1, 4)) for _ in "rkc")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    b = rng.normal(size=[inner, cols]).astype(np.float32)
    c = np.array(rng.normal(), dtype=np.float32)
    beta = data.draw(st.sampled_from([1.0, 0.5]))
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], beta=beta)
    model = _model(node, [rows, inner], {"b": b}, opset=13, fed={"c": c})
    x = rng.normal(size=[rows, inner]).astype(np.float32)
    expected = _run(model, x, {"c": c})
    onnx.save(model, str(tmp_path / "m.onnx"))
    notes = rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    assert notes == ["input 'c': a scalar, fed as [1] and reshaped"]
    rewritten = onnx.load(str(tmp_path / "r.onnx"))
    onnx.checker.check_model(rewritten)
    [declared] = [i for i in rewritten.graph.input if i.name not in ("x", "b")]
    assert [d.dim_value for d in declared.type.tensor_type.shape.dim] == [1]
    got = _run(tmp_path / "r.onnx", x, {declared.name: c.reshape(1)})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@PROPERTY
@given(data=st.data())
def test_pow_with_a_constant_exponent_tensor_equals_masked_scalar_powers(
    tmp_path: Path, data: st.DataObject
) -> None:
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    e_shape = shape[data.draw(st.integers(0, len(shape) - 1)) :]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    exponent = rng.integers(0, 4, size=e_shape).astype(np.float32)
    assume(exponent.size > 1)
    node = helper.make_node("Pow", ["x", "e"], ["y"])
    x = rng.normal(size=shape).astype(np.float32)
    _assert_rewrite_is_exact(tmp_path, _model(node, shape, {"e": exponent}, opset=15), x, None)


@PROPERTY
@given(data=st.data())
def test_instance_normalization_equals_its_formula(tmp_path: Path, data: st.DataObject) -> None:
    c = data.draw(st.integers(1, 3))
    shape = [
        data.draw(st.integers(1, 2)),
        c,
        *data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)),
    ]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    inits = {"s": rng.normal(size=c).astype(np.float32), "b": rng.normal(size=c).astype(np.float32)}
    eps = data.draw(st.sampled_from([1e-5, 1e-2]))
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=eps)
    x = rng.normal(size=shape).astype(np.float32)
    model = _model(node, shape, inits, opset=22)
    # onnxruntime computes the variance another way: float rounding times 1 / sqrt(epsilon).
    _assert_rewrite_is_exact(tmp_path, model, x, "InstanceNormalization", atol=1e-4)


@PROPERTY
@given(data=st.data())
def test_lrn_equals_a_band_matmul_over_channels(tmp_path: Path, data: st.DataObject) -> None:
    c = data.draw(st.integers(1, 6))
    shape = [data.draw(st.integers(1, 2)), c, *data.draw(st.lists(st.integers(1, 3), max_size=2))]
    attrs = {
        "size": data.draw(st.sampled_from([1, 3, 5])),  # onnxruntime: odd sizes only
        "alpha": data.draw(st.sampled_from([1e-4, 0.5])),
        "beta": data.draw(st.sampled_from([0.5, 0.75, 1.0])),
        "bias": data.draw(st.sampled_from([1.0, 2.0])),
    }
    node = helper.make_node("LRN", ["x"], ["y"], **attrs)
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).normal(size=shape)
    _assert_rewrite_is_exact(tmp_path, _model(node, shape, opset=13), x.astype(np.float32), "LRN")


@PROPERTY
@given(data=st.data())
def test_det_equals_the_leibniz_formula(tmp_path: Path, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 4))
    shape = [*data.draw(st.lists(st.integers(1, 3), max_size=2)), n, n]
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).normal(size=shape)
    node = helper.make_node("Det", ["x"], ["y"])
    _assert_rewrite_is_exact(tmp_path, _model(node, shape, opset=13), x.astype(np.float32), "Det")


@pytest.mark.parametrize(
    ("op", "fed", "message"),
    [
        ("Pow", [3], r"Pow node 'y': exponent 'e' fed at run time .* make the exponent a constant"),
        # a scalar input is fed as [1] and reshaped: the refusal still names the user's input
        ("Pow", [], r"Pow node 'y': exponent 'e' fed at run time .* make the exponent a constant"),
        (
            "GridSample",
            [1, 2, 2, 2],
            r"GridSample node 'y': grid 'e' fed at run time .* make the grid a constant",
        ),
    ],
)
def test_a_parameter_fed_at_run_time_is_refused_naming_node_and_fix(
    tmp_path: Path, op: str, fed: list[int], message: str
) -> None:
    node = helper.make_node(op, ["x", "e"], ["y"])
    model = _model(node, [1, 1, 3, 3], opset=20, fed={"e": np.zeros(fed, dtype=np.float32)})
    onnx.save(model, str(tmp_path / "m.onnx"))
    rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    with pytest.raises(UnsupportedModelError, match=f"^unsupported: {message}$"):
        support.check(tmp_path / "r.onnx")


@PROPERTY
@given(data=st.data())
def test_grid_sample_with_a_constant_grid_equals_one_constant_matmul(
    tmp_path: Path, data: st.DataObject
) -> None:
    spatial = data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=3))
    shape = [data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), *spatial]
    out = data.draw(st.lists(st.integers(1, 3), min_size=len(spatial), max_size=len(spatial)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    grid = rng.uniform(-1.3, 1.3, size=[shape[0], *out, len(spatial)]).astype(np.float32)
    modes = ["linear", "nearest"] + (["cubic"] if len(spatial) == 2 else [])
    node = helper.make_node(
        "GridSample",
        ["x", "grid"],
        ["y"],
        mode=data.draw(st.sampled_from(modes)),
        padding_mode=data.draw(st.sampled_from(["zeros", "border", "reflection"])),
        align_corners=data.draw(st.integers(0, 1)),
    )
    model = _model(node, shape, {"grid": grid}, opset=20)
    x = rng.normal(size=shape).astype(np.float32)
    _assert_exact_or_refused_where_onnxruntime_is_off(tmp_path, model, x, "GridSample", atol=1e-4)


@PROPERTY
@given(data=st.data())
def test_deform_conv_with_constant_offsets_equals_one_constant_matmul(
    tmp_path: Path, data: st.DataObject
) -> None:
    n, groups = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    channels = groups * data.draw(st.integers(1, 2))
    kernel = data.draw(st.lists(st.integers(1, 2), min_size=2, max_size=2))
    spatial = data.draw(st.lists(st.integers(2, 4), min_size=2, max_size=2))
    pads = data.draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))
    strides = data.draw(st.lists(st.integers(1, 2), min_size=2, max_size=2))
    out = [(spatial[a] + pads[a] + pads[a + 2] - kernel[a]) // strides[a] + 1 for a in range(2)]
    offset_group = data.draw(st.sampled_from([1, channels]))
    taps = kernel[0] * kernel[1]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    inits = {
        "w": rng.normal(size=[groups * 2, channels // groups, *kernel]).astype(np.float32),
        "offset": rng.normal(0, 0.7, size=[n, offset_group * 2 * taps, *out]).astype(np.float32),
        "b": rng.normal(size=[groups * 2]).astype(np.float32),
        "mask": rng.uniform(0, 1, size=[n, offset_group * taps, *out]).astype(np.float32),
    }
    node = helper.make_node(
        "DeformConv",
        ["x", "w", "offset", "b", "mask"],
        ["y"],
        group=groups,
        offset_group=offset_group,
        kernel_shape=kernel,
        pads=pads,
        strides=strides,
    )
    shape = [n, channels, *spatial]
    x = rng.normal(size=shape).astype(np.float32)
    model = _model(node, shape, inits, opset=22)
    _assert_exact_or_refused_where_onnxruntime_is_off(tmp_path, model, x, "DeformConv", atol=1e-4)


@PROPERTY
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), opset=st.sampled_from([18, 21]))
def test_optional_get_element_of_a_tensor_is_that_tensor(
    tmp_path: Path, shape: list[int], opset: int
) -> None:
    """An OptionalGetElement of a tensor input (ezkl has none): an Identity."""
    node = helper.make_node("OptionalGetElement", ["x"], ["y"])
    x = np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)
    notes = _assert_rewrite_is_exact(tmp_path, _model(node, shape, opset=opset), x, node.op_type)
    assert notes == ["OptionalGetElement node 'y': of a tensor, that tensor → Identity"], notes


@PROPERTY
@given(data=st.data())
def test_a_reverse_or_bidirectional_recurrence_equals_forward_layers(
    tmp_path: Path, data: st.DataObject
) -> None:
    """RNN, GRU and LSTM run reverse or bidirectional (ezkl proved reverse as forward, and
    failed on bidirectional with "capacity overflow"): one forward layer per direction, the
    reverse one over the reversed sequence; weights constant or fed (as the node tests do),
    an initial state or none, the full sequence output kept or dropped."""
    op = data.draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    direction = data.draw(st.sampled_from(["reverse", "bidirectional"]))
    steps, batch, size, hidden = (data.draw(st.integers(1, 3)) for _ in range(4))
    dirs, gates = 2 if direction == "bidirectional" else 1, {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    values = {
        "w": rng.normal(size=[dirs, gates * hidden, size]),
        "r": rng.normal(size=[dirs, gates * hidden, hidden]),
        "b": rng.normal(size=[dirs, 2 * gates * hidden]),
        "h0": rng.normal(size=[dirs, batch, hidden]),
    }
    values = {k: v.astype(np.float32) for k, v in values.items()}
    if not data.draw(st.booleans()):
        del values["h0"]
    fed = {k: v for k, v in values.items() if data.draw(st.booleans())}
    outputs = ["y", "h"] if data.draw(st.booleans()) else ["", "y"]
    node = helper.make_node(
        op,
        ["x", "w", "r", "b", "", *(["h0"] if "h0" in values else [])],
        outputs,
        direction=direction,
        hidden_size=hidden,
    )
    inits = {k: v for k, v in values.items() if k not in fed}
    model = _model(node, [steps, batch, size], inits, opset=14, fed=fed)
    x = rng.normal(size=[steps, batch, size]).astype(np.float32)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, None, fed)
    assert notes == [f"{op} node 'y': {direction} → one forward layer per direction"], notes
    layers = [n for n in onnx.load(str(tmp_path / "r.onnx")).graph.node if n.op_type == op]
    assert len(layers) == dirs
    directions = [helper.get_attribute_value(a) for n in layers for a in n.attribute]
    assert directions.count(b"forward") == dirs, directions


@PROPERTY
@given(data=st.data(), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_a_binarizer_is_a_cast_of_greater(
    tmp_path: Path, data: st.DataObject, shape: list[int]
) -> None:
    """ai.onnx.ml's Binarizer (tract reads no ai.onnx.ml operator): ``Cast(Greater(x, t))``,
    an input equal to the threshold giving 0; in a model of ai.onnx.ml operators only (as the
    node test: IR 3, no standard operator set) or beside standard ones."""
    threshold = data.draw(st.sampled_from([-0.5, 0.0, 1.0]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=shape).astype(np.float32)
    x.flat[0] = threshold
    node = helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=threshold)
    graph = helper.make_graph(
        [node],
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    opsets = [helper.make_opsetid("ai.onnx.ml", 1)]
    standard = data.draw(st.booleans())
    if standard:
        opsets.append(helper.make_opsetid("", 13))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8 if standard else 3
    notes = _assert_rewrite_is_exact(tmp_path, model, x, node.op_type)
    assert notes == [f"Binarizer node 'y' → Cast(Greater(x, {threshold:g})), its definition"]


@PROPERTY
@given(data=st.data(), fmod=st.integers(0, 1))
def test_a_float_mod_equals_x_minus_y_times_the_whole_quotient(
    tmp_path: Path, data: st.DataObject, fmod: int
) -> None:
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.uniform(-20, 20, size=shape).astype(np.float32)
    y = (rng.uniform(0.5, 5, size=shape) * rng.choice([-1, 1], size=shape)).astype(np.float32)
    node = helper.make_node("Mod", ["x", "d"], ["y"], fmod=fmod)
    model = _model(node, shape, opset=28 if fmod == 0 else 13, fed={"d": y})
    _assert_rewrite_is_exact(tmp_path, model, x, "Mod", fed={"d": y}, atol=1e-4)


@PROPERTY
@given(data=st.data())
def test_dft_equals_one_constant_matmul(tmp_path: Path, data: st.DataObject) -> None:
    signal = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=2))
    parts = data.draw(st.sampled_from([1, 2]))
    shape = [data.draw(st.integers(1, 2)), *signal, parts]
    axis = data.draw(st.integers(1, len(signal)))
    inverse = data.draw(st.integers(0, 1))
    onesided = data.draw(st.integers(0, 1)) if not inverse else 0
    node = helper.make_node("DFT", ["x"], ["y"], axis=axis, inverse=inverse, onesided=onesided)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=shape).astype(np.float32)
    _assert_rewrite_is_exact(tmp_path, _model(node, shape, opset=19), x, "DFT")


@pytest.mark.slow
def test_a_model_of_the_operators_ezkl_lacks_is_proven_accurately(tmp_path: Path) -> None:
    """One proof for ten rewrites: Mod, GridSample with a constant grid, InstanceNormalization,
    LRN, Pow with an exponent per element, LpPool, LpNormalization, RMSNormalization, DFT and
    Det (ezkl's reader has none of Mod, GridSample and the last five), in one graph."""
    inits = {
        # x / 0.48 stays >= 0.05 from every whole number on this input: no Floor sits on
        # its discontinuity, where the fixed-point quotient would decide.
        "divisor": np.array(0.48, dtype=np.float32),
        "grid": np.random.default_rng(7).uniform(-1, 1, size=[1, 4, 4, 2]).astype(np.float32),
        "scale": np.array([1.5, -0.5], dtype=np.float32),
        "bias": np.array([0.25, 1.0], dtype=np.float32),
        "e": np.array([1, 2, 1, 2], dtype=np.float32),
        "s": np.array([0.5, 2.0], dtype=np.float32),
        "last": np.array([-1], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Mod", ["x", "divisor"], ["r"], fmod=1),
        helper.make_node("GridSample", ["r", "grid"], ["g"]),
        helper.make_node("InstanceNormalization", ["g", "scale", "bias"], ["i"]),
        helper.make_node("LRN", ["i"], ["n"], size=3, alpha=0.5),
        helper.make_node("Pow", ["n", "e"], ["a"]),
        helper.make_node("LpPool", ["a"], ["b"], kernel_shape=[2, 2], strides=[2, 2], p=2),
        helper.make_node("LpNormalization", ["b"], ["c"], axis=1, p=1),
        helper.make_node("RMSNormalization", ["c", "s"], ["d"], axis=-1),
        helper.make_node("Unsqueeze", ["d", "last"], ["u"]),
        helper.make_node("DFT", ["u"], ["f"], onesided=1),
        helper.make_node("Det", ["f"], ["y"]),  # of the trailing 2 x 2 (width, real/imaginary)
    ]
    model = _chain_model(nodes, inits, [1, 2, 4, 4], opset=23, ir_version=10)
    x = np.random.default_rng(6).normal(size=[1, 2, 4, 4]).astype(np.float32)
    result = _proven(tmp_path, model, x)
    assert result.verdict == "accurate", result


@PROPERTY
@given(data=st.data(), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3))
def test_reduce_prod_equals_pairwise_products_of_halves(
    tmp_path: Path, data: st.DataObject, shape: list[int]
) -> None:
    """ReduceProd (ezkl multiplies all factors before it rescales) as a Mul of the slices'
    halves, axis by axis, an odd slice carried; axes as attribute (13) or input (18), kept or
    dropped, none given (every axis) or, with ``noop_with_empty_axes``, the identity."""
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), max_size=rank, unique=True))
    assume(len({a % rank for a in axes}) == len(axes))
    keepdims = data.draw(st.integers(0, 1))
    opset = data.draw(st.sampled_from([13, 18]))
    noop = opset == 18 and not axes and data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = (rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1, 1], size=shape)).astype(np.float32)
    attrs: dict[str, Any] = {"keepdims": keepdims}
    inits = {}
    if opset == 18:
        attrs["noop_with_empty_axes"] = int(noop)
        if axes:
            inits["axes"] = np.array(axes, dtype=np.int64)
    elif axes:
        attrs["axes"] = axes
    node = helper.make_node("ReduceProd", ["x", *inits], ["y"], **attrs)
    model = _model(node, shape, inits=inits, opset=opset)
    _assert_rewrite_is_exact(tmp_path, model, x, None if noop else "ReduceProd", atol=1e-6)


@PROPERTY
@given(data=st.data(), shape=st.lists(st.integers(1, 6), min_size=1, max_size=3))
def test_softplus_equals_relu_plus_log_of_one_plus_a_bounded_exp(
    tmp_path: Path, data: st.DataObject, shape: list[int]
) -> None:
    """Softplus (ezkl's ``Log(1 + Exp(x))`` feeds e^x to the Log's lookup) as
    ``Relu(x) + Log(1 + Exp(-|x|))``, on inputs of either sign, some with e^x past float32
    (|x| > 88); Mish's function body (Softplus, Tanh, Mul) with it."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = (rng.normal(size=shape) * data.draw(st.sampled_from([1.0, 10.0, 40.0]))).astype(np.float32)
    mish = data.draw(st.booleans())
    node = helper.make_node("Mish" if mish else "Softplus", ["x"], ["y"])
    model = _model(node, shape, opset=18)
    notes = _assert_rewrite_is_exact(tmp_path, model, x, node.op_type, atol=1e-5)
    assert notes[-1].endswith("→ Relu(x) + Log(1 + Exp(-|x|)) (Exp bounded by 1)"), notes
