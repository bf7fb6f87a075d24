"""The oracle's registration-time verifier scan (`VerifierCodeScan`) over genuine verifiers.

Every ezkl verifier (``verifier/Verifier.json``) found under the given folders, distinct
runtime code once, is placed on a fresh Anvil (``anvil_setCode``) and scanned by
``VerifierScanHarness.scan`` (the library the oracle runs in ``registerModel``); so are
OpenZeppelin's compiled proxies (npm package ``build/contracts``), which must be refused.
Reports the false refusals (genuine standalone verifiers refused: goal 0), the proxies
accepted (goal 0) and the scan's gas (eth_estimateGas of the view, 21 k base included) against
the code size; ``--register BUILD_DIR`` also measures ``registerModel`` of that build's model.
Usage:

    .venv/bin/python benchmarks/verifier_scan.py FOLDER... [--register BUILD_DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

OZ_PROXIES = ("ERC1967Proxy", "TransparentUpgradeableProxy", "BeaconProxy")
SCANNED = "0x00000000000000000000000000000000005ca11e"


def genuine_verifiers(roots: list[Path]) -> dict[bytes, tuple[str, str]]:
    """Distinct runtime code -> (contract name, one path it was found at)."""
    found: dict[bytes, tuple[str, str]] = {}
    for root in roots:
        for path in sorted(root.rglob("verifier/Verifier.json")):
            try:
                d = json.loads(path.read_text())
                runtime = bytes.fromhex(str(d["deployedBytecode"]).removeprefix("0x"))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if runtime:
                found.setdefault(runtime, (str(d.get("contractName")), str(path)))
    return found


def oz_proxies(root: Path) -> dict[str, bytes]:
    build = root / "node_modules" / "@openzeppelin" / "contracts" / "build" / "contracts"
    return {
        name: bytes.fromhex(
            json.loads((build / f"{name}.json").read_text())["deployedBytecode"][2:]
        )
        for name in OZ_PROXIES
    }


def scan(web3: Any, harness: Any, code: bytes) -> dict[str, Any]:
    from zkml_oracle.chain import rpc

    rpc(web3.provider.endpoint_uri, "anvil_setCode", [SCANNED, "0x" + code.hex()])
    fn = harness.functions.scan(web3.to_checksum_address(SCANNED))
    layout, offset, opcode = fn.call()
    gas = int(web3.eth.estimate_gas({"to": harness.address, "data": fn._encode_transaction_data()}))
    return {
        "size": len(code),
        "accepted": bool(layout) and opcode == 0,
        "refusal": None
        if layout and opcode == 0
        else {"solc_layout": layout, "offset": offset, "opcode": hex(opcode)},
        "scan_gas": gas,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--register", type=Path, help="a build whose registration to measure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from web3 import HTTPProvider, Web3

    from zkml_oracle.chain import LocalNode, contracts

    node = LocalNode.start()
    try:
        web3 = Web3(HTTPProvider(node.url))
        admin = web3.eth.accounts[0]
        artifact = contracts.contract("VerifierScanHarness")
        factory = web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = web3.eth.wait_for_transaction_receipt(
            factory.constructor().transact({"from": admin})
        )
        harness = web3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)
        rows = [
            {"name": name, "path": path, **scan(web3, harness, code)}
            for code, (name, path) in genuine_verifiers(args.folders).items()
        ]
        proxies = [
            {"name": name, **scan(web3, harness, code)}
            for name, code in oz_proxies(contracts.PROJECT_ROOT).items()
        ]
        register = _register_gas(web3, admin, args.register) if args.register else None
    finally:
        node.stop()
    standalone = [r for r in rows if r["name"] == "Halo2Verifier"]
    result = {
        "standalone_verifiers": len(standalone),
        "false_refusals": sum(not r["accepted"] for r in standalone),
        "other_verifiers": [r for r in rows if r["name"] != "Halo2Verifier"],
        "proxies": proxies,
        "proxies_accepted": sum(r["accepted"] for r in proxies),
        "scan_gas": {
            "min": min(r["scan_gas"] for r in standalone),
            "median": int(statistics.median(r["scan_gas"] for r in standalone)),
            "max": max(r["scan_gas"] for r in standalone),
            "per_byte_at_max": round(max(r["scan_gas"] / r["size"] for r in standalone), 1),
            "largest_size": max(r["size"] for r in standalone),
        },
        "register_model_gas": register,
        "refused": [r for r in standalone if not r["accepted"]],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        g = result["scan_gas"]
        standalone_line = (
            f"genuine standalone verifiers: {result['standalone_verifiers']}, "
            f"refused: {result['false_refusals']}"
        )
        print(standalone_line)
        for r in [*result["other_verifiers"], *proxies]:
            verdict = "accepted" if r["accepted"] else f"refused {r['refusal']}"
            print(f"  {r['name']} ({r['size']:,} bytes): {verdict}")
        print(
            f"scan gas (eth_estimateGas, 21 k base included): min {g['min']:,}, "
            f"median {g['median']:,}, max {g['max']:,} "
            f"(largest verifier {g['largest_size']:,} bytes)"
        )
        if register:
            print(f"registerModel of {args.register}: {register:,} gas")
    return 0 if result["false_refusals"] == 0 and result["proxies_accepted"] == 0 else 1


def _register_gas(web3: Any, admin: str, build_dir: Path) -> int:
    """registerModel's gas for the build's model, its genuine verifier deployed."""
    from zkml_oracle.chain import contracts
    from zkml_oracle.chain.oracle import ModelConfig
    from zkml_oracle.circuit.verifier import CompiledContract
    from zkml_oracle.types import Manifest

    manifest = Manifest.load(build_dir)
    addresses = []
    for artifact in (
        CompiledContract.load(manifest.artifact("verifier", build_dir)),
        contracts.oracle(),
    ):
        factory = web3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        ctor = (
            factory.constructor(admin, True)
            if artifact.name == "ZkmlOracle"
            else factory.constructor()
        )
        receipt = web3.eth.wait_for_transaction_receipt(ctor.transact({"from": admin}))
        addresses.append(receipt.contractAddress)
    oracle = web3.eth.contract(address=addresses[1], abi=contracts.oracle().abi)
    config = ModelConfig.from_manifest(manifest, addresses[0]).as_tuple()
    receipt = web3.eth.wait_for_transaction_receipt(
        oracle.functions.registerModel(config).transact({"from": admin})
    )
    return int(receipt.gasUsed)


if __name__ == "__main__":
    sys.exit(main())
