"""What privacy costs: private weights and salted requester-bound inputs vs the default path.

The same model (the toolkit's 4→8→2 credit MLP) built twice in one run: the baseline with
fixed params and public inputs, and the private configuration with hashed params (weights
committed, checked by the oracle) and hashed, salted, requester-bound inputs
(``--bind-requester``). For each: build time, logrows, verifier size, median proving time
over ``--proofs`` proofs, bare ``verifyProof`` gas and the oracle's ``fulfill`` gas (fee
escrowed, no callback; for the private build that includes the params-commitment and
requester checks), all as eth_estimateGas on a fresh local Anvil, and ratios against the
baseline. Usage:

    .venv/bin/python benchmarks/privacy_cost.py [--proofs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from scratch import scratch

ZERO = "0x0000000000000000000000000000000000000000"


def measure(name: str, private: bool, work: Path, url: str, proofs: int) -> dict[str, Any]:
    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.chain import ChainOptions, connect, sender
    from zkml_oracle.chain.deploy import verify_onchain
    from zkml_oracle.chain.deployments import DeploymentStore
    from zkml_oracle.chain.oracle import Oracle, deploy_and_register, input_felts, proof_calldata
    from zkml_oracle.circuit import BuildOptions, build, data
    from zkml_oracle.circuit.commitment import Binding
    from zkml_oracle.prover import prove
    from zkml_oracle.types import Visibility

    files = write_credit_mlp(work / "model")
    vis = Visibility("hashed", "hashed", "public") if private else Visibility()
    t = time.perf_counter()
    built = build(
        files["model"],
        files["calibration"],
        work / name,
        BuildOptions(visibility=vis, dev_srs=True, bind_requester=private),
    )
    build_s = time.perf_counter() - t
    store = DeploymentStore(work / "deployments")
    with connect(ChainOptions(rpc_url=url)) as chain:
        account = sender(chain, None)
        binding = Binding.new(str(account.address)) if private else None
        times, proof = [], None
        for k in range(proofs):
            proof = prove(
                built.build_dir,
                files["input"],
                work / f"{name}-{k}.proof.json",
                bindings=[binding] if binding else None,
            )
            times.append(proof.timings["witness"] + proof.timings["prove"])
        assert proof is not None
        deployed = deploy_and_register(chain, built.build_dir, account, store=store)
        bare = verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
        oracle = Oracle(chain, deployed.oracle)
        felts = input_felts(built.manifest, data.load(files["input"]), binding)
        now = int(chain.web3.eth.get_block("latest")["timestamp"])
        receipt = oracle.send(
            "requestInference", deployed.model_id, felts, ZERO, 0, now + 3600, sender=account
        )
        request_id = int(oracle.events(receipt, "InferenceRequested")[0]["args"]["requestId"])
        proof_bytes, instances = proof_calldata(proof.proof_path)
        tx = oracle._web3.functions.fulfill(
            oracle.request(request_id).as_tuple(), proof_bytes, instances
        ).build_transaction({"from": account.address})
        fulfill_gas = int(chain.web3.eth.estimate_gas({k: tx[k] for k in ("from", "to", "data")}))
    assert bare.gas is not None and built.manifest.verifier is not None
    return {
        "config": name,
        "logrows": built.manifest.logrows,
        "instances": built.manifest.layout.total,
        "build_s": round(build_s, 1),
        "prove_s": round(statistics.median(times), 2),
        "verifier_bytes": built.manifest.verifier.runtime_size,
        "verify_proof_gas": bare.gas,
        "fulfill_gas": fulfill_gas,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=3, help="proofs per configuration")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.chain import LocalNode

    work = scratch("zkml-oracle-privacy-")
    node = LocalNode.start()
    try:
        base = measure("fixed params, public inputs", False, work, node.url, args.proofs)
        priv = measure("hashed params, salted inputs", True, work, node.url, args.proofs)
    finally:
        node.stop()
    for key in ("prove_s", "verify_proof_gas", "fulfill_gas"):
        priv[f"{key}_ratio"] = round(priv[key] / base[key], 3)
    rows = [base, priv]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'configuration':<30}{'logrows':>8}{'inst.':>6}{'prove s':>9}{'verifier B':>11}"
        f"{'verifyProof':>13}{'fulfill':>10}"
    )
    for r in rows:
        print(
            f"{r['config']:<30}{r['logrows']:>8}{r['instances']:>6}{r['prove_s']:>9.2f}"
            f"{r['verifier_bytes']:>11,}{r['verify_proof_gas']:>13,}{r['fulfill_gas']:>10,}"
        )
    print(
        f"private / baseline: proving {priv['prove_s_ratio']:.2f}x, verifyProof "
        f"{priv['verify_proof_gas_ratio']:.3f}x, fulfill {priv['fulfill_gas_ratio']:.3f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
