"""Medical diagnosis: a small scikit-learn MLP that puts a breast mass at low or high risk of
malignancy from ten cell-nucleus measurements of a fine-needle aspirate.

Trained on the Wisconsin diagnostic breast cancer data set that scikit-learn ships
(``load_breast_cancer``: 569 cases, nothing downloaded), on the ten "mean" features,
standardised with the training set's mean and deviation. Two outputs, one score per class:
0 = malignant (high risk), 1 = benign (low risk); the class is their argmax. Built with
hashed, requester-bound inputs, so a patient's features stay private and only the verified
class is public. Run ``python examples/medical/model.py OUT_DIR`` to write ``model.onnx``,
``calibration.json`` and two patients (``low_risk.json``, ``high_risk.json``) into
``OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The model's classes (its output indices).
HIGH_RISK, LOW_RISK = 0, 1


def write_model(folder: Path, *, seed: int = 5) -> dict[str, Path]:
    """Train the model and write the ONNX file, calibration data and two patients."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPRegressor

    data = load_breast_cancer()
    x = data.data[:, :10]  # the ten "mean ..." measurements
    xs = ((x - x.mean(axis=0)) / x.std(axis=0)).round(4)
    x = xs.astype(np.float32)
    y = np.stack([1.0 - data.target, data.target], axis=1)  # (malignant, benign) scores
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=seed).fit(x, y)
    predicted = model.predict(x).argmax(axis=1)
    low = next(i for i in range(len(x)) if data.target[i] == LOW_RISK == predicted[i])
    high = next(i for i in range(len(x)) if data.target[i] == HIGH_RISK == predicted[i])
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "model.onnx",
        "calibration": folder / "calibration.json",
        "low_risk": folder / "low_risk.json",
        "high_risk": folder / "high_risk.json",
    }
    paths["model"].write_bytes(to_onnx(model, x[:1], target_opset=13).SerializeToString())
    # Calibrated on a sample of cases and on both patients: ezkl's lookups must cover them.
    rows = [low, high, *np.random.default_rng(seed).choice(len(x), size=30, replace=False)]
    paths["calibration"].write_text(json.dumps({"input_data": [xs[rows].reshape(-1).tolist()]}))
    paths["low_risk"].write_text(json.dumps({"input_data": [xs[low].tolist()]}))
    paths["high_risk"].write_text(json.dumps({"input_data": [xs[high].tolist()]}))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "medical_model")
    for name, path in write_model(out).items():
        print(f"{name}: {path}")
