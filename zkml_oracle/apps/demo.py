"""`zkml-oracle demo`: the whole product on a throwaway local chain, in a few minutes.

A credit-scoring model is trained (scikit-learn on data generated here), exported to ONNX,
built into a circuit; its verifier, the oracle and a DAO's grant pool (``CreditGrant``) are
deployed; a relayer is started; an applicant asks the pool for a grant, which requests a
verified score; the relayer proves and fulfils it; the pool decides on the verified score and
the applicant claims. Anvil and the relayer are stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._progress import Reporter, Steps
from ..exceptions import ZkmlOracleError

FEATURES = ("income", "debt_ratio", "account_age", "late_payments")
GRANT_WEI = 10**18
FEE_WEI = 10**15
THRESHOLD = 0.5  # the pool grants above this verified score


@dataclass
class DemoResult:
    applicant: dict[str, float]
    outputs: list[list[float]]
    decision: str
    granted_wei: int
    gas: dict[str, int] = field(default_factory=dict)
    tx: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)


def train_credit_model(folder: Path, *, seed: int = 11) -> dict[str, Path]:
    """A small MLP regressor of a credit score (targets in [0, 1]) on generated applicants."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    logit = 1.4 * x[:, 0] - 1.1 * x[:, 1] + 0.6 * x[:, 2] - 1.3 * x[:, 3]
    y = 1.0 / (1.0 + np.exp(-logit))
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=seed).fit(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": folder / "credit.onnx",
        "calibration": folder / "calibration.json",
        "input": folder / "applicant.json",
    }
    paths["model"].write_bytes(to_onnx(model, x[:1], target_opset=13).SerializeToString())
    paths["calibration"].write_text(json.dumps({"input_data": [x[:24].reshape(-1).tolist()]}))
    applicant = [1.2, -0.4, 0.8, -0.6]  # a good applicant: the score is well above 0.5
    paths["input"].write_text(json.dumps({"input_data": [applicant]}))
    return paths


def run(workdir: Path, report: Reporter | None = None) -> DemoResult:
    from eth_utils.crypto import keccak

    from ..chain.contracts import contract
    from ..chain.deploy import deploy_contract
    from ..chain.deployments import DeploymentStore
    from ..chain.node import ChainOptions, LocalNode, connect, sender
    from ..chain.oracle import Oracle, deploy_and_register, input_felts, sign_credit_features
    from ..circuit import data
    from ..circuit.builder import BuildOptions, build

    steps = Steps(report)
    workdir = workdir.resolve()
    # Each run is a new chain: the last run's journal and records describe a chain that is gone.
    shutil.rmtree(workdir / "deployments", ignore_errors=True)
    for stale in workdir.glob("relayer.sqlite*"):
        stale.unlink()
    with steps.step("train", "training a credit-scoring model (scikit-learn → ONNX)"):
        files = train_credit_model(workdir / "model")
    built = build(
        files["model"],
        files["calibration"],
        workdir / "build",
        BuildOptions(dev_srs=True, force=True),
        progress=report,
    )
    result_timings = dict(built.timings)
    node = LocalNode.start()
    relayer: subprocess.Popen[bytes] | None = None
    try:
        store = DeploymentStore(workdir / "deployments")
        with connect(ChainOptions(rpc_url=node.url)) as chain:
            web3 = chain.web3
            admin, applicant = web3.eth.accounts[0], web3.eth.accounts[3]
            with steps.step("deploy", "deploying verifier, oracle and the DAO's grant pool"):
                deployed = deploy_and_register(
                    chain, built.build_dir, sender(chain, None), store=store
                )
                scale = built.manifest.outputs[0].scale
                pool_address, pool_tx, pool_gas = deploy_contract(
                    chain,
                    sender(chain, None),
                    contract("CreditGrant"),
                    deployed.oracle,
                    bytes.fromhex(deployed.model_id[2:]),
                    0,
                    round(THRESHOLD * 2**scale),
                    GRANT_WEI,
                    3600,
                    admin,
                    admin,  # the data provider attesting applicants' features (EIP-712)
                )
                pool = web3.eth.contract(address=pool_address, abi=contract("CreditGrant").abi)
                fund = web3.eth.send_transaction(
                    {"from": admin, "to": pool_address, "value": 5 * GRANT_WEI}
                )
                web3.eth.wait_for_transaction_receipt(fund)
            with steps.step("relayer", "starting the relayer"):
                relayer = _start_relayer(built.build_dir, node.url, workdir)
            sample = data.load(files["input"])
            felts = input_felts(built.manifest, sample)
            with steps.step("request", "the applicant applies; the pool requests a verified score"):
                subject = keccak(text=applicant)
                expiry = int(web3.eth.get_block("latest")["timestamp"]) + 3600
                signature = sign_credit_features(
                    node.url,
                    admin,
                    pool=pool_address,
                    chain_id=int(web3.eth.chain_id),
                    applicant=applicant,
                    subject=subject,
                    felts=felts,
                    expiry=expiry,
                )
                apply_tx = pool.functions.applyForGrant(felts, subject, expiry, signature).transact(
                    {"from": applicant, "value": FEE_WEI}
                )
                apply_receipt = web3.eth.wait_for_transaction_receipt(apply_tx)
                requested_at = time.perf_counter()
            with steps.step("fulfil", "waiting for the relayer to prove and fulfil"):
                decided = _wait_for_decision(pool, apply_receipt["blockNumber"], relayer)
            latency = time.perf_counter() - requested_at
            oracle = Oracle(chain, deployed.oracle)
            [fulfilled] = oracle._web3.events.RequestFulfilled().get_logs(
                from_block=apply_receipt["blockNumber"]
            )
            fulfil_receipt = web3.eth.get_transaction_receipt(fulfilled["transactionHash"])
            outputs = [float(v) / 2**scale for v in fulfilled["args"]["outputs"]]
            decision = ("Granted", "ScoreTooLow", "InsufficientFunds")[
                int(decided["args"]["decision"])
            ]
            gas = {
                "deploy_verifier": deployed.gas["verifier"],
                "deploy_oracle": deployed.gas["oracle"],
                "register_model": deployed.gas["register"],
                "deploy_grant_pool": pool_gas,
                "apply_and_request": int(apply_receipt["gasUsed"]),
                "fulfil_with_callback": int(fulfil_receipt["gasUsed"]),
            }
            tx = {
                "grant_pool": pool_tx,
                "request": "0x" + bytes(apply_tx).hex(),
                "fulfil": "0x" + bytes(fulfilled["transactionHash"]).hex(),
            }
            granted = 0
            if decision == "Granted":
                before = web3.eth.get_balance(applicant)
                claim = web3.eth.wait_for_transaction_receipt(
                    pool.functions.claim().transact({"from": applicant})
                )
                gas["claim"] = int(claim["gasUsed"])
                tx["claim"] = "0x" + bytes(claim["transactionHash"]).hex()
                granted = (
                    web3.eth.get_balance(applicant)
                    - before
                    + gas["claim"] * int(claim["effectiveGasPrice"])
                )
    finally:
        if relayer is not None:
            _stop(relayer)
        node.stop()
    return DemoResult(
        applicant=dict(zip(FEATURES, sample[0], strict=True)),
        outputs=[outputs],
        decision=decision,
        granted_wei=granted,
        gas=gas,
        tx=tx,
        timings={**result_timings, **steps.timings, "request_to_fulfilment": latency},
        addresses={
            "oracle": deployed.oracle,
            "verifier": deployed.verifier,
            "grant_pool": pool_address,
            "model_id": deployed.model_id,
        },
    )


def _start_relayer(build_dir: Path, url: str, workdir: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "zkml-oracle"
    log = open(workdir / "relayer.log", "wb")  # noqa: SIM115 (kept open for the child's life)
    # Dev account 1 signs for the relayer, so its nonces never collide with the demo's own.
    return subprocess.Popen(
        [
            str(exe),
            "relay",
            "--model",
            str(build_dir),
            "--rpc-url",
            url,
            "--dev-account",
            "1",
            "--db",
            str(workdir / "relayer.sqlite"),
            "--deployments",
            str(workdir / "deployments"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )


def _wait_for_decision(pool: Any, from_block: int, relayer: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        logs = pool.events.GrantDecided().get_logs(from_block=from_block)
        if logs:
            return logs[0]
        if relayer.poll() is not None:
            raise ZkmlOracleError(
                f"the relayer exited with code {relayer.returncode}: see relayer.log"
            )
        time.sleep(0.2)
    raise ZkmlOracleError("no verified result within 300 s: see relayer.log in the demo folder")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
