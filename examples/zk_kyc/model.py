"""zk-KYC: a small scikit-learn MLP that classifies an identity check as fail (0) or pass (1).

Two outputs, one score per class; the class is their argmax. Trained on checks generated here
(no data set is downloaded), exported with skl2onnx. Built with *hashed* inputs, so only a
Poseidon commitment of the applicant's features is ever public.
Run ``python examples/zk_kyc/model.py OUT_DIR`` to write ``model.onnx``, ``calibration.json``
and two applicants (``pass.json``, ``fail.json``) into ``OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The identity check's signals, standardised (mean 0, standard deviation 1).
FEATURES = ("document_authenticity", "liveness", "sanctions_similarity", "address_match")
PASSING_APPLICANT = [1.1, 0.9, -1.2, 0.8]
FAILING_APPLICANT = [-1.3, -0.7, 1.5, -0.9]


def write_model(folder: Path, *, seed: int = 3) -> dict[str, Path]:
    """Train the model and write the ONNX file, calibration data and two applicants."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURES))).astype(np.float32)
    logit = 1.3 * x[:, 0] + 1.0 * x[:, 1] - 1.5 * x[:, 2] + 0.7 * x[:, 3]
    p = 1.0 / (1.0 + np.exp(-logit))
    y = np.stack([1.0 - p, p], axis=1)  # (fail score, pass score)
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=seed).fit(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "model.onnx",
        "calibration": folder / "calibration.json",
        "pass": folder / "pass.json",
        "fail": folder / "fail.json",
    }
    paths["model"].write_bytes(to_onnx(model, x[:1], target_opset=13).SerializeToString())
    paths["calibration"].write_text(json.dumps({"input_data": [x[:24].reshape(-1).tolist()]}))
    paths["pass"].write_text(json.dumps({"input_data": [PASSING_APPLICANT]}))
    paths["fail"].write_text(json.dumps({"input_data": [FAILING_APPLICANT]}))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "zk_kyc_model")
    for name, path in write_model(out).items():
        print(f"{name}: {path}")
