"""Who signs the relayer's transactions, with which nonce, at what fee.

The key is an eth-account ``LocalAccount``, loaded from an Ape account's keyfile, a keystore
file, or (on a local dev chain only) Anvil's well-known dev key. It never leaves this module:
the :class:`Signer`'s ``repr`` shows the address alone and nothing here logs.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..chain.node import DEV_CHAIN_IDS
from ..exceptions import InputError

#: Anvil's well-known dev keys (public; valid only on a local dev chain).
ANVIL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)


@dataclass(frozen=True)
class KeySource:
    """One of: an Ape account alias, a keystore file, or the dev key (``dev_index``)."""

    ape_alias: str | None = None
    keystore: Path | None = None
    dev_index: int = 0


@dataclass(frozen=True)
class Signer:
    account: Any = field(repr=False)  # eth_account LocalAccount

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        """The raw signed transaction and its hash (0x hex)."""
        signed = self.account.sign_transaction(tx)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def replace(self, raw: bytes, fees: dict[str, int]) -> tuple[bytes, str, dict[str, int]]:
        """The EIP-1559 transaction ``raw`` again (same nonce, call and gas), with each fee cap
        the larger of ``fees`` and the old one + 12.5 % (+1 wei): what nodes require of a
        replacement. Returns its raw bytes, hash and the fees used."""
        from eth_account.typed_transactions.typed_transaction import TypedTransaction
        from hexbytes import HexBytes

        old = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        bumped = {
            key: max(int(fees[key]), int(old[key]) + int(old[key]) // 8 + 1)
            for key in ("maxFeePerGas", "maxPriorityFeePerGas")
        }
        bumped["maxFeePerGas"] = max(bumped["maxFeePerGas"], bumped["maxPriorityFeePerGas"])
        tx = {
            "type": 2,
            "chainId": int(old["chainId"]),
            "nonce": int(old["nonce"]),
            "to": old["to"],
            "value": int(old["value"]),
            "gas": int(old["gas"]),
            "data": old["data"],
            "accessList": old.get("accessList", ()),
            **bumped,
        }
        signed_raw, tx_hash = self.sign(tx)
        return signed_raw, tx_hash, bumped

    def __repr__(self) -> str:
        return f"Signer({self.address})"


def _passphrase(env: str, what: str) -> str:
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise InputError(f"{what} is locked: set {env} (no terminal to ask for its passphrase)")
    return getpass.getpass(f"passphrase for {what}: ")


def _decrypt(path: Path, passphrase: str, what: str) -> Any:
    from eth_account import Account

    try:
        keyfile = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{what}: no keystore at {path}: check the path") from None
    except ValueError:
        raise InputError(f"{path} is not a keystore (not JSON): pass an encrypted key") from None
    try:
        key = Account.decrypt(keyfile, passphrase)
    except ValueError:
        raise InputError(f"cannot decrypt {what}: wrong passphrase") from None
    return Account.from_key(key)


def load_signer(source: KeySource, chain_id: int) -> Signer:
    from eth_account import Account

    if source.ape_alias and source.keystore:
        raise InputError("pass --account or --keystore, not both")
    if source.ape_alias:
        folder = Path(os.environ.get("APE_DATA_FOLDER") or Path.home() / ".ape") / "accounts"
        path = folder / f"{source.ape_alias}.json"
        if not path.is_file():
            raise InputError(
                f"no Ape account named {source.ape_alias!r} ({path}): add one with "
                f"`ape accounts import {source.ape_alias}`"
            )
        env = f"APE_ACCOUNTS_{source.ape_alias}_PASSPHRASE"
        what = f"Ape account {source.ape_alias!r}"
        return Signer(_decrypt(path, _passphrase(env, what), what))
    if source.keystore:
        what = f"keystore {source.keystore}"
        return Signer(_decrypt(source.keystore, _passphrase("ZKML_RELAYER_PASSPHRASE", what), what))
    if chain_id not in DEV_CHAIN_IDS:
        raise InputError(
            f"chain {chain_id} is not a local dev chain: pass --account ALIAS or --keystore FILE"
        )
    if not 0 <= source.dev_index < len(ANVIL_DEV_KEYS):
        raise InputError(f"dev account {source.dev_index}: use 0..{len(ANVIL_DEV_KEYS) - 1}")
    return Signer(Account.from_key(ANVIL_DEV_KEYS[source.dev_index]))


class NonceManager:
    """Nonces handed out locally, resynchronised from the chain when in doubt.

    ``take`` starts from the chain's pending count and counts up; ``resync`` forgets the
    local count (after a gap, a replaced transaction, or "nonce too low"), so the next
    ``take`` asks the chain again."""

    def __init__(self, fetch: Callable[[], int]) -> None:
        self._fetch = fetch
        self._next: int | None = None

    def take(self) -> int:
        if self._next is None:
            self._next = self._fetch()
        nonce = self._next
        self._next += 1
        return nonce

    def resync(self) -> None:
        self._next = None


def eip1559_fees(web3: Any, priority_floor: int = 1_000_000_000) -> dict[str, int]:
    """maxFeePerGas = 2 x base fee + tip: stays valid through six full blocks of rises."""
    base = int(web3.eth.get_block("latest").get("baseFeePerGas") or 0)
    try:
        tip = int(web3.eth.max_priority_fee)
    except Exception:
        tip = priority_floor
    tip = max(tip, 1)
    return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}


def bumped_fees(web3: Any) -> dict[str, int]:
    """Today's fees for a replacement (:meth:`Signer.replace` raises them past the old ones)."""
    return eip1559_fees(web3)
