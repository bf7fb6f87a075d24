"""Chain commands on a running `zkml-oracle node`, end to end, against a bare web3.py script
making the same call in the same run; and `zkml-oracle --help`.

Goals (issue 12): `status`, `request`, `result` <= 1.5 s each; `--help` <= 0.5 s. Each command
runs as a whole process (as a user runs it), alternately with its bare twin, median of
``--rounds``. The bare script imports web3, connects and makes one call with the oracle's ABI
read from a file, so the ratio is the toolkit's overhead on top of the unavoidable. Also
reported: loading the contracts' artifacts (``zkml_oracle.chain.contracts.oracle()``) alone in a
fresh process, part of every chain command's time. Usage:

    .venv/bin/python benchmarks/cli_speed.py [--rounds 5] [--build DIR --input FILE --proof P]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scratch import scratch

GOALS = {"status": 1.5, "request": 1.5, "result": 1.5, "--help": 0.5}

BARE = """
import json, sys
from web3 import Web3
url, abi_file, oracle, what, arg = sys.argv[1:6]
w3 = Web3(Web3.HTTPProvider(url))
c = w3.eth.contract(address=oracle, abi=json.load(open(abi_file)))
if what == "status":
    c.functions.requestStatus(int(arg)).call()
    c.events.InferenceRequested().get_logs(from_block=0, argument_filters={"requestId": int(arg)})
elif what == "result":
    c.functions.latestResult(bytes.fromhex(arg[2:])).call()
elif what == "request":
    felts = json.loads(open(sys.argv[6] + ".felts").read())
    now = w3.eth.get_block("latest")["timestamp"]
    tx = c.functions.requestInference(
        bytes.fromhex(arg[2:]), felts, "0x" + "00" * 20, 0, now + 3600
    ).transact({"from": w3.eth.accounts[0]})
    w3.eth.wait_for_transaction_receipt(tx)
"""
BARE_HELP = "import click"
ARTIFACTS = "from zkml_oracle.chain.contracts import oracle; oracle()"


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def _cli(exe: str, cwd: Path, *args: str) -> dict[str, object]:
    out = subprocess.run([exe, *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(args[:1])} failed: {out.stderr.strip()}")
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--build", type=Path, help="an existing build directory")
    parser.add_argument("--input", type=Path, help="an input file for --build")
    parser.add_argument("--proof", type=Path, help="a proof of --input by --build")
    parser.add_argument("--json", action="store_true", help="only the JSON result")
    args = parser.parse_args()

    from zkml_oracle.chain import free_port, rpc
    from zkml_oracle.chain.contracts import oracle as oracle_artifact
    from zkml_oracle.types import Manifest

    work = scratch("zkml-cli-speed-")
    exe = str(Path(sys.executable).parent / "zkml-oracle")
    if args.build:
        if not (args.input and args.proof):
            parser.error("--build needs --input and --proof")
        build_dir, input_file, proof = (p.resolve() for p in (args.build, args.input, args.proof))
    else:
        from zkml_oracle.apps.examples import write_credit_mlp
        from zkml_oracle.circuit import BuildOptions, build
        from zkml_oracle.prover import prove

        files = write_credit_mlp(work / "model")
        build_dir = build(
            files["model"], files["calibration"], work / "build", BuildOptions(dev_srs=True)
        ).build_dir
        input_file = files["input"]
        proof = prove(build_dir, input_file, work / "proof.json").proof_path
    abi_file = work / "oracle.abi.json"
    abi_file.write_text(json.dumps(oracle_artifact().abi))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    node = subprocess.Popen(
        [exe, "node", "--port", str(port)],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (work / ".zkml-oracle" / "node.json").exists():
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit("zkml-oracle node did not start")
            time.sleep(0.1)
        deployed = _cli(exe, work, "deploy", str(build_dir))
        oracle, model_id = str(deployed["oracle"]), str(deployed["model_id"])
        req = _cli(exe, work, "request", model_id, str(input_file))
        felts = [int(str(f), 16) for f in req["input_felts"]]  # type: ignore[union-attr]
        (work / "request.felts").write_text(json.dumps(felts))
        _cli(exe, work, "submit", str(build_dir), str(proof))
        rid = str(req["request_id"])

        py = sys.executable
        pairs = {
            "status": (
                [exe, "status", rid],
                [py, "-c", BARE, url, str(abi_file), oracle, "status", rid],
            ),
            "result": (
                [exe, "result", model_id],
                [py, "-c", BARE, url, str(abi_file), oracle, "result", model_id],
            ),
            "request": (
                [exe, "request", model_id, str(input_file)],
                [
                    py,
                    "-c",
                    BARE,
                    url,
                    str(abi_file),
                    oracle,
                    "request",
                    model_id,
                    str(work / "request"),
                ],
            ),
            "--help": ([exe, "--help"], [py, "-c", BARE_HELP]),
        }
        for ours, bare in pairs.values():  # warm the page cache for both
            _timed(ours, work), _timed(bare, work)
        rows: dict[str, dict[str, float | bool]] = {}
        for name, (ours, bare) in pairs.items():
            t_ours, t_bare = [], []
            for _ in range(args.rounds):
                t_bare.append(_timed(bare, work))
                t_ours.append(_timed(ours, work))
            m_ours, m_bare = statistics.median(t_ours), statistics.median(t_bare)
            rows[name] = {
                "zkml_oracle_median_s": round(m_ours, 3),
                "bare_median_s": round(m_bare, 3),
                "ratio": round(m_ours / m_bare, 2),
                "goal_s": GOALS[name],
                "met": m_ours <= GOALS[name],
            }
        artifacts = statistics.median(
            _timed([py, "-c", ARTIFACTS], work) for _ in range(args.rounds)
        )
        rpc(url, "eth_chainId")  # the node still answers: every command used it
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(timeout=30)

    result = {
        "model": "credit MLP 4-8-2" if not args.build else str(build_dir),
        "logrows": Manifest.load(build_dir).logrows,
        "rounds": args.rounds,
        "commands": rows,
        "artifact_load_median_s": round(artifacts, 3),
        "load_average": os.getloadavg()[0],
    }
    if not args.json:
        print(f"{'command':<10}{'zkml-oracle s':>14}{'bare web3 s':>13}{'ratio':>7}{'goal s':>8}")
        for name, r in rows.items():
            print(
                f"{name:<10}{r['zkml_oracle_median_s']:>14.3f}{r['bare_median_s']:>13.3f}"
                f"{r['ratio']:>7.2f}{r['goal_s']:>8.1f}{'' if r['met'] else '  NOT met'}"
            )
        print(f"contract artifacts alone (a fresh process): {artifacts:.3f} s")
    print(json.dumps(result))
    return 0 if all(r["met"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
