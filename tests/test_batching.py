"""Batched circuits (``build --batch N``): N slots per proof, real ezkl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BATCH, calibration_rows, prove_rows, run_cli, write_json
from zkml_oracle import field
from zkml_oracle.chain.oracle import ModelConfig, input_felts
from zkml_oracle.exceptions import InputError
from zkml_oracle.prover import verify
from zkml_oracle.types import BuildResult, Manifest, ProofResult


def test_manifest_records_the_batch_and_the_slot_layout(
    batch_built: BuildResult, built: BuildResult
) -> None:
    m = Manifest.load(batch_built.build_dir)
    assert m.batch == BATCH and m == batch_built.manifest
    # [in_0 .. in_3 | out_0 .. out_3]: 4 features and 2 scores per slot, no params.
    assert (m.layout.inputs.offset, m.layout.inputs.count) == (0, 4)
    assert (m.layout.outputs.offset, m.layout.outputs.count) == (4 * BATCH, 2)
    assert m.layout.total == 6 * BATCH
    assert [m.layout.input_slot(i).offset for i in range(BATCH)] == [0, 4, 8, 12]
    assert m.layout.output_slot(3).offset == 22
    with pytest.raises(IndexError):
        m.layout.output_slot(BATCH)
    # The manifest describes one slot's tensors, as the user's model has them.
    assert [(t.name, t.shape) for t in m.inputs] == [("features", (1, 4))]
    assert [(t.name, t.shape) for t in m.outputs] == [("scores", (1, 2))]
    settings = json.loads(m.artifact("settings", batch_built.build_dir).read_text())
    assert settings["run_args"]["disable_freivalds"] is True
    # Calibrated as one slot: the unbatched circuit's scales and lookup range.
    single = json.loads(built.manifest.artifact("settings", built.build_dir).read_text())
    pinned = ("input_scale", "param_scale", "scale_rebase_multiplier", "lookup_range")
    assert [settings["run_args"][k] for k in pinned] == [single["run_args"][k] for k in pinned]
    assert m.verifier is not None and not m.verifier.exceeds_eip170
    assert ModelConfig.from_manifest(m, "0x" + "11" * 20).batch_size == BATCH


def test_each_slot_proves_its_own_sample(
    batch_built: BuildResult, proof: ProofResult, example: dict[str, Path], tmp_path: Path
) -> None:
    rows = calibration_rows(example)[:BATCH]
    full = prove_rows(batch_built, rows, tmp_path / "full.json")
    assert verify(batch_built.build_dir, full.proof_path).valid
    assert len(full.samples) == BATCH and full.outputs == full.samples[0]
    # Slot 0 holds the example input: the same outputs as the unbatched circuit's proof.
    assert full.samples[0] == proof.outputs
    lay, scale = batch_built.manifest.layout, batch_built.manifest.inputs[0].scale
    for i, row in enumerate(rows):
        seg = lay.input_slot(i)
        assert full.instances[seg.offset : seg.end] == [field.encode(v, scale) for v in row]
    assert len({tuple(s[0]) for s in full.samples}) == BATCH  # four different results


def test_unused_slots_repeat_the_last_sample(
    batch_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    rows = calibration_rows(example)[:2]
    partial = prove_rows(batch_built, rows, tmp_path / "partial.json")
    assert verify(batch_built.build_dir, partial.proof_path).valid
    assert len(partial.samples) == 2  # padded slots are not reported as results
    lay = batch_built.manifest.layout
    inst = partial.instances

    def slot(i: int) -> tuple[list[int], list[int]]:
        a, b = lay.input_slot(i), lay.output_slot(i)
        return inst[a.offset : a.end], inst[b.offset : b.end]

    # A padded slot is a genuine inference of a real input: it can only ever match a request
    # for exactly that input, whose correct answer it then is.
    assert slot(2) == slot(3) == slot(1) != slot(0)


def test_more_samples_than_slots_are_refused_and_nothing_is_written(
    batch_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    rows = calibration_rows(example)[: BATCH + 1]
    with pytest.raises(InputError, match=f"{BATCH + 1} samples .* at most {BATCH} at once"):
        prove_rows(batch_built, rows, tmp_path / "too-many.json")
    assert not (tmp_path / "too-many.json").exists()


def test_hashed_slots_each_commit_to_their_own_input(
    batch_hashed_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    m = batch_hashed_built.manifest
    assert (m.layout.inputs.count, m.layout.outputs.offset) == (1, BATCH)
    rows = calibration_rows(example)[:3]
    result = prove_rows(batch_hashed_built, rows, tmp_path / "hashed.json")
    assert verify(batch_hashed_built.build_dir, result.proof_path).valid
    commitments = result.instances[:BATCH]
    # One Poseidon hash per slot, each the commitment a request for that row carries.
    assert commitments[:3] == [input_felts(m, [row])[0] for row in rows]
    assert len(set(commitments[:3])) == 3 and commitments[3] == commitments[2]


def test_cli_batches_a_model_with_a_symbolic_batch_dimension(tmp_path: Path) -> None:
    """An exporter's named batch dimension (torch's dynamic_axes) is fixed to 1 per slot."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[0.5], [-0.25], [1.0]], dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch_size", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch_size", 1])],
        [w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "linear.onnx"))
    rng = np.random.default_rng(1)
    write_json(tmp_path / "cal.json", {"input_data": [rng.normal(size=24).round(3).tolist()]})
    done = run_cli(
        "build", tmp_path / "linear.onnx", "-c", tmp_path / "cal.json", "--out", tmp_path / "b",
        "--dev-srs", "--batch", "3", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["freivalds"] is False
    assert report["manifest"]["layout"]["batch"] == 3
    assert report["manifest"]["layout"]["total"] == 3 * (3 + 1)
    write_json(tmp_path / "in.json", {"input_data": [[1.0, 2.0, 3.0, -1.0, 0.0, 0.5]]})
    proved = run_cli(
        "prove", tmp_path / "b", tmp_path / "in.json", "-o", tmp_path / "p.json", "--json"
    )
    assert proved.returncode == 0, proved.stderr
    samples = json.loads(proved.stdout)["samples"]
    assert [round(s[0][0], 2) for s in samples] == [3.0, 0.0]  # 0.5-0.5+3, -0.5+0+0.5


def test_cli_refuses_a_bad_batch_size_before_building(
    example: dict[str, Path], tmp_path: Path
) -> None:
    done = run_cli(
        "build", example["model"], "-c", example["calibration"], "--out", tmp_path / "b",
        "--dev-srs", "--batch", "0",
    )  # fmt: skip
    assert done.returncode != 0
    assert "--batch must be between 1 and" in done.stderr
    assert not (tmp_path / "b").exists()
