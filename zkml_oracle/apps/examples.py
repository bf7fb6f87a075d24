"""A small bundled example: a credit-scoring MLP (4 features → 8 → ReLU → 2 scores).

Written with onnx.helper and fixed weights, so the demo and tests need no training
framework and always get the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

FEATURES = ("income", "debt_ratio", "account_age", "late_payments")


def write_credit_mlp(folder: Path, *, samples: int = 20, seed: int = 7) -> dict[str, Path]:
    """Write ``model.onnx``, ``calibration.json`` (``samples`` rows) and ``input.json``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.normal(size=(4, 8)) * 0.5).astype(np.float32)
    b1 = (rng.normal(size=8) * 0.1).astype(np.float32)
    w2 = (rng.normal(size=(8, 2)) * 0.5).astype(np.float32)
    b2 = (rng.normal(size=2) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["features", "w1", "b1"], ["hidden"]),
            helper.make_node("Relu", ["hidden"], ["activated"]),
            helper.make_node("Gemm", ["activated", "w2", "b2"], ["scores"]),
        ],
        "credit_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
        [
            numpy_helper.from_array(a, n)
            for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "model.onnx",
        "calibration": folder / "calibration.json",
        "input": folder / "input.json",
    }
    onnx.save(proto, str(paths["model"]))
    rows = rng.normal(size=(samples, 4)).round(4)
    paths["calibration"].write_text(json.dumps({"input_data": [rows.reshape(-1).tolist()]}))
    paths["input"].write_text(json.dumps({"input_data": [rows[0].tolist()]}))
    return paths
