"""`zkml-oracle prove` as a whole process against a bare Python process calling ezkl directly.

Goal (issue 3): ratio <= 1.15. Both run the same circuit and input, alternately, several
times in this one process's session; the medians are compared. Usage:

    .venv/bin/python benchmarks/prove_overhead.py [--rounds 7] [--build DIR --input FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scratch import scratch

GOAL = 1.15

BARE = """
import sys, ezkl
data, compiled, pk, srs, witness, proof = sys.argv[1:]
ezkl.gen_witness(data, compiled, witness)
ezkl.prove(witness, compiled, pk, proof, srs_path=srs)
"""


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--build", type=Path, help="an existing build directory")
    parser.add_argument("--input", type=Path, help="input file for --build")
    args = parser.parse_args()

    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.types import Manifest

    work = scratch("zkml-bench-")
    if args.build:
        build_dir, input_file = args.build, args.input
    else:
        files = write_credit_mlp(work / "model")
        build_dir = build(
            files["model"], files["calibration"], work / "build", BuildOptions(dev_srs=True)
        ).build_dir
        input_file = files["input"]
    m = Manifest.load(build_dir)
    exe = str(Path(sys.executable).parent / "zkml-oracle")
    ours = [
        exe,
        "prove",
        str(build_dir),
        str(input_file),
        "--out",
        str(work / "ours.json"),
        "--json",
    ]
    bare = [
        sys.executable,
        "-c",
        BARE,
        str(input_file),
        str(m.artifact("compiled", build_dir)),
        str(m.artifact("pk", build_dir)),
        m.srs.path,
        str(work / "w.json"),
        str(work / "bare.json"),
    ]
    _timed(bare), _timed(ours)  # warm the page cache for both
    t_bare, t_ours = [], []
    for _ in range(args.rounds):
        t_bare.append(_timed(bare))
        t_ours.append(_timed(ours))
    med_bare, med_ours = statistics.median(t_bare), statistics.median(t_ours)
    ratio = med_ours / med_bare
    result = {
        "model": "credit MLP 4-8-2" if not args.build else str(build_dir),
        "logrows": m.logrows,
        "rounds": args.rounds,
        "bare_median_s": round(med_bare, 3),
        "zkml_oracle_median_s": round(med_ours, 3),
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "met": ratio <= GOAL,
    }
    print(f"{'process':<34}{'median s':>10}")
    print(f"{'python: ezkl.gen_witness + prove':<34}{med_bare:>10.3f}")
    print(f"{'zkml-oracle prove':<34}{med_ours:>10.3f}")
    print(f"ratio {ratio:.3f} (goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
    print(json.dumps(result))
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
