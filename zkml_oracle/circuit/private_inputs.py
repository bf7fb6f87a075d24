"""The encrypted input channel: a private input travels to a relayer sealed to its key.

A requester-bound model's request carries only a salted commitment (see
:mod:`.commitment`), so whoever proves needs the input itself. The requester seals
``{input_data, salt, requester}`` to a relayer's secp256k1 public key with ECIES (eciespy:
ephemeral secp256k1 key, HKDF-SHA256, AES-256-GCM) and the ciphertext goes on-chain only as
event data (``requestPrivateInference`` → ``EncryptedInput``). The relayer decrypts it,
checks that the binding names the request's requester and that the input hashes to the
request's commitment, and only then proves.

Nothing here ever puts the plaintext into an exception message: a refusal says what is
wrong, never with what values.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import field
from ..exceptions import InputError
from ..exceptions import (
    PrivateInputError as PrivateInputError,  # defined there, importable here too
)
from ..types import Manifest
from .commitment import Binding, extend


@dataclass(frozen=True, repr=False)
class RelayerKey:
    """A relayer's encryption key (secp256k1); ``repr`` never shows the secret."""

    secret: bytes

    @classmethod
    def load_or_create(cls, path: Path) -> RelayerKey:
        """The key in ``path`` (hex), created there (mode 0600) when the file is missing."""
        import coincurve

        path = Path(path)
        if not path.exists():
            key = coincurve.PrivateKey()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key.secret.hex() + "\n")
            return cls(key.secret)
        try:
            secret = bytes.fromhex(path.read_text().strip().removeprefix("0x"))
            coincurve.PrivateKey(secret)
        except (OSError, ValueError) as e:
            raise InputError(
                f"{path} is not an encryption key (64 hex digits) ({type(e).__name__}): "
                "remove it to create a new one"
            ) from None
        return cls(secret)

    @property
    def public_key(self) -> str:
        """The compressed public key, ``0x`` hex: what requesters seal to."""
        import coincurve

        return "0x" + coincurve.PrivateKey(self.secret).public_key.format(compressed=True).hex()

    def __repr__(self) -> str:
        return f"RelayerKey(public_key={self.public_key})"


def seal(public_key: str, sample: list[list[float]], binding: Binding) -> bytes:
    """The ciphertext of a private input and its binding, for the holder of ``public_key``."""
    import ecies

    payload = json.dumps({"input_data": sample, **binding.to_dict()}).encode()
    try:
        return bytes(ecies.encrypt(public_key.removeprefix("0x"), payload))
    except (ValueError, TypeError) as e:
        raise InputError(
            f"{public_key!r} is not a secp256k1 public key ({type(e).__name__}): pass the key "
            "`zkml-oracle relay-key` prints"
        ) from None


def unseal(
    key: RelayerKey,
    ciphertext: bytes,
    manifest: Manifest,
    commitment: list[int] | tuple[int, ...],
    requester: str,
) -> list[list[Any]]:
    """The sample to prove (features with the salt and requester elements, as the circuit
    reads them) for a request's ciphertext, checked against its commitment and requester."""
    import ecies

    from ..calldata import input_felts

    try:
        plain = ecies.decrypt(key.secret, bytes(ciphertext))
    except Exception:
        raise PrivateInputError(
            "the sealed input does not decrypt with this relayer's key (tampered, or sealed to "
            "another key)"
        ) from None
    try:
        raw = json.loads(plain)
        sample = [[float(v) for v in tensor] for tensor in raw["input_data"]]
        binding = Binding.from_dict(raw)
    except (ValueError, TypeError, KeyError, InputError):
        raise PrivateInputError("the sealed input is not an input with its salt") from None
    if len(sample) != len(manifest.inputs) or any(
        len(values) != spec.size for values, spec in zip(sample, manifest.inputs, strict=False)
    ):
        raise PrivateInputError("the sealed input does not have the model's input shape")
    if binding.requester.lower() != requester.lower():
        raise PrivateInputError("the sealed input is bound to another requester")
    try:
        felts = input_felts(manifest, sample, binding)
    except (InputError, field.FieldError):
        raise PrivateInputError(
            "the sealed input cannot be encoded at the model's scales"
        ) from None
    if list(felts) != list(commitment):
        raise PrivateInputError("the sealed input does not match the request's commitment")
    return extend(sample, binding)
