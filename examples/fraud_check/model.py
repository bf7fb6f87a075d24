"""Fraud check: a small scikit-learn MLP regressor of a payment's fraud probability.

Trained on payments generated here (no data set is downloaded), exported with skl2onnx.
Run ``python examples/fraud_check/model.py OUT_DIR`` to write ``model.onnx``,
``calibration.json`` and two payments (``legit.json``, ``fraud.json``) into ``OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The payment's features, standardised (mean 0, standard deviation 1).
FEATURES = ("amount", "night_time", "payments_last_hour", "new_device")
#: An ordinary payment and a suspicious one, on either side of a 0.5 fraud probability.
LEGIT_PAYMENT = [-0.3, -0.8, -0.5, -1.0]
FRAUD_PAYMENT = [1.6, 1.2, 1.5, 1.1]


def write_model(folder: Path, *, seed: int = 5) -> dict[str, Path]:
    """Train the model and write the ONNX file, calibration data and two payments."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURES))).astype(np.float32)
    logit = 1.2 * x[:, 0] + 0.8 * x[:, 1] + 1.1 * x[:, 2] + 0.9 * x[:, 3] - 1.0
    y = 1.0 / (1.0 + np.exp(-logit))
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=seed).fit(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "model.onnx",
        "calibration": folder / "calibration.json",
        "legit": folder / "legit.json",
        "fraud": folder / "fraud.json",
    }
    paths["model"].write_bytes(to_onnx(model, x[:1], target_opset=13).SerializeToString())
    paths["calibration"].write_text(json.dumps({"input_data": [x[:24].reshape(-1).tolist()]}))
    paths["legit"].write_text(json.dumps({"input_data": [LEGIT_PAYMENT]}))
    paths["fraud"].write_text(json.dumps({"input_data": [FRAUD_PAYMENT]}))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fraud_check_model")
    for name, path in write_model(out).items():
        print(f"{name}: {path}")
