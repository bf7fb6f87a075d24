"""Building circuits (zkml_oracle.circuit): the manifest, visibility, SRS, fidelity, bad input."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import ezkl
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import snapshot, write_json
from zkml_oracle import field
from zkml_oracle._fs import sha256_file
from zkml_oracle.circuit import BuildOptions, build, srs
from zkml_oracle.circuit.model import Runner
from zkml_oracle.circuit.model import load as load_model
from zkml_oracle.exceptions import (
    FidelityError,
    InputError,
    SrsError,
    UnsupportedModelError,
)
from zkml_oracle.types import BuildResult, Manifest, Visibility


def test_manifest_records_everything_later_steps_need(
    built: BuildResult, example: dict[str, Path]
) -> None:
    d = json.loads((built.build_dir / "manifest.json").read_text())
    assert d["schema_version"] == 1
    assert d["model_sha256"] == sha256_file(example["model"])
    assert d["vk_sha256"] == sha256_file(built.build_dir / "vk.key")
    assert d["settings_sha256"] == sha256_file(built.build_dir / "settings.json")
    assert d["visibility"] == {"input": "public", "param": "fixed", "output": "public"}
    settings = json.loads((built.build_dir / "settings.json").read_text())
    assert d["logrows"] == settings["run_args"]["logrows"]
    # The cheaper layout (builder.decomposition): one column, the small range-check table.
    run_args = settings["run_args"]
    assert (run_args["num_inner_cols"], run_args["decomp_base"], run_args["decomp_legs"]) == (
        1,
        1_024,
        3,
    )
    assert [t["scale"] for t in d["inputs"]] == settings["model_input_scales"]
    assert [t["scale"] for t in d["outputs"]] == settings["model_output_scales"]
    assert d["inputs"][0]["shape"] == [1, 4] and d["outputs"][0]["shape"] == [1, 2]
    assert d["layout"] == {
        "inputs": {"offset": 0, "count": 4},
        "params": {"offset": 4, "count": 0},
        "outputs": {"offset": 4, "count": 2},
        "batch": 1,
        "total": 6,
    }
    assert d["srs"]["kind"] == "dev" and d["srs"]["logrows"] == d["logrows"]
    assert d["srs"]["sha256"] == sha256_file(Path(d["srs"]["path"]))
    assert {"ezkl", "onnx", "onnxruntime", "python", "zkml-oracle"} <= d["tools"].keys()
    assert d["tools"]["ezkl"] == "23.0.5"
    assert len(d["artifact_digest"]) == 64
    for name in ("compiled", "settings", "pk", "vk", "model", "calibration"):
        assert not Path(d["artifacts"][name]).is_absolute()
        assert (built.build_dir / d["artifacts"][name]).is_file()
    assert Path(d["artifacts"]["srs"]).is_absolute()
    assert d["fidelity"]["passed"] and d["fidelity"]["samples"] == 20  # every calibration row
    assert not list(built.build_dir.glob(".*")), "no temporary files left in the build"
    assert Manifest.load(built.build_dir) == built.manifest


def test_hashed_inputs_and_params_are_one_commitment_each(hashed_built: BuildResult) -> None:
    m = hashed_built.manifest
    assert m.visibility == Visibility("hashed", "hashed", "public")
    assert (m.layout.inputs.count, m.layout.params.count, m.layout.outputs.count) == (1, 1, 2)
    assert m.layout.outputs.offset == 2


def test_private_inputs_leave_only_outputs_public(example: dict[str, Path], tmp_path: Path) -> None:
    options = BuildOptions(
        visibility=Visibility("private", "fixed", "public"), dev_srs=True, solidity=False
    )  # the layout is the point, not a verifier
    m = build(example["model"], example["calibration"], tmp_path / "b", options).manifest
    assert (m.layout.inputs.count, m.layout.params.count, m.layout.outputs.count) == (0, 0, 2)


def test_dev_srs_is_generated_once_per_logrows(built: BuildResult) -> None:
    path = Path(built.manifest.srs.path)
    before = os.stat(path)
    again = srs.dev(built.manifest.logrows)
    assert again.path == str(path) and again.sha256 == built.manifest.srs.sha256
    assert os.stat(path).st_ino == before.st_ino and os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_supplied_srs_is_recorded_by_hash(
    example: dict[str, Path], built: BuildResult, tmp_path: Path
) -> None:
    srs_file = tmp_path / "ceremony.srs"
    srs_file.write_bytes(Path(built.manifest.srs.path).read_bytes())
    options = BuildOptions(srs_file=srs_file, solidity=False)  # the SRS record is the point
    result = build(example["model"], example["calibration"], tmp_path / "b", options)
    assert result.manifest.srs.kind == "file"
    assert result.manifest.srs.sha256 == sha256_file(srs_file)
    assert result.manifest.artifacts["srs"] == str(srs_file.resolve())


def test_the_range_table_is_small_only_where_it_would_set_the_rows() -> None:
    from zkml_oracle.circuit.builder import SMALL_TABLE, WIDE_TABLE, decomposition

    base, legs = SMALL_TABLE
    assert base**legs >= WIDE_TABLE[0] ** WIDE_TABLE[1]  # a range as wide
    assert decomposition(5_882) == SMALL_TABLE  # the credit MLP's batch of 8, one column
    assert decomposition(23_000) == WIDE_TABLE  # rows set 2^15 anyway: the fewer legs


def test_srs_too_small_is_refused(example: dict[str, Path], tmp_path: Path) -> None:
    small = tmp_path / "k10.srs"
    ezkl.gen_srs(str(small), 10)
    needs = r"2\^10 points but the circuit needs logrows 11.*k >= 11"
    with pytest.raises(SrsError, match=needs):
        build(
            example["model"], example["calibration"], tmp_path / "b", BuildOptions(srs_file=small)
        )
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["k10.srs"], "no staging folder left behind"


def test_an_srs_choice_is_required(example: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--srs FILE .* or --dev-srs"):
        build(example["model"], example["calibration"], tmp_path / "b", BuildOptions())


def test_circuit_outputs_match_onnxruntime(built: BuildResult, example: dict[str, Path]) -> None:
    assert built.manifest.fidelity.max_abs_error < 0.01
    assert built.manifest.fidelity.tolerance >= 0.01


def test_a_deviation_beyond_the_tolerance_fails_the_build(
    example: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(
        FidelityError, match=r"^unsupported: the circuit's outputs differ .* --tolerance"
    ):
        build(
            example["model"],
            example["calibration"],
            tmp_path / "b",
            BuildOptions(dev_srs=True, tolerance=1e-12),
        )
    assert not (tmp_path / "b").exists()


def test_corrupt_onnx_is_refused_without_leaving_a_build(
    example: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not really a protobuf" * 10)
    with pytest.raises(InputError, match="not a valid ONNX model.*re-export"):
        build(bad, example["calibration"], tmp_path / "b", BuildOptions(dev_srs=True))
    assert not (tmp_path / "b").exists()


def test_missing_files_are_named(example: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such model file"):
        build(
            tmp_path / "nope.onnx",
            example["calibration"],
            tmp_path / "b",
            BuildOptions(dev_srs=True),
        )
    with pytest.raises(InputError, match="no such file"):
        build(example["model"], tmp_path / "nope.json", tmp_path / "b", BuildOptions(dev_srs=True))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"input_data": [[0.1, 0.2, 0.3]]}, "3 values, not a multiple of its size 4"),
        ({"input_data": [[0.1, 0.2, 0.3, math.nan]]}, "not finite"),
        ({"input_data": [[0.1, 0.2, 0.3, "x"]]}, "not a number"),
        ({"data": []}, 'no "input_data"'),
        ({"input_data": [[1, 2, 3, 4], [1]]}, "2 input list"),
    ],
)
def test_bad_calibration_data_is_refused(
    example: dict[str, Path], tmp_path: Path, payload: object, message: str
) -> None:
    cal = write_json(tmp_path / "cal.json", payload)
    with pytest.raises(InputError, match=message):
        build(example["model"], cal, tmp_path / "b", BuildOptions(dev_srs=True))
    assert not (tmp_path / "b").exists()


def test_unsupported_operators_are_refused_up_front(tmp_path: Path) -> None:
    """An operator ezkl has no reader for (and ONNX no function body to rewrite it into) is
    refused before settings generation, naming the node and the way out."""
    graph = helper.make_graph(  # p = 3: the LpNormalization rewrite takes p 1 and 2 only
        [helper.make_node("LpNormalization", ["x"], ["y"], name="lpnorm", p=3)],
        "lpnorm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "lpnorm.onnx"))
    cal = write_json(tmp_path / "cal.json", {"input_data": [[0.5, 0.25, -0.5, 1.0]]})
    with pytest.raises(
        UnsupportedModelError,
        match="^unsupported: LpNormalization node 'lpnorm': ezkl 23 has no LpNormalization "
        "operator .*express it",
    ):
        build(tmp_path / "lpnorm.onnx", cal, tmp_path / "b", BuildOptions(dev_srs=True))
    assert not (tmp_path / "b").exists()


def test_a_calibration_failure_names_the_largest_value_and_the_way_out(tmp_path: Path) -> None:
    """ezkl's "could not find any suitable parameters" names no node: the refusal names where
    the calibration data's largest value sits (a product of twelve values near 10)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ReduceProd", ["r"], ["y"])],
        "prod",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "prod.onnx"))
    cal = write_json(tmp_path / "cal.json", {"input_data": [[9.0 + k / 10 for k in range(12)]]})
    with pytest.raises(
        UnsupportedModelError,
        match=r"^unsupported: ezkl found no fixed-point scale .* the largest value on it is at "
        r"ReduceProd node 'y' \(up to 5\.71e\+11\): .*normalising the inputs.*--max-logrows",
    ):
        build(tmp_path / "prod.onnx", cal, tmp_path / "b", BuildOptions(dev_srs=True))
    assert not (tmp_path / "b").exists()


def test_existing_build_is_kept_unless_forced(
    example: dict[str, Path], built: BuildResult, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="already exists.*--force"):
        build(example["model"], example["calibration"], out, BuildOptions(dev_srs=True))
    assert snapshot(out) == {"precious.txt": b"keep me"}


def test_a_failed_forced_rebuild_leaves_the_old_build_intact(
    example: dict[str, Path], built: BuildResult, tmp_path: Path
) -> None:
    import shutil

    out = tmp_path / "b"
    shutil.copytree(built.build_dir, out)
    before = snapshot(out)
    with pytest.raises(FidelityError):
        build(
            example["model"],
            example["calibration"],
            out,
            BuildOptions(dev_srs=True, tolerance=1e-12, force=True),
        )
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_a_model_equal_to_its_input_on_the_sample_reads_its_outputs_where_ezkl_puts_them(
    tmp_path: Path,
) -> None:
    """A Relu calibrated on positive data: the layout proof's outputs equal its inputs, so
    they fit the proof's instances both ways round ("2 placements fit", refused before). The
    build takes ezkl's order, inputs before outputs; a proof of negative inputs then reads
    them back as the inputs and their Relu (zeros) as the outputs."""
    from zkml_oracle.prover import prove, verify

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "relu.onnx"))
    cal = write_json(tmp_path / "cal.json", {"input_data": [[0.5, 1.0, 1.5, 2.0]]})
    built = build(tmp_path / "relu.onnx", cal, tmp_path / "b", BuildOptions(dev_srs=True))
    m = built.manifest
    x = [-0.5, 0.25, -1.0, 1.75]
    proof = prove(
        tmp_path / "b", write_json(tmp_path / "x.json", {"input_data": [x]}), tmp_path / "p.json"
    )
    assert verify(tmp_path / "b", proof.proof_path).valid
    # Read through the layout, as the oracle reads a fulfilment's instances.
    inputs = proof.instances[m.layout.inputs.offset : m.layout.inputs.end]
    outputs = proof.instances[m.layout.outputs.offset : m.layout.outputs.end]
    assert [field.decode(f, m.inputs[0].scale) for f in inputs] == x
    assert [field.decode(f, m.outputs[0].scale) for f in outputs] == [0.0, 0.25, 0.0, 1.75]


@pytest.mark.slow
def test_a_scikit_learn_model_builds_and_matches(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([0.5, -1.0, 0.25], dtype=np.float32) + 0.1
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=300, random_state=0).fit(x, y)
    onnx_model = to_onnx(reg, x[:1], target_opset=13)
    (tmp_path / "reg.onnx").write_bytes(onnx_model.SerializeToString())
    cal = write_json(tmp_path / "cal.json", {"input_data": [x[:10].reshape(-1).tolist()]})
    options = BuildOptions(dev_srs=True, solidity=False)  # fidelity is the point
    result = build(tmp_path / "reg.onnx", cal, tmp_path / "b", options)
    assert result.manifest.fidelity.passed
    runner = Runner(load_model(tmp_path / "reg.onnx"))
    ref = runner.run([x[0].tolist()])[0].reshape(-1)
    assert abs(float(ref[0]) - float(reg.predict(x[:1])[0])) < 1e-4
