"""Run the onnx package's PyTorch-converted models through build → prove → verify.

    .venv/bin/python benchmarks/conformance.py                  # all 82, table + totals
    .venv/bin/python benchmarks/conformance.py --only Conv2d --only ReLU --timeout 60
    .venv/bin/python benchmarks/conformance.py --json --out /tmp/conformance

Cases run one at a time, each in its own process with a time limit. Exit status: 0 when no
case is silently inaccurate and none hit a bug (``error``); 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from zkml_oracle.conformance import (
    DEFAULT_TIMEOUT,
    CaseResult,
    Summary,
    discover,
    run_suite,
    summarize,
)

NAME_WIDTH = 40
REASON_WIDTH = 160


def _row(r: CaseResult) -> str:
    logrows = "-" if r.logrows is None else str(r.logrows)
    error = "-" if r.max_abs_error is None else f"{r.max_abs_error:.3g}"
    outcome = r.verdict if r.reason is None else f"{r.verdict}: {r.reason}"
    if len(outcome) > REASON_WIDTH:
        outcome = outcome[: REASON_WIDTH - 1] + "…"
    return f"{r.model:<{NAME_WIDTH}} {logrows:>7} {r.seconds:>8.1f} {error:>10}  {outcome}"


def _totals(s: Summary) -> str:
    c = s.counts
    accurate = s.median_seconds_accurate
    accurate_median = "-" if accurate is None else f"{accurate:.1f}"
    return "\n".join(
        [
            f"cases       {s.total}",
            f"accurate    {c['accurate']}",
            f"inaccurate  {c['inaccurate']}",
            f"refused     {c['refused']}",
            f"timed out   {c['timeout']}",
            f"error       {c['error']}",
            f"median s    {s.median_seconds:.1f} (all), {accurate_median} (accurate)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only cases whose name contains NAME (case-insensitive; repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per case before it is killed (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each case's work dir (input, build, proof) under DIR (default: a temp dir)",
    )
    args = parser.parse_args(argv)

    cases = discover(only=args.only)
    if not cases:
        parser.error(f"no case matches {args.only}")

    results: list[CaseResult] = []

    def record(r: CaseResult) -> None:
        results.append(r)
        if not args.json:
            print(_row(r), flush=True)

    if not args.json:
        print(f"{len(cases)} cases, {args.timeout:g} s each at most", flush=True)
        print(f"{'model':<{NAME_WIDTH}} {'logrows':>7} {'seconds':>8} {'max error':>10}  verdict")
    interrupted = False
    try:
        if args.out is not None:
            run_suite(cases, args.out, timeout=args.timeout, keep_artifacts=True, on_result=record)
        else:
            with tempfile.TemporaryDirectory(prefix="zkml-conformance-") as tmp:
                run_suite(cases, Path(tmp), timeout=args.timeout, on_result=record)
    except KeyboardInterrupt:  # the running case's process is already killed: show what ran
        interrupted = True
        print(f"interrupted after {len(results)} of {len(cases)} cases", file=sys.stderr)
    summary = summarize(results)
    if args.json:
        doc = {
            "timeout": args.timeout,
            "results": [r.to_dict() for r in results],
            "summary": summary.to_dict(),
        }
        print(json.dumps(doc, indent=2))
    else:
        print()
        print(_totals(summary))
    if interrupted:
        return 130
    return 1 if summary.counts["inaccurate"] or summary.counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
