"""Run the onnx package's test models through build → prove → verify.

    .venv/bin/python benchmarks/conformance.py                  # all 82, table + totals
    .venv/bin/python benchmarks/conformance.py --only Conv2d --only ReLU --timeout 60
    .venv/bin/python benchmarks/conformance.py --json --out /tmp/conformance
    .venv/bin/python benchmarks/conformance.py --suite node --timeout 60 --per-operator 2 \
        --results node.jsonl                                     # per-operator node tests
    .venv/bin/python benchmarks/conformance.py --suite node --operator LpPool --operator Pow
    .venv/bin/python benchmarks/conformance.py --suite node --operator Resize \
        --constant-parameters --results resize.jsonl  # scales as constants, as exported
    .venv/bin/python benchmarks/conformance.py --suite node --name test_attention_3d_causal

``--suite node`` runs the per-operator node tests whose tensors are all float32 and prints a
table per operator (accurate / refused / inaccurate / timed out / error / not run); ``--results``
appends each case's result as a JSON line as it finishes, and ``--resume`` skips the cases
already in that file, so a long run survives an interruption (a case's last line counts, so a
re-run by ``--name`` replaces its earlier result).

Cases run one at a time, each in its own process with a time limit. Exit status: 0 when no
case is silently inaccurate and none hit a bug (``error``); 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from scratch import scratch

from zkml_oracle.circuit.conformance import (
    DEFAULT_TIMEOUT,
    SUITES,
    VERDICTS,
    Case,
    CaseResult,
    Summary,
    circuit_key,
    discover,
    operator,
    run_suite,
    summarize,
    with_constant_parameters,
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


def by_operator(
    results: list[CaseResult], ops: dict[str, str], totals: dict[str, int] | None = None
) -> str:
    """A markdown table: per operator, how many cases ended in each verdict and, given
    ``totals`` (each operator's number of cases asked for), how many were not run; an
    operator none of whose cases ran still gets its row."""
    rows: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(VERDICTS, 0))
    for r in results:
        rows[ops.get(r.model, "?")][r.verdict] += 1
    head = "| operator | cases | accurate | refused | inaccurate | timed out | error | not run |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for op in sorted(set(rows) | set(totals or {})):
        c = rows[op]
        ran = sum(c.values())
        total = max((totals or {}).get(op, ran), ran)
        lines.append(
            f"| {op} | {total} | {c['accurate']} | {c['refused']} | "
            f"{c['inaccurate']} | {c['timeout']} | {c['error']} | {total - ran} |"
        )
    return "\n".join(lines)


def _cap(cases: list[Case], ops: dict[str, str], per_operator: int | None) -> list[Case]:
    if per_operator is None:
        return cases
    taken: dict[str, int] = defaultdict(int)
    kept = []
    for case in cases:
        if taken[ops[case.name]] < per_operator:
            taken[ops[case.name]] += 1
            kept.append(case)
    return kept


def _share_circuits(
    selected: list[Case], to_run: list[Case], earlier: list[CaseResult]
) -> tuple[list[Case], dict[str, list[str]]]:
    """``to_run`` less the cases whose circuit (:func:`circuit_key`) an earlier result or an
    earlier case to run already has, and for each case that stays (or result), the cases it
    decides."""
    with tempfile.TemporaryDirectory(prefix="zkml-circuit-key-") as tmp:
        keys = {c.name: circuit_key(c, Path(tmp)) for c in selected}
    first: dict[str, str] = {}  # circuit key -> the case that decides it
    for r in earlier:
        key = keys.get(r.model)
        if key is not None:
            first.setdefault(key, r.model)
    run: list[Case] = []
    twins: dict[str, list[str]] = defaultdict(list)
    for case in to_run:
        key = keys[case.name]
        if key is not None and key in first:
            twins[first[key]].append(case.name)
            continue
        if key is not None:
            first[key] = case.name
        run.append(case)
    return run, dict(twins)


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
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="NAME",
        help="run only the case named NAME exactly (repeatable; --only matches substrings)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each case's work dir (input, build, proof) under DIR (default: a temp dir)",
    )
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="pytorch-converted",
        help="which onnx test models (default: pytorch-converted)",
    )
    parser.add_argument(
        "--operator",
        action="append",
        default=[],
        metavar="OP",
        help="node suite: run only the cases of operator label OP (exact; repeatable)",
    )
    parser.add_argument(
        "--constant-parameters",
        action="store_true",
        help="node suite: run the cases that feed an operator's parameters (Resize scales, "
        "Pow exponents, DFT lengths) with those made constants, as in an exported model; "
        "their names get '_constant_parameters', their labels ' (parameters constant)'",
    )
    parser.add_argument(
        "--per-operator",
        type=int,
        default=None,
        metavar="N",
        help="run at most N cases per operator (first by name)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="FILE",
        help="append each result to FILE as a JSON line as it finishes",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip the cases already in --results FILE"
    )
    parser.add_argument(
        "--from-name",
        default=None,
        metavar="NAME",
        help="run only cases named NAME or after it (sorted by name; to split a run in two)",
    )
    parser.add_argument(
        "--before-name", default=None, metavar="NAME", help="run only cases named before NAME"
    )
    parser.add_argument(
        "--share-circuits",
        action="store_true",
        help="run one case per circuit: a selected case whose rewritten graph (names aside) "
        "and reference tensors equal another selected case's (an operator's node test and "
        "its _expanded twin) takes that case's verdict, its reason saying so",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="run nothing: print the totals (and per-operator table) of --results FILE",
    )
    args = parser.parse_args(argv)
    if args.report and (args.results is None or not args.results.is_file()):
        parser.error("--report needs --results FILE from an earlier run")
    if args.report:
        args.resume = True

    cases = discover(only=args.only, suite=args.suite)
    ops = {c.name: operator(c) for c in cases} if args.suite == "node" else {}
    if args.operator:
        cases = [c for c in cases if ops.get(c.name) in set(args.operator)]
    frozen_root = None
    if args.constant_parameters:
        frozen_root = scratch("zkml-constant-parameters-")
        frozen = [(c, with_constant_parameters(c, frozen_root)) for c in cases]
        cases = [f for _, f in frozen if f is not None]
        for c, f in frozen:
            if f is not None:
                ops[f.name] = f"{ops[c.name]} (parameters constant)"
    if args.name:
        cases = [c for c in cases if c.name in set(args.name)]
    cases = _cap(cases, ops, args.per_operator)
    if args.from_name is not None:
        cases = [c for c in cases if c.name >= args.from_name]
    if args.before_name is not None:
        cases = [c for c in cases if c.name < args.before_name]
    asked = Counter(ops[c.name] for c in cases if c.name in ops)  # per operator, to run
    selected = list(cases)
    earlier: list[CaseResult] = []
    if args.resume and args.results is not None and args.results.is_file():
        lines = [line for line in args.results.read_text().splitlines() if line.strip()]
        # A case's last line counts: a re-run (--name, a longer --timeout) appends its result.
        last = {r.model: r for r in (CaseResult(**json.loads(line)) for line in lines)}
        done = set(last)
        earlier = [r for r in last.values() if r.model in {c.name for c in cases}]
        cases = [] if args.report else [c for c in cases if c.name not in done]
    if not cases and not earlier:
        parser.error(f"no case matches {args.only}")

    results: list[CaseResult] = list(earlier)
    twins: dict[str, list[str]] = {}  # a case run (or run before) -> the cases it decides
    if args.share_circuits and not args.report:
        cases, twins = _share_circuits(selected, cases, earlier)

    def record(r: CaseResult) -> None:
        results.append(r)
        if args.results is not None:
            with args.results.open("a") as f:
                f.write(json.dumps(r.to_dict()) + "\n")
        if not args.json:
            print(_row(r), flush=True)
        decide_twins(r)

    def decide_twins(r: CaseResult) -> None:
        for twin in twins.pop(r.model, []):
            same = f"same circuit as {r.model}" + ("" if r.reason is None else f": {r.reason}")
            record(dataclasses.replace(r, model=twin, reason=same))

    if not args.json and not args.report:
        print(f"{len(cases)} cases, {args.timeout:g} s each at most", flush=True)
        print(f"{'model':<{NAME_WIDTH}} {'logrows':>7} {'seconds':>8} {'max error':>10}  verdict")
    for r in earlier:  # the twins of cases already in --results FILE are decided now
        decide_twins(r)
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
    finally:
        if frozen_root is not None:
            shutil.rmtree(frozen_root, ignore_errors=True)
    summary = summarize(results)
    if args.json:
        doc = {
            "suite": args.suite,
            "timeout": args.timeout,
            "results": [r.to_dict() for r in results],
            "summary": summary.to_dict(),
        }
        print(json.dumps(doc, indent=2))
    else:
        print()
        print(_totals(summary))
        if ops:
            print(f"not run     {max(0, sum(asked.values()) - len(results))}")
            print()
            print(by_operator(results, ops, asked))
    if interrupted:
        return 130
    return 1 if summary.counts["inaccurate"] or summary.counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
