"""Proving time of a batched circuit against the same model's single-inference circuit.

Goal (issue 8): proving N = 32 inferences in one proof costs at most 1.5x proving one
(`build --batch 32` against `build`, same model, same process, interleaved runs, medians).
The model is the bundled credit MLP (4 → 8 → ReLU → 2), public inputs and outputs. Usage:

    .venv/bin/python benchmarks/batch_prove.py [--runs 5] [--batch 32] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from scratch import scratch

GOAL = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.prover import prove

    work = scratch("zkml-oracle-batch-prove-")
    files = write_credit_mlp(work / "model", samples=max(args.batch, 20))
    rows = json.loads(files["calibration"].read_text())["input_data"][0]
    builds, inputs, seconds = {}, {}, {}
    for n in (1, args.batch):
        start = time.perf_counter()
        builds[n] = build(
            files["model"],
            files["calibration"],
            work / f"b{n}",
            BuildOptions(dev_srs=True, batch=n),
        )
        print(f"built batch {n} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        inputs[n] = work / f"in{n}.json"
        inputs[n].write_text(json.dumps({"input_data": [rows[: 4 * n]]}))
        seconds[n] = []
    for run in range(args.runs):  # interleaved, so drift hits both alike
        for n in builds:
            start = time.perf_counter()
            prove(builds[n].build_dir, inputs[n], work / f"p{n}-{run}.json")
            seconds[n].append(time.perf_counter() - start)
    median = {n: statistics.median(s) for n, s in seconds.items()}
    ratio = median[args.batch] / median[1]
    result = {
        "model": "credit-mlp-4-8-2",
        "runs": args.runs,
        "batch": args.batch,
        "logrows": {str(n): b.manifest.logrows for n, b in builds.items()},
        "median_seconds": {str(n): round(s, 3) for n, s in median.items()},
        "ratio": round(ratio, 3),
        "per_inference_ratio": round(ratio / args.batch, 4),
        "goal": GOAL,
        "met": ratio <= GOAL,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"prove 1 inference: median {median[1]:.2f} s (logrows {builds[1].manifest.logrows})\n"
            f"prove {args.batch} inferences: median {median[args.batch]:.2f} s (logrows "
            f"{builds[args.batch].manifest.logrows})\n"
            f"ratio {ratio:.3f} (goal <= {GOAL}); per inference {ratio / args.batch:.4f}x"
        )
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
