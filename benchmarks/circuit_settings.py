"""Which circuit settings change the verifier's cost: verifyProof gas, calldata, verifier size
and proving time of the same model over ezkl's layout settings.

Issue 16 asks for the fixed cost of a verification to fall. For each model the same calibrated
circuit is built four ways (the toolkit's build, so the fidelity check against onnxruntime
judges every variant): ezkl's defaults (2 advice columns per region, range checks decomposed
in 2 legs of 16,384), one column, the small range-check table (3 legs of 1,024), and both (the
toolkit's default since issue 16e). The baseline is ezkl's defaults, measured in the same run;
proving times are wall-clock in this process, so read them as ratios. Usage:

    .venv/bin/python benchmarks/circuit_settings.py [--models credit-public:1,credit-hashed:8]
        [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifecycle_gas import _files  # a sibling script
from scratch import scratch  # a sibling script

#: name -> (columns, decomposition); None: the toolkit's choice from the circuit's rows.
VARIANTS: dict[str, tuple[int, tuple[int, int] | None]] = {
    "ezkl defaults": (2, (16_384, 2)),
    "one column": (1, (16_384, 2)),
    "small table": (2, (1_024, 3)),
    "toolkit default": (1, None),
}
MODELS = "credit-public:1,credit-hashed:8,sigmoid-public:8"


def measure(model: str, batch: int, variant: str, work: Path, url: str) -> dict[str, Any]:
    from zkml_oracle.chain import ChainOptions, connect, sender
    from zkml_oracle.chain.deploy import deploy_verifier, verify_onchain
    from zkml_oracle.chain.deployments import DeploymentStore
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.prover import prove
    from zkml_oracle.types import Visibility

    columns, decomposition = VARIANTS[variant]
    files, width = _files(model, work, max(batch, 20))
    inputs = "hashed" if model.endswith("hashed") else "public"
    options = BuildOptions(
        visibility=Visibility(inputs, "fixed", "public"),
        dev_srs=True,
        batch=batch,
        columns=columns,
        decomposition=decomposition,
    )
    name = f"{model}-{batch}-{variant.replace(' ', '-')}"
    built = build(files["model"], files["calibration"], work / name, options)
    flat = json.loads(files["calibration"].read_text())["input_data"][0]
    (work / f"{name}.in.json").write_text(json.dumps({"input_data": [flat[: width * batch]]}))
    start = time.perf_counter()
    proof = prove(built.build_dir, work / f"{name}.in.json", work / f"{name}.proof.json")
    prove_s = time.perf_counter() - start
    store = DeploymentStore(work / f"{name}.deployments")
    with connect(ChainOptions(rpc_url=url)) as chain:
        deployed = deploy_verifier(chain, built.build_dir, sender(chain, None), store=store)
        checked = verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
    assert checked.valid and checked.gas is not None
    settings = json.loads((built.build_dir / "settings.json").read_text())["run_args"]
    return {
        "model": model,
        "batch": batch,
        "variant": variant,
        "columns": settings["num_inner_cols"],
        "decomposition": [settings["decomp_base"], settings["decomp_legs"]],
        "logrows": built.manifest.logrows,
        "scales": [settings["input_scale"], settings["param_scale"]],
        "fidelity_max_abs_error": built.manifest.fidelity.max_abs_error,
        "verify_gas": checked.gas,
        "calldata_bytes": checked.calldata_bytes,
        "runtime_bytes": deployed.runtime_size,
        "deploy_gas": deployed.gas_used,
        "prove_s": round(prove_s, 2),
        "outputs": proof.samples or [proof.outputs],
    }


def _diff(value: float) -> str:
    return "same" if value == 0 else f"{value:.1e}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS, help="model:N,... (lifecycle_gas.py's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.chain import LocalNode

    work = scratch("zkml-settings-")
    node = LocalNode.start()
    rows: list[dict[str, Any]] = []
    try:
        for spec in args.models.split(","):
            model, _, n = spec.partition(":")
            for variant in VARIANTS:
                rows.append(measure(model, int(n or 1), variant, work, node.url))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        node.stop()
    baselines = {(r["model"], r["batch"]): r for r in rows if r["variant"] == "ezkl defaults"}
    for row in rows:  # ratios against ezkl's defaults for the same model and N
        base = baselines[row["model"], row["batch"]]
        row["outputs_max_abs_diff"] = max(
            abs(a - b)
            for x, y in zip(row["outputs"], base["outputs"], strict=True)
            for u, v in zip(x, y, strict=True)
            for a, b in zip(u, v, strict=True)
        )
        for key in ("verify_gas", "calldata_bytes", "prove_s"):
            row[f"{key}_ratio"] = round(row[key] / base[key], 3)
    for row in rows:
        del row["outputs"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        "| model | N | settings | columns | decomposition | logrows | verifyProof gas | "
        "calldata bytes | verifier bytes | proving s | scales | max error vs onnxruntime | "
        "outputs vs ezkl defaults |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        base, legs = r["decomposition"]
        print(
            f"| {r['model']} | {r['batch']} | {r['variant']} | {r['columns']} | "
            f"{legs} x {base:,} | {r['logrows']} | {r['verify_gas']:,} "
            f"({r['verify_gas_ratio']:.3f}) | {r['calldata_bytes']:,} "
            f"({r['calldata_bytes_ratio']:.3f}) | {r['runtime_bytes']:,} | {r['prove_s']} "
            f"({r['prove_s_ratio']:.2f}) | {r['scales'][0]}/{r['scales'][1]} | "
            f"{r['fidelity_max_abs_error']:.2e} | "
            f"{_diff(r['outputs_max_abs_diff'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
