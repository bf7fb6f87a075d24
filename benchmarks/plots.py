"""Plots of the benchmark figures, written as PNGs to ``benchmarks/plots/`` (matplotlib, Agg).

- ``gas_per_request.png``: gas per fulfilled request against batch size, public and hashed
  inputs, with the single ``fulfill`` and a Groth16 verification (≈ 207 k + 7 k per public
  input) as reference lines;
- ``proving_time.png``: proving time against batch size and against logrows;
- ``relayer_latency.png``: the relayer's request → fulfilment latency distribution, from a
  ``benchmarks/relayer.py --json`` result (``--relayer-json``);
- ``lifecycle_gas.png``: request gas, fulfilment share and whole life per inference against
  N, per model, from a ``benchmarks/lifecycle_gas.py --out`` result (``--lifecycle-jsonl``).

The gas and proving figures are those measured by ``batch_gas.py``, ``oracle_gas.py``,
``batch_prove.py`` and the batched-proof study (``benchmarks/README.md``); they are written
here, next to the command that measured them, rather than re-measured on each plot. Usage:

    .venv/bin/python benchmarks/plots.py [--relayer-json benchmarks/results/relayer.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# batch_gas.py (credit MLP 4→8→2): gas per fulfilled request, fulfillBatch of N; at the
# toolkit's default layout (logrows 11 / 13 / 15), and before it (ezkl's, logrows 15).
GAS_PUBLIC = {1: 461_925, 8: 67_710, 32: 26_979}
GAS_HASHED = {1: 572_283, 8: 80_535, 32: 27_572}
GAS_PUBLIC_EZKL_LAYOUT = {1: 599_460, 8: 91_404, 32: 38_446}
FULFILL_SINGLE = 461_925  # batch_gas.py: one `fulfill`, default layout
GROTH16_BASE, GROTH16_PER_INPUT = 207_000, 7_000
PUBLIC_PER_REQUEST = 6  # 4 inputs + 2 outputs

# Proving seconds (this machine, 2 cores): (batch N, logrows, seconds, source).
PROVING = [
    (1, 15, 3.55, "batched study, ezkl's layout, public"),
    (8, 15, 4.35, "batched study, ezkl's layout, public"),
    (32, 15, 3.90, "batched study, ezkl's layout, public"),
    (128, 17, 14.95, "batched study, ezkl's layout, public"),
    (1, 15, 2.39, "batch_prove.py, ezkl's layout"),
    (32, 15, 2.88, "batch_prove.py, ezkl's layout"),
    (1, 11, 0.43, "batch_prove.py, default layout"),
    (32, 15, 3.11, "batch_prove.py, default layout"),
    (1, 11, 1.82, "lifecycle_gas.py, hashed, default layout"),
    (128, 17, 25.23, "lifecycle_gas.py, hashed, default layout"),
]


def gas_plot(plt: Any, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(*zip(*GAS_PUBLIC.items(), strict=True), "o-", label="fulfillBatch, public inputs")
    ax.plot(*zip(*GAS_HASHED.items(), strict=True), "s-", label="fulfillBatch, hashed inputs")
    ax.plot(
        *zip(*GAS_PUBLIC_EZKL_LAYOUT.items(), strict=True),
        "^:",
        label="fulfillBatch, public, ezkl's layout",
    )
    ax.axhline(FULFILL_SINGLE, color="grey", ls="--", label="one fulfill (N = 1)")
    g16 = GROTH16_BASE + GROTH16_PER_INPUT * PUBLIC_PER_REQUEST
    ax.axhline(g16, color="tab:red", ls="--", label=f"Groth16, one request ({g16 // 1000} k)")
    ns = [1, 2, 4, 8, 16, 32, 64, 128]
    ax.plot(
        ns,
        [(GROTH16_BASE + GROTH16_PER_INPUT * PUBLIC_PER_REQUEST * n) / n for n in ns],
        color="tab:red",
        ls=":",
        label="Groth16, batch of N (207 k + 7 k × 6N) / N",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("requests per proof (N)")
    ax.set_ylabel("gas per request")
    ax.set_title("Gas per fulfilled request (credit MLP, Anvil 1.7.1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "gas_per_request.png", dpi=110)
    plt.close(fig)


def proving_plot(plt: Any, out: Path) -> None:
    fig, (by_n, by_rows) = plt.subplots(1, 2, figsize=(10, 4.2))
    sources = sorted({s for *_, s in PROVING})
    for source in sources:
        points = [(n, rows, sec) for n, rows, sec, s in PROVING if s == source]
        by_n.plot([p[0] for p in points], [p[2] for p in points], "o-", label=source)
        by_rows.scatter([p[1] for p in points], [p[2] for p in points], label=source)
    by_n.set_xscale("log", base=2)
    by_n.set_xlabel("requests per proof (N)")
    by_n.set_ylabel("proving seconds (2 cores)")
    by_n.set_title("Proving time against batch size")
    by_rows.set_xlabel("logrows")
    by_rows.set_title("… follows logrows, not N")
    by_rows.set_xticks(sorted({rows for _, rows, *_ in PROVING}))
    for ax in (by_n, by_rows):
        ax.grid(True, alpha=0.3)
    by_n.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "proving_time.png", dpi=110)
    plt.close(fig)


def latency_plot(plt: Any, out: Path, result: dict[str, Any]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = []
    single = result.get("latency_seconds", {}).get("samples") or []
    if single:
        series.append(("one at a time, --batch-size 1", single))
    for run in result.get("batched", {}).get("runs", []):
        series.append(
            (
                f"--batch-size {result['batched']['batch']} --max-wait {run['max_wait']:g}",
                run["latency_seconds"]["samples"],
            )
        )
    for label, samples in series:
        ordered = sorted(samples)
        ax.step(
            ordered,
            [(i + 1) / len(ordered) for i in range(len(ordered))],
            where="post",
            label=label,
        )
    prove = (result.get("prove_seconds") or {}).get("median")
    if prove:
        ax.axvline(prove, color="grey", ls="--", label=f"bare proof ({prove:.2f} s)")
    ax.set_xlabel("request mined → fulfilment mined (s)")
    ax.set_ylabel("fraction of requests")
    title = "Relayer latency (credit MLP, local Anvil, 2 cores)"
    if result.get("note"):
        title += "\n" + "\n".join(textwrap.wrap(str(result["note"]), 80))
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "relayer_latency.png", dpi=110)
    plt.close(fig)


def lifecycle_plot(plt: Any, out: Path, rows: list[dict[str, Any]]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in sorted({r["model"] for r in rows}):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["batch"])
        ns = [r["batch"] for r in mine]
        ax.plot(ns, [r["whole_life"] for r in mine], "o-", label=f"{model}: whole life")
        ax.plot(ns, [r["share_per_request"] for r in mine], "s:", label=f"{model}: fulfil share")
    request = max(r["request_gas"] for r in rows)
    ax.axhline(request, color="grey", ls="--", label=f"request (max {request:,})")
    ax.axhline(80_000, color="tab:red", ls=":", label="goal: whole life 80 k at N = 32")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("requests per proof (N)")
    ax.set_ylabel("gas per inference")
    ax.set_title("Gas per verified inference, whole life (Anvil)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "lifecycle_gas.png", dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "plots")
    parser.add_argument("--relayer-json", type=Path, default=HERE / "results" / "relayer.json")
    parser.add_argument(
        "--lifecycle-jsonl", type=Path, default=HERE / "results" / "lifecycle.jsonl"
    )
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    gas_plot(plt, args.out)
    proving_plot(plt, args.out)
    written = ["gas_per_request.png", "proving_time.png"]
    if args.relayer_json.is_file():
        latency_plot(plt, args.out, json.loads(args.relayer_json.read_text()))
        written.append("relayer_latency.png")
    else:
        print(f"no {args.relayer_json}: run benchmarks/relayer.py --json > it for the latency plot")
    if args.lifecycle_jsonl.is_file():
        lines = args.lifecycle_jsonl.read_text().splitlines()
        lifecycle_plot(plt, args.out, [json.loads(line) for line in lines if line.strip()])
        written.append("lifecycle_gas.png")
    else:
        print(f"no {args.lifecycle_jsonl}: run benchmarks/lifecycle_gas.py --out it for its plot")
    print(f"wrote {', '.join(written)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
