"""Cost of verifying on-chain: verifier size, deployment gas, verifyProof gas, calldata bytes.

Builds the bundled 4→8→2 credit MLP (the toolkit's default layout: one advice column, the
small range-check table, logrows 11) for the standalone and the reusable verifier, deploys
both on a fresh local Anvil and verifies a genuine proof with each. Prints a table, and each
figure's ratio to the reference measured with raw ezkl's defaults (logrows 15) on this machine
(../shared/README.md). Usage:

    .venv/bin/python benchmarks/verifier_gas.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scratch import scratch

# Raw ezkl 23.0.5 + solc 0.8.20 (optimizer on, runs 1) on Anvil 1.7.1, same circuit shape.
REFERENCE = {
    "standalone": {
        "runtime_bytes": 13_385,
        "deploy_gas": 2_950_000,
        "verify_gas": 547_000,
        "calldata_bytes": 3_428,
    },
    "reusable": {
        "runtime_bytes": 10_880,
        "deploy_gas": 2_410_000,
        "register_gas": 155_000,
        "verify_gas": 700_000,
    },
}


def measure(kind: str, work: Path, files: dict[str, Path], anvil_url: str) -> dict[str, int]:
    from zkml_oracle.chain import ChainOptions, connect, sender
    from zkml_oracle.chain.deploy import deploy_verifier, verify_onchain
    from zkml_oracle.chain.deployments import DeploymentStore
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.prover import prove

    built = build(
        files["model"],
        files["calibration"],
        work / kind,
        BuildOptions(dev_srs=True, reusable=kind == "reusable"),
    )
    proof = prove(built.build_dir, files["input"], work / f"{kind}-proof.json")
    store = DeploymentStore(work / "deployments")
    with connect(ChainOptions(rpc_url=anvil_url)) as chain:
        deployed = deploy_verifier(chain, built.build_dir, sender(chain, None), store=store)
        checked = verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
    assert checked.valid and checked.gas is not None
    row = {
        "runtime_bytes": deployed.runtime_size,
        "deploy_gas": deployed.gas_used,
        "verify_gas": checked.gas,
        "calldata_bytes": checked.calldata_bytes,
    }
    if deployed.register_gas is not None:
        row["register_gas"] = deployed.register_gas
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.chain import LocalNode

    work = scratch("zkml-gas-")
    files = write_credit_mlp(work / "model")
    node = LocalNode.start()
    try:
        results = {kind: measure(kind, work, files, node.url) for kind in REFERENCE}
    finally:
        node.stop()
    if args.json:
        print(json.dumps({"results": results, "reference": REFERENCE}, indent=2))
        return 0
    print(
        "credit MLP 4→8→2, the toolkit's default layout; verify gas = eth_estimateGas of the "
        "verifyProof transaction (21 k base and calldata included); reference: raw ezkl"
    )
    print(f"{'verifier':<11}{'figure':<16}{'measured':>12}{'reference':>12}{'ratio':>8}")
    for kind, row in results.items():
        for key, value in row.items():
            ref = REFERENCE[kind].get(key)
            ratio = f"{value / ref:.3f}" if ref else "-"
            print(f"{kind:<11}{key:<16}{value:>12,}{ref or 0:>12,}{ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
