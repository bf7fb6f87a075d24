"""Smart judge: a small scikit-learn MLP that scores a DAO proposal: a reject score (output 0)
and an approve score (output 1).

Its four features are what ``contracts/examples/TreasuryProposalInput.sol`` derives from a
proposal's actions (the share of the treasury they send, and the recipient's recorded
reputation, account age and audit score; standardised, within [-2, 2]), never what a
proposer says. Trained on proposals generated here (no data set is downloaded), exported
with skl2onnx. Run ``python examples/smart_judge/model.py OUT_DIR`` to write ``model.onnx``,
``calibration.json`` and two proposals (``sound.json``, ``risky.json``) into ``OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: What describes a proposal, standardised (mean 0, standard deviation 1).
FEATURES = ("share_of_treasury", "recipient_reputation", "recipient_age", "audit_score")
SOUND_PROPOSAL = [-0.8, 1.0, 0.9, 1.1]  # 5 % of the treasury to a known, audited recipient
RISKY_PROPOSAL = [1.5, -1.1, -1.2, -0.9]
#: The extremes TreasuryProposalInput can derive (each feature is clamped to [-2, 2]): in the
#: calibration, so that no derived input leaves the circuit's lookup range.
EXTREMES = [[2.0, 2.0, 2.0, 2.0], [-2.0, -2.0, -2.0, -2.0], [2.0, -2.0, 2.0, -2.0]]


def write_model(folder: Path, *, seed: int = 17) -> dict[str, Path]:
    """Train the model and write the ONNX file, calibration data and two proposals."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURES))).astype(np.float32)
    # The share of the treasury weighs most: a whole treasury to a sound recipient is refused.
    logit = -3.0 * x[:, 0] + 1.0 * x[:, 1] + 0.6 * x[:, 2] + 1.2 * x[:, 3]
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
    calibration = [*x[:24].tolist(), SOUND_PROPOSAL, RISKY_PROPOSAL, *EXTREMES]
    flat = [float(v) for row in calibration for v in row]
    paths["calibration"].write_text(json.dumps({"input_data": [flat]}))
    paths["sound"].write_text(json.dumps({"input_data": [SOUND_PROPOSAL]}))
    paths["risky"].write_text(json.dumps({"input_data": [RISKY_PROPOSAL]}))
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "smart_judge_model")
    for name, path in write_model(out).items():
        print(f"{name}: {path}")
