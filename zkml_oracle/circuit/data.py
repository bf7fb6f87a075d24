"""Model input files in ezkl's format: ``{"input_data": [[x0, x1, ...], ...]}``, one flat list
per model input. A calibration file may hold several samples back to back in each list."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exceptions import InputError
from ..types import TensorSpec

Sample = list[list[float]]  # one flat list per model input


def load(path: Path) -> list[list[float]]:
    """Read and check an ezkl data file: finite numbers only."""
    try:
        raw: Any = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file: check the path") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f'{path} is not JSON ({e}): write {{"input_data": [[...]]}}') from None
    data = raw.get("input_data") if isinstance(raw, dict) else None
    if not isinstance(data, list) or not data or not all(isinstance(t, list) for t in data):
        raise InputError(
            f'{path} has no "input_data" list of lists: write {{"input_data": [[...], ...]}}, '
            "one flat list per model input"
        )
    out: list[list[float]] = []
    for i, tensor in enumerate(data):
        values: list[float] = []
        for j, v in enumerate(tensor):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"{path}: input {i}, value {j} is {v!r}, not a number: fix it")
            if not math.isfinite(v):
                raise InputError(f"{path}: input {i}, value {j} is {v}, not finite: fix it")
            values.append(float(v))
        out.append(values)
    return out


def split_samples(data: list[list[float]], specs: Sequence[TensorSpec], path: Path) -> list[Sample]:
    """Cut back-to-back samples apart, checking every input holds the same whole number."""
    if len(data) != len(specs):
        raise InputError(
            f"{path} has {len(data)} input list(s) but the model takes {len(specs)} "
            f"({', '.join(s.name for s in specs)}): give one list per input"
        )
    counts = set()
    for values, spec in zip(data, specs, strict=True):
        if not values or len(values) % spec.size:
            raise InputError(
                f"{path}: input {spec.name!r} has {len(values)} values, not a multiple of its size "
                f"{spec.size} (shape {list(spec.shape)}): fix the data"
            )
        counts.add(len(values) // spec.size)
    if len(counts) != 1:
        raise InputError(
            f"{path}: inputs hold different numbers of samples ({sorted(counts)}): fix the data"
        )
    n = counts.pop()
    return [
        [values[k * s.size : (k + 1) * s.size] for values, s in zip(data, specs, strict=True)]
        for k in range(n)
    ]


def single_sample(data: list[list[float]], specs: Sequence[TensorSpec], path: Path) -> Sample:
    """Exactly one sample: each input's list has exactly its tensor's size."""
    if len(data) != len(specs):
        raise InputError(
            f"{path} has {len(data)} input list(s) but the model takes {len(specs)}: "
            "give one list per input"
        )
    for values, spec in zip(data, specs, strict=True):
        if len(values) != spec.size:
            raise InputError(
                f"{path}: input {spec.name!r} has {len(values)} values but the model takes "
                f"{spec.size} (shape {list(spec.shape)}): fix the input"
            )
    return data


def dump(sample: Sample) -> str:
    return json.dumps({"input_data": sample})


def pack(samples: Sequence[Sample], batch: int) -> Sample:
    """The input data of a batched circuit for 1..``batch`` samples: slot ``i`` holds sample
    ``i``; unused slots repeat the last sample (a genuine inference of a real input, so a padded
    slot can only ever answer a request for exactly that input), slot-major, one list per
    graph input (``[s0_in0, s0_in1, .., s1_in0, ..]``)."""
    if not 1 <= len(samples) <= batch:
        raise InputError(
            f"{len(samples)} sample(s) for a circuit that proves {batch} at once: give 1 to {batch}"
        )
    padded = list(samples) + [samples[-1]] * (batch - len(samples))
    return [tensor for sample in padded for tensor in sample]
