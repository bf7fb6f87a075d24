"""Gas of the oracle's `fulfill` against the bare verifier's `verifyProof`, for two model sizes.

Goal (issue 5): fulfill (bookkeeping, event and callback dispatch included, no consumer
callback) costs at most 1.20x verifyProof for the same proof. Both figures are
eth_estimateGas of the transaction (21 k base and calldata included), measured on a fresh
local Anvil in this one process. Usage:

    .venv/bin/python benchmarks/oracle_gas.py [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from scratch import scratch

GOAL = 1.20


def _mlp(folder: Path, sizes: tuple[int, ...], seed: int) -> dict[str, Path]:
    """A ReLU MLP with the given layer sizes, written with onnx.helper."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.normal(size=n_out) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        out = f"h{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{k}", f"b{k}"], [out]))
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [out], [f"{out}r"]))
            out = f"{out}r"
        prev = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, sizes[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    rows = rng.normal(size=(16, sizes[0])).round(4)
    (folder / "cal.json").write_text(json.dumps({"input_data": [rows.reshape(-1).tolist()]}))
    (folder / "in.json").write_text(json.dumps({"input_data": [rows[0].tolist()]}))
    return {
        "model": folder / "model.onnx",
        "calibration": folder / "cal.json",
        "input": folder / "in.json",
    }


def measure(name: str, files: dict[str, Path], work: Path, url: str) -> dict[str, object]:
    from zkml_oracle.chain import ChainOptions, connect, sender
    from zkml_oracle.chain.deploy import verify_onchain
    from zkml_oracle.chain.deployments import DeploymentStore
    from zkml_oracle.chain.oracle import Oracle, deploy_and_register, input_felts, proof_calldata
    from zkml_oracle.circuit import BuildOptions, build, data
    from zkml_oracle.prover import prove

    built = build(files["model"], files["calibration"], work / name, BuildOptions(dev_srs=True))
    proof = prove(built.build_dir, files["input"], work / f"{name}.proof.json")
    store = DeploymentStore(work / "deployments")
    with connect(ChainOptions(rpc_url=url)) as chain:
        account = sender(chain, None)
        deployed = deploy_and_register(chain, built.build_dir, account, store=store)
        bare = verify_onchain(chain, built.build_dir, proof.proof_path, store=store)
        oracle = Oracle(chain, deployed.oracle)
        felts = input_felts(built.manifest, data.load(files["input"]))
        now = int(chain.web3.eth.get_block("latest")["timestamp"])
        receipt = oracle.send(
            "requestInference",
            deployed.model_id,
            felts,
            "0x0000000000000000000000000000000000000000",
            0,
            now + 3600,
            sender=account,
            value=10**15,
        )
        request_id = int(oracle.events(receipt, "InferenceRequested")[0]["args"]["requestId"])
        proof_bytes, instances = proof_calldata(proof.proof_path)
        tx = oracle._web3.functions.fulfill(
            oracle.request(request_id).as_tuple(), proof_bytes, instances
        ).build_transaction({"from": account.address})
        fulfill_gas = int(chain.web3.eth.estimate_gas({k: tx[k] for k in ("from", "to", "data")}))
    assert bare.gas is not None
    return {
        "model": name,
        "logrows": built.manifest.logrows,
        "instances": built.manifest.layout.total,
        "verify_proof_gas": bare.gas,
        "fulfill_gas": fulfill_gas,
        "ratio": round(fulfill_gas / bare.gas, 4),
        "met": fulfill_gas <= GOAL * bare.gas,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.chain import LocalNode

    work = scratch("zkml-oracle-gas-")
    models = {"mlp-4-8-2": (4, 8, 2), "mlp-16-32-16-4": (16, 32, 16, 4)}
    node = LocalNode.start()
    try:
        rows = [
            measure(name, _mlp(work / f"{name}-src", sizes, seed=k), work, node.url)
            for k, (name, sizes) in enumerate(models.items())
        ]
    finally:
        node.stop()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"{'model':<16}{'logrows':>8}{'instances':>10}{'verifyProof':>13}{'fulfill':>10}{'ratio':>8}"
        )
        for r in rows:
            print(
                f"{r['model']:<16}{r['logrows']:>8}{r['instances']:>10}{r['verify_proof_gas']:>13,}"
                f"{r['fulfill_gas']:>10,}{r['ratio']:>8.3f}"
            )
        print(f"goal: fulfill <= {GOAL}x verifyProof (fee escrowed, no consumer callback)")
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
