"""Export the recurrent fixtures (tests/fixtures/{lstm,gru}.onnx) from PyTorch.

    pip install torch==2.13.0 && .venv/bin/python scripts/export_recurrent.py

A one-layer LSTM and GRU (batch_first, 4 features, 8 hidden units, sequence length 6) with a
linear head on the last step, as an ML engineer would export a small sequence model: fixed
sequence length, zero initial state. The tests use the committed .onnx files, so they do
not need torch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

SEQUENCE, FEATURES, HIDDEN = 6, 4, 8
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU]) -> None:
        super().__init__()
        self.rnn = cell(FEATURES, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cell in (("lstm", nn.LSTM), ("gru", nn.GRU)):
        torch.manual_seed(0)
        model = Recurrent(cell).eval()
        x = torch.randn(1, SEQUENCE, FEATURES)
        torch.onnx.export(
            model,
            (x,),
            str(OUT / f"{name}.onnx"),
            input_names=["x"],
            output_names=["y"],
            opset_version=13,
            dynamo=False,
        )
        print(f"wrote {OUT / f'{name}.onnx'}")


if __name__ == "__main__":
    main()
