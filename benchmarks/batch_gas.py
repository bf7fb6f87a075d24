"""Gas per fulfilled request: one `fulfillBatch` for N requests against one `fulfill` each.

Goal (issue 8): with public inputs, at most 100 k gas per fulfilled request at N = 8 and at
most 50 k at N = 32, the oracle's bookkeeping, events and storage included (fees escrowed
and credited, no consumer callback). Hashed (Poseidon-committed) inputs and the single-request
`fulfill` are reported beside them. Figures are the transactions' `gasUsed` (21 k base,
calldata and EIP-3529 refunds included) on a fresh local Anvil, all in this one process; the
bare verifier's `verifyProof` for the same proof is the baseline. Model: the bundled credit
MLP (4 → 8 → ReLU → 2). Usage:

    .venv/bin/python benchmarks/batch_gas.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratch import scratch

GOALS = {("public", 8): 100_000, ("public", 32): 50_000}
CONFIGS = [
    ("public", 1),
    ("public", 8),
    ("public", 32),
    ("hashed", 1),
    ("hashed", 8),
    ("hashed", 32),
]
ZERO = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class Settled:
    """Gas of each request and of the one fulfilment that settled them all."""

    request_gas: list[int]
    fulfil_gas: int


def request_and_settle(
    oracle: Any,
    model_id: str,
    manifest: Any,
    rows: list[list[float]],
    proof_path: Path,
    account: Any,
) -> Settled:
    """One fee-paying request per row (no callback), then one ``fulfill`` (one row) or
    ``fulfillBatch`` settling all of them with the proof; checks every request was settled."""
    from zkml_oracle.chain.oracle import fulfilled_outputs, input_felts, proof_calldata

    now = int(oracle.chain.web3.eth.get_block("latest")["timestamp"])
    ids, request_gas = [], []
    for row in rows:
        receipt = oracle.send(
            "requestInference",
            model_id,
            input_felts(manifest, [row]),
            ZERO,
            0,
            now + 3600,
            sender=account,
            value=10**15,
        )
        request_gas.append(int(receipt.gas_used))
        ids.append(int(oracle.events(receipt, "InferenceRequested")[0]["args"]["requestId"]))
    proof_bytes, instances = proof_calldata(proof_path)
    if len(ids) == 1:
        receipt = oracle.send("fulfill", ids[0], proof_bytes, instances, sender=account)
    else:
        receipt = oracle.send("fulfillBatch", model_id, ids, proof_bytes, instances, sender=account)
    logs = [*oracle.events(receipt, "RequestFulfilled"), *oracle.events(receipt, "BatchFulfilled")]
    assert sum(len(fulfilled_outputs(log)) for log in logs) == len(ids)
    return Settled(request_gas, int(receipt.gas_used))


def measure(
    inputs: str, batch: int, files: dict[str, Path], work: Path, url: str
) -> dict[str, Any]:
    from zkml_oracle.chain import ChainOptions, connect, sender
    from zkml_oracle.chain.deploy import verify_onchain
    from zkml_oracle.chain.deployments import DeploymentStore
    from zkml_oracle.chain.oracle import Oracle, deploy_and_register
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.prover import prove
    from zkml_oracle.types import Visibility

    name = f"{inputs}-{batch}"
    options = BuildOptions(
        visibility=Visibility(inputs, "fixed", "public"), dev_srs=True, batch=batch
    )
    built = build(files["model"], files["calibration"], work / name, options)
    flat = json.loads(files["calibration"].read_text())["input_data"][0]
    rows = [flat[4 * i : 4 * i + 4] for i in range(batch)]
    (work / f"{name}.in.json").write_text(json.dumps({"input_data": [flat[: 4 * batch]]}))
    proof = prove(built.build_dir, work / f"{name}.in.json", work / f"{name}.proof.json")
    store = DeploymentStore(work / "deployments")
    with connect(ChainOptions(rpc_url=url)) as chain:
        account = sender(chain, None)
        deployed = deploy_and_register(chain, built.build_dir, account, store=store)
        bare = verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
        settled = request_and_settle(
            Oracle(chain, deployed.oracle), deployed.model_id, built.manifest, rows,
            proof.proof_path, account,
        )  # fmt: skip
    assert bare.gas is not None
    used = settled.fulfil_gas
    per_request = used // batch
    goal = GOALS.get((inputs, batch))
    return {
        "inputs": inputs,
        "batch": batch,
        "logrows": built.manifest.logrows,
        "instances": built.manifest.layout.total,
        "verifier_bytes": built.manifest.verifier.runtime_size if built.manifest.verifier else None,
        "verify_proof_gas": bare.gas,
        "fulfil_gas": used,
        "gas_per_request": per_request,
        "bookkeeping_per_request": (used - bare.gas) // batch,
        "goal": goal,
        "met": goal is None or per_request <= goal,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.chain import LocalNode

    work = scratch("zkml-oracle-batch-gas-")
    files = write_credit_mlp(work / "model", samples=40)
    node = LocalNode.start()
    try:
        rows = []
        for inputs, batch in CONFIGS:
            rows.append(measure(inputs, batch, files, work, node.url))
            print(f"measured {inputs} N={batch}", file=sys.stderr)
    finally:
        node.stop()
    single = {r["inputs"]: r["gas_per_request"] for r in rows if r["batch"] == 1}
    for r in rows:
        r["vs_single_fulfill"] = round(r["gas_per_request"] / single[r["inputs"]], 4)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"{'inputs':<8}{'N':>4}{'logrows':>8}{'verifyProof':>13}{'fulfil tx':>11}"
            f"{'per request':>13}{'bookkeeping':>13}{'vs fulfill':>12}{'goal':>9}"
        )
        for r in rows:
            goal = f"{r['goal']:,}" if r["goal"] else "-"
            print(
                f"{r['inputs']:<8}{r['batch']:>4}{r['logrows']:>8}{r['verify_proof_gas']:>13,}"
                f"{r['fulfil_gas']:>11,}{r['gas_per_request']:>13,}"
                f"{r['bookkeeping_per_request']:>13,}{r['vs_single_fulfill']:>12.3f}{goal:>9}"
            )
        print(
            "N = 1 is `fulfill`, N > 1 one `fulfillBatch`; per request = gasUsed / N; "
            "bookkeeping = (gasUsed - verifyProof) / N"
        )
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
