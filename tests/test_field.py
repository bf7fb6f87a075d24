"""Field encoding (zkml_oracle.field), checked against itself and against ezkl's own encoder."""

from __future__ import annotations

import math

import ezkl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zkml_oracle import field
from zkml_oracle.field import FIELD_MODULUS, MAX_SIGNED

signed = st.integers(min_value=-MAX_SIGNED, max_value=MAX_SIGNED)


@given(signed)
def test_signed_integers_round_trip_across_the_whole_range(q: int) -> None:
    felt = field.int_to_felt(q)
    assert 0 <= felt < FIELD_MODULUS
    assert field.felt_to_int(felt) == q


@given(st.integers(min_value=0, max_value=FIELD_MODULUS - 1))
def test_every_felt_round_trips_through_ezkl_hex(felt: int) -> None:
    text = field.felt_to_ezkl_hex(felt)
    assert len(text) == 64
    assert field.felt_from_ezkl_hex(text) == felt
    assert int(field.felt_to_hex(felt), 16) == felt


def test_range_edges() -> None:
    assert field.int_to_felt(MAX_SIGNED) == MAX_SIGNED
    assert field.int_to_felt(-MAX_SIGNED) == MAX_SIGNED + 1
    assert field.felt_to_int(MAX_SIGNED + 1) == -MAX_SIGNED
    assert field.felt_to_int(FIELD_MODULUS - 1) == -1
    for bad in (MAX_SIGNED + 1, -MAX_SIGNED - 1):
        with pytest.raises(field.FieldError, match="signed range"):
            field.int_to_felt(bad)
    for bad in (FIELD_MODULUS, FIELD_MODULUS + 5, -1):
        with pytest.raises(field.FieldError, match="not a field element"):
            field.felt_to_int(bad)


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=20),
)
def test_reals_match_ezkls_encoder(value: float, scale: int) -> None:
    ours = field.encode(value, scale)
    theirs = field.felt_from_ezkl_hex(ezkl.float_to_felt(value, scale))
    assert ours == theirs
    assert abs(field.decode(ours, scale) - value) <= 2.0 ** (-scale - 1)


def test_rounding_is_half_away_from_zero() -> None:
    assert field.quantize(0.5, 0) == 1
    assert field.quantize(-0.5, 0) == -1
    assert field.quantize(2.5, 0) == 3
    assert field.quantize(1.0 / 3.0, 2) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(field.FieldError, match="not a finite number"):
        field.encode(bad, 7)


def test_malformed_ezkl_hex_is_refused() -> None:
    with pytest.raises(field.FieldError, match="32 bytes"):
        field.felt_from_ezkl_hex("abcd")
    with pytest.raises(field.FieldError, match="not a field element"):
        field.felt_from_ezkl_hex("ff" * 32)
