"""Verifiable evaluation of the bundled credit MLP: proving time, peak memory and gas against M.

Goals (issue 17): M = 256 samples evaluated (proved) in at most 5 minutes on 2 cores; M = 1,024
with chunks; recording an attestation costs at most 1 M gas per transaction. Baseline in the
same run: proving one inference of the same model (`build` + `prove`).

Each build and each evaluation runs in its own child process, so its peak memory (max RSS)
is its own. Usage:

    .venv/bin/python benchmarks/evaluation.py [--sizes 64:64,256:256,1024:256] [--json]

``--sizes`` lists ``M:CHUNK`` pairs (test set size : samples per proof).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scratch import scratch

GOAL_SECONDS_256 = 300
GOAL_GAS = 1_000_000


def _child(args: list[str]) -> tuple[dict[str, Any], float, float]:
    """Run this script's ``_step`` in a child; its JSON, wall seconds and peak RSS in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "_step", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"step {args[0]} failed ({proc.returncode})")
    return json.loads(out), time.perf_counter() - start, usage.ru_maxrss / 1024


def _step(argv: list[str]) -> None:
    from zkml_oracle.apps import evaluation as ev

    kind = argv[0]
    if kind == "build":
        model, calibration, out, chunk = argv[1:]
        e = ev.build_evaluator(
            Path(model),
            Path(calibration),
            Path(out),
            ev.EvaluatorOptions(chunk=int(chunk), dev_srs=True),
        )
        result = {
            "logrows": e.manifest.logrows,
            "verifier_bytes": e.manifest.verifier.runtime_size if e.manifest.verifier else None,
        }
    elif kind == "evaluate":
        evaluator, test_set, out = argv[1:]
        opening = ev.commit_testset(Path(evaluator), Path(test_set))
        ev.write_opening(opening, Path(out) / "opening.json")
        r = ev.evaluate(Path(evaluator), Path(out) / "opening.json", Path(out))
        result = {
            "correct": r.correct,
            "samples": r.samples,
            "reference": r.reference_correct,
            "prove_seconds": r.timings["prove"],
            "chunks": len(r.chunks),
        }
    elif kind == "baseline":
        from zkml_oracle.circuit import BuildOptions, build
        from zkml_oracle.prover import prove

        model, calibration, inputs, out = argv[1:]
        build(Path(model), Path(calibration), Path(out), BuildOptions(dev_srs=True))
        p = prove(Path(out), Path(inputs), Path(out) / "proof.json")
        result = {"prove_seconds": p.timings["prove"]}
    else:
        raise SystemExit(f"unknown step {kind}")
    print(json.dumps(result))


def _test_set(model: Path, m: int, path: Path, seed: int) -> None:
    """``m`` samples of the credit features, labelled with the model's own class except for
    about one in eight (so the accuracy is a real number, not 100%)."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, 4)).round(4).astype(np.float32)
    session = ort.InferenceSession(str(model))
    pred = np.array(
        [session.run(None, {"features": x[i : i + 1]})[0][0].argmax() for i in range(m)]
    )
    labels = np.where(rng.random(m) < 0.125, 1 - pred, pred)
    path.write_text(json.dumps({"features": x.tolist(), "labels": labels.tolist()}))


def _gas(work: Path, model_build: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Deploy, publish each evaluated test set and attest it on a local Anvil."""
    from zkml_oracle.apps import evaluation as ev
    from zkml_oracle.chain import ChainOptions, LocalNode, connect, sender
    from zkml_oracle.chain import attestations as att
    from zkml_oracle.chain.deployments import DeploymentStore
    from zkml_oracle.chain.oracle import deploy_and_register

    node = LocalNode.start()
    try:
        with connect(ChainOptions(rpc_url=node.url)) as chain:
            store = DeploymentStore(work / "deployments")
            owner = sender(chain, None)
            model_id = deploy_and_register(chain, model_build, owner, store=store).model_id
            out = []
            for run in runs:
                evaluation = ev.Evaluation.load(Path(run["dir"]) / ev.EVALUATION_NAME)
                published = att.publish_testset(chain, owner, evaluation.commitment, store)
                result = att.attest(chain, owner, evaluation, model_id, store)
                assert result.attestation is not None
                out.append(
                    {
                        "M": run["M"],
                        "chunk": run["chunk"],
                        "publish_gas": published.gas_used,
                        "register_evaluator_gas": result.setup_gas["register"],
                        "verifier_deploy_gas": result.setup_gas["verifier"],
                        "chunk_gas": list(result.chunk_gas.values()),
                        "accuracy_bps": result.attestation.accuracy_bps,
                    }
                )
            return {"model_id": model_id, "runs": out}
    finally:
        node.stop()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_step":
        _step(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64:64,256:256,1024:256")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-gas", action="store_true")
    parser.add_argument(
        "--gas-from", type=Path, help="Only the gas part, over a previous run's work folder."
    )
    args = parser.parse_args()
    if args.gas_from:
        done = json.loads((args.gas_from / "report.json").read_text())
        print(json.dumps(_gas(args.gas_from, args.gas_from / "inference", done["runs"]), indent=2))
        return 0
    sizes = [tuple(int(v) for v in s.split(":")) for s in args.sizes.split(",")]

    from zkml_oracle.apps.examples import write_credit_mlp

    work = scratch("zkml-oracle-evaluation-")
    os.environ.setdefault("ZKML_ORACLE_CACHE", str(work / "cache"))
    files = write_credit_mlp(work / "model", samples=64)
    baseline, _, _ = _child(
        [
            "baseline",
            str(files["model"]),
            str(files["calibration"]),
            str(files["input"]),
            str(work / "inference"),
        ]
    )
    print(f"baseline: one inference proved in {baseline['prove_seconds']:.1f} s", file=sys.stderr)
    builds: dict[int, dict[str, Any]] = {}
    runs = []
    for m, chunk in sizes:
        if chunk not in builds:
            info, wall, rss = _child(
                [
                    "build",
                    str(files["model"]),
                    str(files["calibration"]),
                    str(work / f"evaluator-{chunk}"),
                    str(chunk),
                ]
            )
            builds[chunk] = {**info, "build_seconds": round(wall, 1), "build_peak_mb": round(rss)}
            print(f"evaluator chunk {chunk}: {builds[chunk]}", file=sys.stderr)
        test_set = work / f"testset-{m}.json"
        _test_set(files["model"], m, test_set, seed=m)
        out = work / f"evaluation-{m}-{chunk}"
        out.mkdir()
        res, wall, rss = _child(
            ["evaluate", str(work / f"evaluator-{chunk}"), str(test_set), str(out)]
        )
        run = {
            "M": m,
            "chunk": chunk,
            "chunks": res["chunks"],
            "correct": res["correct"],
            "reference": res["reference"],
            "prove_seconds": round(res["prove_seconds"], 1),
            "evaluate_seconds": round(wall, 1),
            "evaluate_peak_mb": round(rss),
            "prove_vs_one_inference": round(res["prove_seconds"] / baseline["prove_seconds"], 1),
            "logrows": builds[chunk]["logrows"],
            "dir": str(out),
        }
        runs.append(run)
        print(f"M={m}: {run}", file=sys.stderr)
        (work / "report.json").write_text(json.dumps({"builds": builds, "runs": runs}))
    gas = None if args.no_gas else _gas(work, work / "inference", runs)
    report = {
        "model": "credit-mlp-4-8-2",
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "baseline_prove_seconds": round(baseline["prove_seconds"], 1),
        "builds": builds,
        "runs": [{k: v for k, v in r.items() if k != "dir"} for r in runs],
        "gas": gas,
    }
    ok = all(r["correct"] == r["reference"] for r in runs)
    for r in runs:
        if r["M"] == 256:
            ok &= r["evaluate_seconds"] <= GOAL_SECONDS_256
    if gas:
        ok &= all(g <= GOAL_GAS for run in gas["runs"] for g in run["chunk_gas"])
    report["goals_met"] = ok
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
