"""From a request's ``inputFelts`` back to the model input ezkl proves on, or a rejection.

A public-input model's request carries the felts of its input values at the manifest's input
scales (:func:`zkml_oracle.calldata.input_felts`); decoding them with :mod:`zkml_oracle.field`
gives the ezkl input file. A value is accepted only if it encodes back to the very felt the
request holds: otherwise the proof's instances could not match the request's input hash.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import field
from ..exceptions import Rejected as Rejected  # defined there, importable here too
from ..types import Manifest

Sample = list[list[float]]


def sample_from_felts(manifest: Manifest, felts: Sequence[int]) -> Sample:
    """The ezkl sample (one flat list per input tensor) a request's felts stand for."""
    vis = manifest.visibility.input
    if vis == "hashed":
        raise Rejected(
            "hashed-input model: the request carries only a Poseidon commitment, and the relayer "
            "has no way yet to obtain the private input it commits to"
        )
    if vis != "public":
        raise Rejected(f"input visibility {vis!r}: requests cannot be bound to a private input")
    expected = sum(spec.size for spec in manifest.inputs)
    if len(felts) != expected:
        raise Rejected(f"wrong input count: the model takes {expected} values, got {len(felts)}")
    sample: Sample = []
    start = 0
    for spec in manifest.inputs:
        values: list[float] = []
        for i, felt in enumerate(felts[start : start + spec.size]):
            where = f"input {spec.name!r} value {i}"
            try:
                value = field.decode(int(felt), spec.scale)
                back = field.encode(value, spec.scale)
            except field.FieldError as e:
                raise Rejected(f"value out of range: {where}: {e}") from None
            if back != felt:
                raise Rejected(
                    f"value out of range: {where} ({felt}) has no exact real value at scale "
                    f"{spec.scale}"
                )
            values.append(value)
        sample.append(values)
        start += spec.size
    return sample
