"""The encrypted input channel end to end: private inputs sealed to a relayer's key, posted
with the request as event data, decrypted, checked, proven and fulfilled by a real relayer
process on a real Anvil, with no plaintext in its journal, logs or metrics; a tampered
ciphertext and a mismatching commitment are rejected, journalled, and the relayer goes on.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import calibration_rows, run_cli, write_json
from tests.relayer.helpers import (
    deploy_oracle,
    finish,
    wait_for,
)
from zkml_oracle import field
from zkml_oracle.chain import LocalNode, free_port
from zkml_oracle.chain.oracle import input_felts
from zkml_oracle.circuit.commitment import EXTRA, Binding
from zkml_oracle.circuit.private_inputs import PrivateInputError, RelayerKey, seal, unseal
from zkml_oracle.relayer import journal as J
from zkml_oracle.relayer.journal import Journal
from zkml_oracle.testing.relay import relay_argv
from zkml_oracle.types import BuildResult


def test_sealed_inputs_open_only_with_the_key_and_the_commitment(
    bound_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    m = bound_built.manifest
    key = RelayerKey.load_or_create(tmp_path / "key.hex")
    assert (tmp_path / "key.hex").stat().st_mode & 0o777 == 0o600
    assert RelayerKey.load_or_create(tmp_path / "key.hex").public_key == key.public_key
    assert key.secret.hex() not in repr(key)
    alice, bob = "0x" + "a1" * 20, "0x" + "b0" * 20
    row = calibration_rows(example)[0]
    binding = Binding.new(alice)
    commitment = input_felts(m, [row], binding)
    sealed = seal(key.public_key, [row], binding)
    opened = unseal(key, sealed, m, commitment, alice)
    assert opened[0][: len(row)] == row and len(opened[0]) == len(row) + EXTRA
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    other = RelayerKey.load_or_create(tmp_path / "other.hex")
    for bad, reason in (
        (bytes(tampered), "does not decrypt"),
        (seal(other.public_key, [row], binding), "does not decrypt"),
        (seal(key.public_key, [calibration_rows(example)[1]], binding), "does not match"),
    ):
        with pytest.raises(PrivateInputError, match=reason) as err:
            unseal(key, bad, m, commitment, alice)
        assert str(row[0]) not in str(err.value)
    with pytest.raises(PrivateInputError, match="bound to another requester"):
        unseal(key, sealed, m, commitment, bob)


def _plaintexts(rows: list[list[float]], bindings: list[Binding], m: Any) -> list[str]:
    """Every way the private inputs could leak as text: values, felts, salts."""
    scale = m.inputs[0].scale
    found = []
    for row, binding in zip(rows, bindings, strict=True):
        found += [repr(v) for v in row]
        felts = [field.encode(v, scale) for v in row]
        found += [str(f) for f in felts if f > 9999]
        found += [f"{f:x}" for f in felts if f > 0xFFFF]
        found += [str(binding.salt), f"{binding.salt:x}", field.felt_to_ezkl_hex(binding.salt)]
    return found


def test_the_relayer_serves_sealed_private_inputs(
    bound_built: BuildResult, example: dict[str, Path], tmp_path: Path
) -> None:
    from web3 import Web3

    from zkml_oracle.chain.contracts import oracle as oracle_artifact

    node = LocalNode.start(port=free_port())
    try:
        oracle, model_id = deploy_oracle(node.url, bound_built.build_dir, tmp_path)
        web3 = Web3(Web3.HTTPProvider(node.url))
        contract = web3.eth.contract(address=oracle, abi=oracle_artifact().abi)
        m = bound_built.manifest
        # The relayer's key, as an operator publishes it.
        printed = run_cli("relay-key", tmp_path / "relayer.key")
        assert printed.returncode == 0, printed.stderr
        public = printed.stdout.strip()
        requester = web3.eth.accounts[2]
        rows = calibration_rows(example)[:4]
        bindings = [Binding.new(requester) for _ in rows]

        def ask(commitment: list[int], ciphertext: bytes) -> int:
            now = int(web3.eth.get_block("latest")["timestamp"])
            fn = contract.functions.requestPrivateInference(
                model_id, commitment, "0x" + "00" * 20, 0, now + 3600, ciphertext
            )
            receipt = web3.eth.wait_for_transaction_receipt(fn.transact({"from": requester}))
            (ev,) = contract.events.InferenceRequested().process_receipt(receipt)
            return int(ev["args"]["requestId"])

        commitments = [input_felts(m, [r], b) for r, b in zip(rows, bindings, strict=True)]
        good = ask(commitments[0], seal(public, [rows[0]], bindings[0]))
        sealed = bytearray(seal(public, [rows[1]], bindings[1]))
        sealed[len(sealed) // 2] ^= 0x40
        tampered = ask(commitments[1], bytes(sealed))
        mismatch = ask(commitments[2], seal(public, [rows[3]], bindings[2]))
        # The CLI seals for its sender (Anvil's first dev account) with a fresh salt.
        cli_input = write_json(tmp_path / "patient.json", {"input_data": [rows[3]]})
        asked = run_cli(
            "request", model_id, cli_input, "--encrypt-to", public, "--json",
            "--rpc-url", node.url, "--deployments", tmp_path / "deployments",
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        via_cli = int(json.loads(asked.stdout)["request_id"])
        # Only the commitment and the ciphertext are on-chain.
        tx = web3.eth.get_transaction(
            contract.events.InferenceRequested().get_logs(
                from_block=0, argument_filters={"requestId": good}
            )[0]["transactionHash"]
        )
        for felt in (field.encode(v, m.inputs[0].scale) for v in rows[0]):
            assert felt.to_bytes(32, "big") not in bytes(tx["input"])

        port = free_port()
        log = open(tmp_path / "relay.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            relay_argv(
                bound_built.build_dir, node.url, tmp_path,
                "--encryption-key", str(tmp_path / "relayer.key"),
                "--metrics-port", str(port),
            ),
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            wanted = {
                good: J.FULFILLED,
                tampered: J.REJECTED,
                mismatch: J.REJECTED,
                via_cli: J.FULFILLED,
            }

            def states() -> dict[int, str]:
                try:
                    with Journal(tmp_path / "j.sqlite", readonly=True) as j:
                        return {e.request_id: e.state for e in j.all()}
                except Exception:
                    return {}

            wait_for("every request settled or rejected", lambda: states() == wanted, 300)
            url = f"http://127.0.0.1:{port}/metrics"
            metrics = urllib.request.urlopen(url, timeout=10).read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            finish(proc)
        with Journal(tmp_path / "j.sqlite", readonly=True) as j:
            tampered_entry, mismatch_entry = j.get(tampered), j.get(mismatch)
            assert tampered_entry is not None and mismatch_entry is not None
            assert "does not decrypt" in (tampered_entry.error or "")
            assert "does not match the request's commitment" in (mismatch_entry.error or "")
        for rid in (good, via_cli):
            assert contract.functions.requestStatus(rid).call() == 2  # Fulfilled
        logs = (tmp_path / "relay.log").read_text()
        assert public in logs  # the relayer announces the key it serves
        time.sleep(0.1)
        journal_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("j.sqlite*"))
        for secret in _plaintexts(rows[:3], bindings[:3], m):
            assert secret not in logs, secret
            assert secret not in metrics, secret
            assert secret.encode() not in journal_bytes, secret
    finally:
        node.stop()
