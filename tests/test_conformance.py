"""The conformance runner (zkml_oracle.circuit.conformance) on a small, fast part of the onnx suite.

The whole suite is benchmarks/conformance.py; here a few cases pin each verdict path: proven
accurately, refused by the preflight, refused by ezkl itself, refused by the fidelity check,
and killed past the time limit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from zkml_oracle.circuit import conformance, support
from zkml_oracle.circuit.conformance import Case, CaseResult

# Small circuits (logrows 15) that build, prove and verify in 5-10 s each on 2 cores.
ACCURATE = ("test_Conv1d", "test_Conv2d_depthwise", "test_LeakyReLU")


def case(name: str) -> Case:
    [found] = [c for c in conformance.discover() if c.name == name]
    return found


def test_discovers_the_82_pytorch_converted_cases() -> None:
    cases = conformance.discover()
    assert len(cases) == 82
    assert all(c.model.is_file() and c.inputs() and c.outputs() for c in cases[:3])
    names = [c.name for c in conformance.discover(only=["conv1d_PAD", "test_relu"])]
    assert names == [
        "test_Conv1d_pad1",
        "test_Conv1d_pad1size1",
        "test_Conv1d_pad2",
        "test_Conv1d_pad2size1",
        "test_ReLU",
    ]


def test_summary_counts_every_verdict() -> None:
    results = [
        CaseResult("a", 15, 2.0, 0.001, "accurate"),
        CaseResult("b", None, 4.0, None, "refused", "unsupported: x"),
        CaseResult("c", None, 9.0, None, "timeout", "unsupported: y"),
    ]
    s = conformance.summarize(results)
    assert s.counts == {"accurate": 1, "inaccurate": 0, "refused": 1, "timeout": 1, "error": 0}
    assert (s.total, s.median_seconds, s.median_seconds_accurate) == (3, 4.0, 2.0)
    assert json.loads(json.dumps(s.to_dict()))["counts"]["refused"] == 1


def _unimplemented_case(root: Path) -> Case:
    """A one-node model of an operator ezkl 23 has no translation for and no rewrite takes
    (LpNormalization with p = 3), with reference data."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = root / "test_lpnorm" / "test_data_set_0"
    folder.mkdir(parents=True)
    graph = helper.make_graph(
        [helper.make_node("LpNormalization", ["x"], ["y"], name="lpnorm", p=3)],
        "lpnorm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(root / "test_lpnorm" / "model.onnx"))
    x = np.eye(3, dtype=np.float32) * 2
    for name, value in (("input_0", x), ("output_0", np.eye(3, dtype=np.float32))):
        (folder / f"{name}.pb").write_bytes(numpy_helper.from_array(value).SerializeToString())
    [found] = conformance.discover(root)
    return found


def test_preflight_refuses_an_unimplemented_operator_at_once(tmp_path: Path) -> None:
    result = conformance.run_case(_unimplemented_case(tmp_path / "suite"), tmp_path, timeout=60)
    assert result.verdict == "refused", result
    assert result.reason == (
        "unsupported: LpNormalization node 'lpnorm': ezkl 23 has no LpNormalization operator "
        "(and ONNX gives no function body to rewrite it into); express it with operators ezkl "
        "proves"
    )
    assert result.seconds < 30


def test_ezkl_own_refusal_is_a_clean_line_naming_node_and_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the preflight, ezkl refuses the same model at settings generation."""
    monkeypatch.setattr(support, "check", lambda path: [])
    result = conformance.evaluate(_unimplemented_case(tmp_path / "suite"), tmp_path)
    assert result.verdict == "refused", result
    assert result.reason == (
        "unsupported: ezkl cannot generate settings for this model: LpNormalization node "
        "'lpnorm': ezkl 23 has no LpNormalization operator; express it with operators ezkl "
        "proves"
    )


def test_node_tests_are_written_out_float_only_with_their_operator(tmp_path: Path) -> None:
    cases = conformance.discover(conformance.node_suite_dir(tmp_path / "node"))
    assert len(cases) > 500
    names = {c.name: c for c in cases}
    assert conformance.operator(names["test_relu"]) == "Relu"
    assert conformance.operator(names["test_softmax_axis_0_expanded"]) == "Softmax (expanded)"
    assert "test_cast_FLOAT_to_DOUBLE" not in names  # a double output: no circuit encoding
    assert names["test_relu"].inputs()[0].dtype.name == "float32"
    # The exponent the node test feeds becomes a constant holding its reference value.
    pow_case = names["test_pow_example"]
    frozen = conformance.with_constant_parameters(pow_case, tmp_path / "frozen")
    assert frozen is not None and frozen.name == "test_pow_example_constant_parameters"
    graph = onnx.load(str(frozen.model)).graph
    assert [i.name for i in graph.input] == ["x"]
    assert [t.name for t in graph.initializer] == ["y"]
    assert len(frozen.inputs()) == 1 and (frozen.outputs()[0] == pow_case.outputs()[0]).all()
    assert conformance.with_constant_parameters(names["test_relu"], tmp_path / "frozen") is None


def test_a_node_test_and_its_expanded_twin_build_one_circuit(tmp_path: Path) -> None:
    """Attention is rewritten into its function body, so its node test and the test of that
    body (``_expanded``) differ in names only: one circuit key, one run decides both
    (``benchmarks/conformance.py --share-circuits``). A different scale attribute, or
    different reference data, is a different circuit."""
    names = {c.name: c for c in conformance.discover(only=["attention_3d"], suite="node")}
    key = {
        n: conformance.circuit_key(names[n], tmp_path)
        for n in ["test_attention_3d", "test_attention_3d_scaled"]
        for n in [n, f"{n}_expanded"]
    }
    assert key["test_attention_3d"] is not None
    assert key["test_attention_3d"] == key["test_attention_3d_expanded"]
    assert key["test_attention_3d_scaled"] == key["test_attention_3d_scaled_expanded"]
    assert key["test_attention_3d"] != key["test_attention_3d_scaled"]
    other_data = Case("copy", tmp_path / "copy")
    shutil.copytree(names["test_attention_3d"].directory, other_data.directory)
    q_file = other_data.directory / "test_data_set_0" / "input_0.pb"
    q = numpy_helper.to_array(onnx.load_tensor(str(q_file)))
    onnx.save_tensor(numpy_helper.from_array(q + 1), str(q_file))
    assert conformance.circuit_key(other_data, tmp_path) != key["test_attention_3d"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no rewritten model left


@pytest.mark.slow
@pytest.mark.parametrize("name", ACCURATE)
def test_proves_accurately(name: str, tmp_path: Path) -> None:
    result = conformance.run_case(case(name), tmp_path, timeout=120)
    assert result.verdict == "accurate", result
    assert result.reason is None
    assert result.logrows is not None and result.logrows <= 20
    assert result.max_abs_error is not None and result.max_abs_error <= 0.05
    assert not (tmp_path / name / "build").exists(), "keys are removed unless kept"


@pytest.mark.slow
def test_fidelity_check_refuses_what_ezkl_would_prove_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raw ezkl proves this padded MaxPool off by ~2.0 (it pads with 0, not -inf). The rewrite
    proves it exactly (tests/test_rewrite.py); without the rewrite and the preflight, the
    build's fidelity check must still refuse it."""
    import shutil

    from zkml_oracle.circuit import builder as circuit

    monkeypatch.setattr(circuit, "rewrite", lambda src, dst: shutil.copy(src, dst) and [])
    monkeypatch.setattr(support, "check", lambda path: [])
    result = conformance.evaluate(case("test_MaxPool3d_stride_padding"), tmp_path)
    assert result.verdict == "refused", result
    assert result.reason is not None
    assert result.reason.startswith("unsupported: the circuit's outputs differ from onnxruntime")


@pytest.mark.slow
def test_a_case_past_its_time_limit_is_killed_and_reported(tmp_path: Path) -> None:
    result = conformance.run_case(case("test_Conv1d"), tmp_path, timeout=1.5)
    assert result.verdict == "timeout", result
    assert result.reason == "unsupported: building and proving this model ran past 1.5 s (killed)"
    assert result.seconds < 30
    assert not list((tmp_path / "test_Conv1d").glob(".build.*")), "staging is cleaned up"


#: Node tests that need a rewrite: a BatchNormalization whose statistics are inputs, a
#: ConvTranspose whose kernel is an input (both rewritten in-graph), a dilated MaxPool, and
#: CausalConvWithState (ezkl lacks it: proven as its ONNX function body).
NODE_SUBSET = (
    "test_batchnorm_example",
    "test_causal_conv_with_state_b1_c1_degenerate",
    "test_convtranspose",
    "test_maxpool_2d_dilations",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", NODE_SUBSET)
def test_node_tests_that_need_a_rewrite_are_proven_accurately(name: str, tmp_path: Path) -> None:
    [found] = [c for c in conformance.discover(suite="node") if c.name == name]
    result = conformance.run_case(found, tmp_path, timeout=300)
    assert result.verdict == "accurate", result


def test_ezkl_translation_failures_are_explained_naming_node_and_operator() -> None:
    raw = 'Failed to generate settings: [graph] [tract] Failed analyse for node #2 "Y" Resize'
    assert support.explain(raw).startswith("node 'Y' (Resize): ezkl 23 cannot read this use")
    assert support.explain("something else") == "something else"
