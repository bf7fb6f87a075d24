"""Smart judge: a small scikit-learn MLP that classifies a DAO proposal as reject (0) or
approve (1).

Two outputs, one score per class; the class is their argmax. Trained on proposals generated
here (no data set is downloaded), exported with skl2onnx.
Run ``python examples/smart_judge/model.py OUT_DIR`` to write ``model.onnx``,
``calibration.json`` and two proposals (``sound.json``, ``risky.json``) into ``OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: What describes a proposal, standardised (mean 0, standard deviation 1).
FEATURES = ("share_of_treasury", "proposer_reputation", "recipient_age", "audit_score")
SOUND_PROPOSAL = [-0.8, 1.0, 0.9, 1.1]
RISKY_PROPOSAL = [1.5, -1.1, -1.2, -0.9]


def write_model(folder: Path, *, seed: int = 17) -> dict[str, Path]:
    """Train the model and write the ONNX file, calibration data and two proposals."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURES))).astype(np.float32)
    logit = -1.4 * x[:, 0] + 1.0 * x[:, 1] + 0.6 * x[:, 2] + 1.2 * x[:, 3]
    p = 1.0 / (1.0 + np.exp(-logit))
    y = np.stack([1.0 - p, p], axis=1)  # (reject score, approve score)
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=seed).fit(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "model.onnx",
        "calibration": folder / "calibration.json",
        "sound": folder / "sound.json",
        "risky": folder / "risky.json",
    }
    paths["model"].write_bytes(to_onnx(model, x[:1], target_opset=13).SerializeToString())
    paths["calibration"].write_text(json.dumps({"input_data": [x[:24].reshape(-1).tolist()]}))
    paths["sound"].write_text(json.dumps({"input_data": [SOUND_PROPOSAL]}))
    paths["risky"].write_text(json.dumps({"input_data": [RISKY_PROPOSAL]}))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "smart_judge_model")
    for name, path in write_model(out).items():
        print(f"{name}: {path}")
