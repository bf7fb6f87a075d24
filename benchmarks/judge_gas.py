"""Gas of a ZkmlJudge case against a single oracle request and fulfilment (issue 18).

One circuit (the bundled credit MLP 4->8->2, public inputs, real ezkl proof and verifier) on a
fresh local Anvil, measured in this one process (gasUsed of the mined transactions):
- baseline: an account's `requestInference` (fee escrowed, no callback) and its `fulfill`;
- a case with a panel of 3 distinct models and no appeal: `openCase` (input derived by
  TreasuryProposalInput, 3 requests) and the 3 fulfilments, each calling the judge back (the
  last one rules); the 3 models are registrations of the same verifier under 3 ids;
- a panel of 3 seats on ONE model at different thresholds: the judge makes one request for
  the model, so one proof (one fulfilment) settles the whole panel.
Usage:

    .venv/bin/python benchmarks/judge_gas.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratch import scratch

if TYPE_CHECKING:
    from zkml_oracle.circuit.verifier import CompiledContract

FEE = 10**15
ETHER = 10**18
ZERO = "0x" + "00" * 20
TREASURY = "0x" + "7e" * 20
SAMPLE = [1.4385, -0.6757, 0.2031, -0.4633]  # the credit MLP's example input


def _send(web3: Any, fn: Any, sender: str, value: int = 0) -> Any:
    receipt = web3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "value": value}))
    if receipt.status != 1:
        raise RuntimeError(f"transaction reverted: {fn}")
    return receipt


def _deploy(web3: Any, name: str | CompiledContract, sender: str, *args: Any) -> Any:
    from zkml_oracle.chain.contracts import contract

    art = contract(name) if isinstance(name, str) else name
    factory = web3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = _send(web3, factory.constructor(*args), sender)
    return web3.eth.contract(address=receipt.contractAddress, abi=art.abi)


def measure(work: Path, url: str) -> dict[str, Any]:
    from eth_abi import encode
    from eth_utils.crypto import keccak
    from web3 import HTTPProvider, Web3
    from web3.logs import DISCARD

    from zkml_oracle import field
    from zkml_oracle.apps.examples import write_credit_mlp
    from zkml_oracle.chain import rpc
    from zkml_oracle.chain.oracle import CONFIG_TYPES, ModelConfig, proof_calldata
    from zkml_oracle.circuit import BuildOptions, build
    from zkml_oracle.circuit.verifier import CompiledContract
    from zkml_oracle.prover import prove
    from zkml_oracle.testing import committed

    files = write_credit_mlp(work / "model")
    built = build(files["model"], files["calibration"], work / "build", BuildOptions(dev_srs=True))
    proof = prove(built.build_dir, files["input"], work / "proof.json")
    proof_bytes, instances = proof_calldata(proof.proof_path)
    layout = built.manifest.layout
    outputs = [field.felt_to_int(f) for f in instances[layout.outputs.offset : layout.outputs.end]]

    web3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 120}))
    admin, relayer, opener, grantee = web3.eth.accounts[:4]
    oracle = _deploy(web3, "ZkmlOracle", admin, admin, False)
    art = CompiledContract.load(built.manifest.artifact("verifier", built.build_dir))
    verifier = _deploy(web3, art, admin)
    base = ModelConfig.from_manifest(built.manifest, verifier.address).as_tuple()
    models = []
    for k in range(3):
        config = (base[0], keccak(text=f"panel-{k}"), *base[2:]) if k else base
        _send(web3, oracle.functions.registerModel(config), admin)
        models.append(keccak(encode([CONFIG_TYPES], [config])))

    # The judge's input source derives exactly the proven input from the actions.
    scale = built.manifest.inputs[0].scale
    source = _deploy(
        web3, "TreasuryProposalInput", admin, Web3.to_checksum_address(TREASURY), scale, admin
    )
    profile = [round(v * 10**6) for v in SAMPLE[1:]]
    _send(web3, source.functions.setProfile(grantee, *profile), admin)
    rpc(url, "anvil_setBalance", [Web3.to_checksum_address(TREASURY), hex(10 * ETHER)])
    value = (round(SAMPLE[0] * 10**6) + 10**6) * 10 * ETHER // (4 * 10**6)

    def fulfil(request_id: int) -> Any:
        fn = oracle.functions.fulfill(committed(oracle, request_id), proof_bytes, instances)
        return _send(web3, fn, relayer)

    # Baseline: one request, one fulfilment.
    now = int(web3.eth.get_block("latest")["timestamp"])
    felts = instances[layout.inputs.offset : layout.inputs.end]
    request = oracle.functions.requestInference(models[0], felts, ZERO, 0, now + 3600)
    receipt = _send(web3, request, opener, FEE)
    request_id = int(
        oracle.events.InferenceRequested()
        .process_receipt(receipt, errors=DISCARD)[0]
        .args.requestId
    )
    single = {"request": receipt.gasUsed, "fulfil": fulfil(request_id).gasUsed}

    def case(seats: list[Any], quorum: int) -> dict[str, Any]:
        policy = (source.address, 0, 3600, 150_000, ZERO, b"\0" * 32, 0)
        judge = _deploy(
            web3, "ZkmlJudge", admin, oracle.address, policy, (seats, quorum, 2, FEE), ([], 0, 0, 0)
        )
        fee = judge.functions.panelFee(0).call()
        actions = ([grantee], [value], [b""])
        receipt = _send(web3, judge.functions.openCase(*actions), opener, fee)
        requested = judge.events.PanelRequested().process_receipt(receipt, errors=DISCARD)
        fulfils = [fulfil(int(e.args.requestId)).gasUsed for e in requested]
        ruled = judge.functions.getCase(1).call()[3]
        assert ruled == 1, "the panel should rule favourably"
        return {
            "open_case": receipt.gasUsed,
            "requests": len(requested),
            "fulfils": fulfils,
            "total": receipt.gasUsed + sum(fulfils),
        }

    distinct = case([(m, 0, 0, outputs[0]) for m in models], 2)
    shared = case(
        [
            (models[0], 0, 0, outputs[0]),
            (models[0], 1, 1, outputs[1]),
            (models[0], 0, 0, outputs[0] + 1),
        ],
        2,
    )
    baseline = single["request"] + single["fulfil"]
    return {
        "single": {**single, "total": baseline},
        "panel_of_3_models": {
            **distinct,
            "ratio_to_single": round(distinct["total"] / baseline, 3),
        },
        "panel_of_3_seats_one_model": {
            **shared,
            "ratio_to_single": round(shared["total"] / baseline, 3),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from zkml_oracle.chain import LocalNode

    work = scratch("zkml-judge-gas-")
    node = LocalNode.start()
    try:
        result = measure(work, node.url)
    finally:
        node.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s = result["single"]
    print(
        f"single request + fulfil:        {s['request']:>9,} + {s['fulfil']:>9,} = {s['total']:>9,}"
    )
    for name in ("panel_of_3_models", "panel_of_3_seats_one_model"):
        r = result[name]
        fulfils = " + ".join(f"{g:,}" for g in r["fulfils"])
        print(
            f"{name:<31} {r['open_case']:>9,} + {fulfils} = {r['total']:,}"
            f"  ({r['ratio_to_single']:.2f}x single)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
