"""Field encoding between real numbers and BN254 scalar-field elements (protocol v1).

A real value ``v`` at scale ``s`` is the integer ``q = round(v * 2**s)`` (halves away from
zero, as ezkl rounds), and its field element is ``q mod r``. A felt above ``(r - 1) / 2``
stands for the negative ``q = f - r``. ezkl writes felts as 64 hex digits, little-endian,
without ``0x``. The Solidity library in ``contracts/`` implements the same mapping.
"""

from __future__ import annotations

import math

from .exceptions import FieldError as FieldError  # defined there, still importable here

#: r, the order of BN254's scalar field.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: The largest magnitude a signed integer may have and still round-trip through a felt.
MAX_SIGNED = (FIELD_MODULUS - 1) // 2


def quantize(value: float, scale: int) -> int:
    """``round(value * 2**scale)`` with halves away from zero; NaN and infinities are refused."""
    if not math.isfinite(value):
        raise FieldError(f"{value!r} is not a finite number")
    scaled = math.ldexp(value, scale)
    if not math.isfinite(scaled):
        raise FieldError(f"{value!r} overflows at scale {scale}")
    q = math.floor(abs(scaled) + 0.5)
    return -q if scaled < 0 else q


def int_to_felt(q: int) -> int:
    """The felt of a signed integer in ``[-MAX_SIGNED, MAX_SIGNED]``."""
    if not -MAX_SIGNED <= q <= MAX_SIGNED:
        raise FieldError(f"{q} is outside the signed range of the field (|q| <= (r-1)/2)")
    return q % FIELD_MODULUS


def felt_to_int(felt: int) -> int:
    """The signed integer a felt stands for. Refuses values that are not felts (``>= r``)."""
    check_felt(felt)
    return felt - FIELD_MODULUS if felt > MAX_SIGNED else felt


def encode(value: float, scale: int) -> int:
    """Real value → felt at ``scale``."""
    return int_to_felt(quantize(value, scale))


def decode(felt: int, scale: int) -> float:
    """Felt → real value at ``scale``."""
    return math.ldexp(float(felt_to_int(felt)), -scale)


def check_felt(felt: int) -> int:
    if not 0 <= felt < FIELD_MODULUS:
        raise FieldError(f"{felt} is not a field element (must be 0 <= x < r)")
    return felt


def felt_from_ezkl_hex(text: str) -> int:
    """Parse ezkl's little-endian hex felt (``"9e3a00…"``, 64 digits, no ``0x``)."""
    raw = bytes.fromhex(text.removeprefix("0x"))
    if len(raw) != 32:
        raise FieldError(f"expected 32 bytes of little-endian hex, got {len(raw)}")
    return check_felt(int.from_bytes(raw, "little"))


def felt_to_ezkl_hex(felt: int) -> str:
    return check_felt(felt).to_bytes(32, "little").hex()


def felt_to_hex(felt: int) -> str:
    """Big-endian ``0x`` hex of 32 bytes, as a ``uint256`` is written in Solidity tooling."""
    return "0x" + check_felt(felt).to_bytes(32, "big").hex()
