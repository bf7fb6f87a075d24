"""The operator's status page (``relay --status-port``): its figures from a journal made here,
then the real page of a running relayer in a real headless Chromium (npm's
``@sparticuz/chromium`` driven by ``puppeteer-core``, JavaScript off) while requests flow,
checked against the journal and the chain."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.relayer.helpers import (
    RELAYER_0,
    REQUESTER_KEY,
    Env,
    finish,
    wait_for,
)
from zkml_oracle import field
from zkml_oracle.chain import free_port
from zkml_oracle.relayer import journal as J
from zkml_oracle.relayer.journal import Journal, RequestEvent
from zkml_oracle.relayer.status_page import StatusSource, latency, render
from zkml_oracle.types import BuildResult

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "browser" / "status_page.cjs"
MODEL = "0x" + "ab" * 32


def test_status_figures_come_from_the_journal(tmp_path: Path) -> None:
    now = time.time()
    with Journal(tmp_path / "j.sqlite") as j:
        j.bind(31337, "0xabc")
        events = [
            RequestEvent(rid, MODEL, (1, 2), 10**10, 10**15 * rid, 5, rid) for rid in range(1, 6)
        ]
        j.record(events, 7)
        for rid in (1, 2, 3):
            j.update(rid, batch=f"b{rid}", slot=0, proved_at=now - 30)
            j.transition(rid, J.FULFILLED, tx_hash=f"0x{rid:064x}")
        j.transition(4, J.REJECTED, error="bad <script>alert(1)</script> input")
    # Latencies: done_at - seen_at of the fulfilled ones, as the journal wrote them.
    with Journal(tmp_path / "j.sqlite", readonly=True) as j:
        expected = sorted(e.done_at - e.seen_at for e in j.all() if e.state == J.FULFILLED)  # type: ignore[operator]

    status = StatusSource(tmp_path / "j.sqlite", relayer=RELAYER_0).collect()
    [m] = status.models
    assert m.model_id == MODEL
    assert (m.states["fulfilled"], m.states["rejected"], m.states["seen"]) == (3, 1, 1)
    assert m.fees_earned_wei == 6 * 10**15  # requests 1 + 2 + 3
    assert m.proofs_last_hour == 3 and m.proofs_per_minute == 0.3  # 3 proofs in 10 minutes
    assert m.latency_last_hour == latency(expected)
    assert m.transactions == 0 and m.gas_spent_wei == 0  # no node to read receipts from
    assert status.scanned_to == 7 and status.chain_id == "31337" and status.balance_wei is None
    assert [e.request_id for e in status.last_errors] == [4]

    page = render(status)
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "<script" not in page  # works without JavaScript; error text is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    doc = json.loads(status.to_json())
    assert doc["models"][0]["states"]["fulfilled"] == 3 and doc["last_errors"][0]["request_id"] == 4


def test_percentiles_are_nearest_rank() -> None:
    lat = latency([float(v) for v in range(1, 101)])
    assert lat is not None and (lat.p50, lat.p90, lat.p99, lat.max) == (50.0, 90.0, 99.0, 100.0)
    assert latency([]) is None


def _request(on: Env, felts: list[int], fee: int) -> int:
    from eth_account import Account

    account = Account.from_key(REQUESTER_KEY)
    now = int(on.web3.eth.get_block("latest")["timestamp"])
    tx = on.contract.functions.requestInference(
        on.model_id, felts, "0x" + "00" * 20, 0, now + 3600
    ).build_transaction(
        {
            "from": account.address,
            "value": fee,
            "nonce": on.web3.eth.get_transaction_count(account.address, "pending"),
        }
    )
    sent = on.web3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = on.web3.eth.wait_for_transaction_receipt(sent)
    assert receipt["status"] == 1
    [log] = on.contract.events.InferenceRequested().process_receipt(receipt)
    return int(log["args"]["requestId"])


def _browse(url: str, shot: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not on PATH: `make setup` needs it"
    out = subprocess.run(
        [node, str(DRIVER), url, str(shot)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


def _journal(on: Env) -> list[J.Entry]:
    with Journal(on.work / "j.sqlite", readonly=True) as j:
        return j.all()


@pytest.mark.slow
def test_status_page_in_a_real_browser_matches_the_journal(
    env: Env,
    good: tuple[list[int], list[int]],
    built: BuildResult,
    tmp_path: Path,
) -> None:
    felts, _ = good
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = env.relay("--status-port", str(port))
    fees = [10**15, 2 * 10**15, 3 * 10**15, 4 * 10**15]
    try:
        wait_for("the status page", lambda: _up(url), 120)
        scale = built.manifest.inputs[0].scale
        bad = _request(env, [field.encode(1e7, scale), *felts[1:]], 0)  # beyond calibration
        rids = [_request(env, felts, fees[0]), _request(env, felts, fees[1])]

        # While requests flow: the page's counts lie between the journal's before and after.
        before = _journal(env)
        shown = _browse(url, tmp_path / "flowing.png")
        after = _journal(env)
        [row] = shown["models"].values()
        total = sum(int(v) for k, v in row.items() if k.startswith("state-"))
        assert len(before) <= total <= len(after)
        fulfilled = int(row.get("state-fulfilled", 0))
        assert sum(e.state == J.FULFILLED for e in before) <= fulfilled
        assert fulfilled <= sum(e.state == J.FULFILLED for e in after)
        rids += [_request(env, felts, fees[2]), _request(env, felts, fees[3])]

        wait_for(
            "every request settled",
            lambda: {e.state for e in _journal(env)} <= {J.FULFILLED, J.REJECTED},
            300,
        )
        shot = tmp_path / "status.png"
        shown = _browse(url, shot)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        finish(proc, 60)

    # Settled: the page says exactly what the journal and the chain say.
    entries = _journal(env)
    assert {e.request_id: e.state for e in entries} == {
        **{rid: J.FULFILLED for rid in rids},
        bad: J.REJECTED,
    }
    assert shown["status"] == 200 and shown["refresh"] == "5" and shown["scripts"] == 0
    assert shown["headings"] == ["Models", "Prover workers", "Last errors"]
    [(model, row)] = shown["models"].items()
    assert model == env.model_id.lower()
    assert row["state-fulfilled"] == "4" and row["state-rejected"] == "1"
    assert row["fees-earned"] == f"{sum(fees) / 10**18:.6f} ETH"
    hashes = {e.tx_hash for e in entries if e.tx_hash}
    receipts = [env.web3.eth.get_transaction_receipt(h) for h in hashes]
    assert row["transactions"] == str(len(hashes))
    assert row["gas-used"] == f"{sum(int(r['gasUsed']) for r in receipts):,}"
    spent = sum(int(r["gasUsed"]) * int(r["effectiveGasPrice"]) for r in receipts)
    assert row["gas-spent"] == f"{spent / 10**18:.6f} ETH"
    assert float(row["proofs-per-minute"]) == round(len(hashes) / 10, 2)  # 1 proof a tx
    assert row["p50"].endswith(" s") and row["p99"].endswith(" s")
    balance = env.web3.eth.get_balance(RELAYER_0)
    assert shown["facts"]["balance"] == f"{balance / 10**18:.6f} ETH"
    assert int(shown["facts"]["chain-head"]) == env.web3.eth.block_number
    assert shown["facts"]["backend"] == "local · 1 worker(s)"
    assert shown["workers"] == ["idle"]
    assert "cannot run on this input" in (env.work / "relay.log").read_text()
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("ZKML_STATUS_SCREENSHOT")
    if keep:  # how docs/img/status-page.png is made
        shutil.copy(shot, keep)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "status.json", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False
