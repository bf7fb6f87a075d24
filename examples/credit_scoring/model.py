"""Credit scoring: a small scikit-learn MLP regressor of a credit score in [0, 1].

Trained on applicants generated here (no data set is downloaded), exported with skl2onnx.
Run ``python examples/credit_scoring/model.py OUT_DIR`` to write ``model.onnx``,
``calibration.json`` and two applicants (``good.json``, ``bad.json``) into ``OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The applicant's features, standardised (mean 0, standard deviation 1).
FEATURES = ("income", "debt_ratio", "account_age", "late_payments")
#: Two applicants on either side of the pool's threshold of 0.5.
GOOD_APPLICANT = [1.2, -0.4, 0.8, -0.6]
BAD_APPLICANT = [-1.0, 1.3, -0.5, 1.4]


def write_model(folder: Path, *, seed: int = 11) -> dict[str, Path]:
    """Train the model and write the ONNX file, calibration data and two applicants."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURES))).astype(np.float32)
    logit = 1.4 * x[:, 0] - 1.1 * x[:, 1] + 0.6 * x[:, 2] - 1.3 * x[:, 3]
    y = 1.0 / (1.0 + np.exp(-logit))
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=seed).fit(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "model.onnx",
        "calibration": folder / "calibration.json",
        "good": folder / "good.json",
        "bad": folder / "bad.json",
    }
    paths["model"].write_bytes(to_onnx(model, x[:1], target_opset=13).SerializeToString())
    paths["calibration"].write_text(json.dumps({"input_data": [x[:24].reshape(-1).tolist()]}))
    paths["good"].write_text(json.dumps({"input_data": [GOOD_APPLICANT]}))
    paths["bad"].write_text(json.dumps({"input_data": [BAD_APPLICANT]}))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "credit_scoring_model")
    for name, path in write_model(out).items():
        print(f"{name}: {path}")
