"""Graph rewrites (zkml_oracle.rewrite): equivalent under onnxruntime, and proven by ezkl."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from zkml_oracle import conformance
from zkml_oracle.rewrite import rewrite


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


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]


@pytest.mark.parametrize("fill", [2.5, -1.0])
def test_a_non_zero_pad_becomes_zero_padding_with_the_same_result(
    tmp_path: Path, fill: float
) -> None:
    _pad_model(tmp_path / "m.onnx", fill)
    notes = rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx")
    assert len(notes) == 1 and f"with {fill:g}" in notes[0]
    rewritten = onnx.load(str(tmp_path / "r.onnx"))
    onnx.checker.check_model(rewritten)
    assert [n.op_type for n in rewritten.graph.node] == ["Sub", "Pad", "Add"]
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 3)).astype(np.float32)
    expected = _run(tmp_path / "m.onnx", x)
    assert (expected == fill).sum() > 0
    np.testing.assert_allclose(_run(tmp_path / "r.onnx", x), expected, atol=1e-6)


def test_zero_padding_is_left_alone(tmp_path: Path) -> None:
    _pad_model(tmp_path / "m.onnx", 0.0)
    assert rewrite(tmp_path / "m.onnx", tmp_path / "r.onnx") == []
    assert [n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node] == ["Pad"]


@pytest.mark.slow
def test_constant_pad_2d_is_proven_accurately(tmp_path: Path) -> None:
    """Raw ezkl refuses this conformance case ("pad mode or pad type"); rewritten, it proves."""
    [case] = conformance.discover(only=["test_ConstantPad2d"])
    result = conformance.run_case(case, tmp_path, timeout=300)
    assert result.verdict == "accurate", result
