"""Typed artifacts: the build manifest and the results of proving and verifying.

``manifest.json`` is the contract between the steps: ``build`` writes it, everything after
reads it, and later steps (deployment, registration) bind to its digests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    computed_field,
    field_serializer,
    field_validator,
    model_validator,
)

from .circuit.verifier import VerifierInfo
from .exceptions import ArtifactError

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1

InputVisibility = Literal["public", "hashed", "private"]
ParamVisibility = Literal["fixed", "hashed", "private"]
OutputVisibility = Literal["public", "hashed"]
INPUT_VISIBILITIES: tuple[str, ...] = get_args(InputVisibility)
PARAM_VISIBILITIES: tuple[str, ...] = get_args(ParamVisibility)
OUTPUT_VISIBILITIES: tuple[str, ...] = get_args(OutputVisibility)


@dataclass(frozen=True)
class Visibility:
    """Who sees what: ``public`` values are instances, ``hashed`` ones appear as a Poseidon
    commitment, ``private`` ones stay with the prover, ``fixed`` params are baked into the keys."""

    input: InputVisibility = "public"
    param: ParamVisibility = "fixed"
    output: OutputVisibility = "public"

    def __post_init__(self) -> None:
        for kind, value, allowed in (
            ("input", self.input, INPUT_VISIBILITIES),
            ("param", self.param, PARAM_VISIBILITIES),
            ("output", self.output, OUTPUT_VISIBILITIES),
        ):
            if value not in allowed:
                raise ValueError(f"{kind} visibility {value!r} is not one of {', '.join(allowed)}")

    def ezkl(self) -> dict[str, str]:
        """The strings ezkl's ``PyRunArgs`` takes (``hashed`` means a public Poseidon hash)."""
        m = {"hashed": "hashed/public"}
        return {
            "input_visibility": m.get(self.input, self.input),
            "param_visibility": m.get(self.param, self.param),
            "output_visibility": m.get(self.output, self.output),
        }


@dataclass(frozen=True)
class Segment:
    """A run of the proof's instances: ``instances[offset : offset + count]``."""

    offset: int
    count: int

    @property
    def end(self) -> int:
        return self.offset + self.count


@dataclass(frozen=True)
class InstanceLayout:
    """Where inputs, params and outputs sit in the proof's flat instance list.

    The order is ezkl's, read off a real proof at build time (``circuit._read_layout``): with
    hashed params, for instance, ezkl puts their commitment before public inputs.
    A batched circuit (``batch`` > 1) proves ``batch`` inferences at once: ``inputs`` and
    ``outputs`` are then slot 0's segments, and slot ``i``'s lie ``i * count`` further on.
    ``requester`` (requester-bound inputs only) is slot 0's requester limbs (see
    :mod:`zkml_oracle.circuit.commitment`); slot ``i``'s lie ``i * count`` further on."""

    inputs: Segment
    params: Segment
    outputs: Segment
    batch: int = 1
    requester: Segment | None = None

    @property
    def total(self) -> int:
        ends = [
            self.inputs.offset + self.inputs.count * self.batch,
            self.params.end,
            self.outputs.offset + self.outputs.count * self.batch,
        ]
        if self.requester is not None:
            ends.append(self.requester.offset + self.requester.count * self.batch)
        return max(ends)

    def requester_slot(self, slot: int) -> Segment:
        """Slot ``slot``'s requester limbs."""
        self._check_slot(slot)
        if self.requester is None:
            raise IndexError("this circuit's inputs are not requester-bound")
        return Segment(self.requester.offset + slot * self.requester.count, self.requester.count)

    def input_slot(self, slot: int) -> Segment:
        self._check_slot(slot)
        return Segment(self.inputs.offset + slot * self.inputs.count, self.inputs.count)

    def output_slot(self, slot: int) -> Segment:
        self._check_slot(slot)
        return Segment(self.outputs.offset + slot * self.outputs.count, self.outputs.count)

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.batch:
            raise IndexError(f"slot {slot} is outside a batch of {self.batch}")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the circuit sees it (symbolic dimensions fixed to 1)."""

    name: str
    shape: tuple[int, ...]
    scale: int

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class SrsInfo:
    """The SRS the keys were made with. ``kind`` is ``dev`` (generated here: test-only, its
    toxic waste was in this machine's memory) or ``file`` (supplied, e.g. from a ceremony)."""

    kind: Literal["dev", "file"]
    sha256: str
    logrows: int
    path: str


@dataclass(frozen=True)
class FidelityReport:
    """Circuit outputs against onnxruntime's on the calibration samples."""

    samples: int
    max_abs_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_error <= self.tolerance


class Manifest(BaseModel):
    """``manifest.json``: validated on load (a missing or mistyped field is an
    :class:`ArtifactError`), written back in the same JSON form, with the derived
    ``artifact_digest``, ``layout.total`` and ``fidelity.passed`` beside the fields."""

    model_config = ConfigDict(frozen=True)

    schema_version: int
    model_sha256: str
    settings_sha256: str
    vk_sha256: str
    visibility: Visibility
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    param_scale: int
    logrows: int
    layout: InstanceLayout
    srs: SrsInfo
    fidelity: FidelityReport
    tools: dict[str, str]
    artifacts: dict[str, str]
    created_at: str
    verifier: VerifierInfo | None = None
    rewrites: tuple[str, ...] = ()  # equivalent graph rewrites applied to the proven copy
    warnings: tuple[str, ...] = ()  # where the circuit is faithful only on some inputs
    #: Hashed params: the Poseidon commitments of the weights, as the proof carries them
    #: (0x-hex in the file).
    params_commitment: tuple[int, ...] = ()
    #: Each input tensor is extended with a salt and the requester's address (commitment.py).
    requester_bound: bool = False

    @model_validator(mode="before")
    @classmethod
    def _known_schema(cls, d: Any) -> Any:
        if isinstance(d, dict) and d.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"manifest schema {d.get('schema_version')!r} is not {SCHEMA_VERSION}: "
                "rebuild with this version of zkml-oracle"
            )
        return d

    @field_validator("params_commitment", mode="before")
    @classmethod
    def _felts_from_hex(cls, v: Any) -> Any:
        return tuple(int(h, 16) if isinstance(h, str) else h for h in v)

    @field_serializer("params_commitment")
    def _felts_as_hex(self, v: tuple[int, ...]) -> list[str]:
        return [f"0x{f:064x}" for f in v]

    @field_serializer("layout")
    def _layout(self, layout: InstanceLayout) -> dict[str, Any]:
        d: dict[str, Any] = {k: asdict(getattr(layout, k)) for k in ("inputs", "params", "outputs")}
        d.update(batch=layout.batch, total=layout.total)
        if layout.requester is not None:
            d["requester"] = asdict(layout.requester)
        return d

    @field_serializer("fidelity")
    def _fidelity(self, fidelity: FidelityReport) -> dict[str, Any]:
        return {**asdict(fidelity), "passed": fidelity.passed}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def artifact_digest(self) -> str:
        """sha256 binding model, settings and verifying key: what a registry entry commits to."""
        blob = json.dumps(
            {"model": self.model_sha256, "settings": self.settings_sha256, "vk": self.vk_sha256},
            sort_keys=True,
        ).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def batch(self) -> int:
        """Inferences per proof (1 unless built with ``--batch``)."""
        return self.layout.batch

    @property
    def dev_srs(self) -> bool:
        return self.srs.kind == "dev"

    def artifact(self, name: str, build_dir: Path) -> Path:
        """Absolute path of a named artifact (``compiled``, ``settings``, ``pk``, ``vk``...)."""
        try:
            rel = self.artifacts[name]
        except KeyError:
            raise ArtifactError(
                f"{build_dir}: manifest lists no {name!r} artifact: "
                "rebuild with `zkml-oracle build`"
            ) from None
        p = Path(rel)
        return p if p.is_absolute() else build_dir / p

    @classmethod
    def load(cls, build_dir: Path) -> Manifest:
        path = build_dir / MANIFEST_NAME
        if not path.is_file():
            raise ArtifactError(
                f"{build_dir} is not a build directory (no {MANIFEST_NAME}): "
                "run `zkml-oracle build MODEL.onnx --out DIR` first"
            )
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "document"
            raise ArtifactError(
                f"{path} is corrupt ({where}: {first['msg']}): rebuild with `zkml-oracle build`"
            ) from None


@dataclass(frozen=True)
class BuildResult:
    build_dir: Path
    manifest: Manifest
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProofResult:
    """``outputs``: the first sample's, one list per output tensor; ``samples``: every proven
    sample's (a batched proof carries 1..N; padded slots are not listed)."""

    proof_path: Path
    outputs: list[list[float]]
    instances: list[int]
    timings: dict[str, float] = field(default_factory=dict)
    samples: list[list[list[float]]] = field(default_factory=list)


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    reason: str | None = None
    seconds: float = 0.0
