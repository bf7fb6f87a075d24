"""Prove and verify with a built circuit, off-chain.

Kept light on purpose: ``zkml-oracle prove`` imports only ezkl and the standard library, so
the whole process costs little more than ezkl's own witness + proof.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _ezkl, commitment, data, field, srs
from ._fs import temp_path_beside
from .commitment import Binding
from .exceptions import ArtifactError, InputError, InvalidProofError, ProvingError
from .types import Manifest, ProofResult, VerifyResult


@dataclass(frozen=True)
class Circuit:
    """A build directory, checked and ready to prove with."""

    build_dir: Path
    manifest: Manifest
    srs_path: Path

    @classmethod
    def open(
        cls, build_dir: Path, needs: tuple[str, ...] = ("compiled", "settings", "pk", "vk")
    ) -> Circuit:
        """``needs``: the artifacts to check for (verifying needs only settings and vk, which
        a published public part holds; see :mod:`zkml_oracle.publish`)."""
        build_dir = Path(build_dir)
        manifest = Manifest.load(build_dir)
        for name in needs:
            if name not in manifest.artifacts:  # a published public part (zkml_oracle.publish)
                raise ArtifactError(
                    f"{build_dir} is incomplete: it holds no {name} artifact (a published public "
                    "part verifies but cannot prove): prove in the build directory"
                )
            if not manifest.artifact(name, build_dir).is_file():
                raise ArtifactError(
                    f"{build_dir} is incomplete: {manifest.artifacts[name]} is missing: rebuild it"
                )
        return cls(build_dir, manifest, srs.check(manifest.srs))

    def path(self, name: str) -> str:
        return str(self.manifest.artifact(name, self.build_dir))


def read_proof(path: Path) -> dict[str, Any]:
    try:
        proof: Any = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such proof file: check the path") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(
            f"{path} is not a proof file (not JSON: {e}): pass a proof.json from `prove`"
        ) from None
    if (
        not isinstance(proof, dict)
        or "instances" not in proof
        or not (proof.get("proof") or proof.get("hex_proof"))
    ):
        raise InputError(
            f"{path} is not an ezkl proof (no instances/proof): pass a proof.json from `prove`"
        )
    return proof


def load_bindings(path: Path) -> list[Binding]:
    """The salt(s) and requester(s) an input file carries for a requester-bound circuit."""
    raw: Any = json.loads(Path(path).read_text())
    found = raw.get("bindings") if "bindings" in raw else [raw.get("binding")]
    if not isinstance(found, list) or not all(isinstance(b, dict) for b in found):
        raise InputError(
            f'{path}: this circuit binds each input to a salt and requester: add "binding": '
            '{"salt": "0x...", "requester": "0x..."} (or a "bindings" list, one per sample)'
        )
    return [commitment.Binding.from_dict(b) for b in found]


def instances_of(proof: dict[str, Any]) -> list[int]:
    """The proof's instances as integers, flattened in ezkl's order."""
    try:
        return [field.felt_from_ezkl_hex(h) for group in proof["instances"] for h in group]
    except (TypeError, ValueError) as e:
        raise InputError(
            f"the proof's instances are malformed ({e}): pass a proof.json from `prove`"
        ) from None


def prove(
    build_dir: Path,
    input_path: Path,
    out: Path,
    bindings: Sequence[Binding] | None = None,
) -> ProofResult:
    """Witness + proof; ``out`` appears only when the proof is complete.

    A batched circuit (``build --batch N``) takes 1..N samples back to back in the input file
    (as a calibration file holds them); slot ``i`` proves sample ``i`` and unused slots repeat
    the last sample (see :func:`zkml_oracle.data.pack`). A requester-bound circuit takes one
    binding (salt and requester) per sample: ``bindings``, or else the input file's
    ``"binding"`` (one sample) or ``"bindings"`` list."""
    circuit = Circuit.open(build_dir)
    m = circuit.manifest
    raw = data.load(Path(input_path))
    if m.batch == 1:
        samples = [data.single_sample(raw, m.inputs, Path(input_path))]
    else:
        samples = data.split_samples(raw, m.inputs, Path(input_path))
        if len(samples) > m.batch:
            raise InputError(
                f"{input_path} holds {len(samples)} samples but the circuit proves at most "
                f"{m.batch} at once: split the file"
            )
    for number, sample in enumerate(samples):
        for values, spec in zip(sample, m.inputs, strict=True):
            for v in values:
                try:
                    field.encode(v, spec.scale)
                except field.FieldError as e:
                    where = f"sample {number}, input {spec.name!r}" if m.batch > 1 else spec.name
                    raise InputError(f"{input_path}: {where}: {e}: fix the input") from None
    if m.requester_bound:
        if bindings is None:
            bindings = load_bindings(Path(input_path))
        if len(bindings) != len(samples):
            raise InputError(
                f"{input_path}: {len(samples)} sample(s) but {len(bindings)} binding(s): a "
                "requester-bound circuit takes one salt and requester per sample"
            )
        padded = list(zip(samples, bindings, strict=True))
        padded += [padded[-1]] * (m.batch - len(padded))
        packed = data.pack([commitment.extend(s, b) for s, b in padded], m.batch)
    elif bindings:
        raise InputError(f"{build_dir}: this circuit's inputs are not requester-bound")
    else:
        packed = data.pack(samples, m.batch)
    import ezkl

    timings: dict[str, float] = {}
    out = Path(out)
    with (
        temp_path_beside(out, ".input.json") as data_path,
        temp_path_beside(out, ".witness.json") as witness_path,
        temp_path_beside(out, ".proof.json") as proof_tmp,
    ):
        data_path.write_text(data.dump(packed))
        t = time.perf_counter()
        _ezkl.call(
            ezkl.gen_witness,
            str(data_path),
            circuit.path("compiled"),
            str(witness_path),
            error=lambda msg: ProvingError(
                f"the circuit cannot run on this input ({msg}): values outside the range it was "
                "calibrated for do this; rebuild with calibration data that covers them"
            ),
        )
        timings["witness"] = time.perf_counter() - t
        t = time.perf_counter()
        _ezkl.call(
            ezkl.prove,
            str(witness_path),
            circuit.path("compiled"),
            circuit.path("pk"),
            str(proof_tmp),
            srs_path=str(circuit.srs_path),
            error=lambda msg: ProvingError(f"proving failed: {msg}"),
        )
        timings["prove"] = time.perf_counter() - t
        witness = json.loads(witness_path.read_text())
        proof = json.loads(proof_tmp.read_text())
        instances = instances_of(proof)
        if len(instances) != m.layout.total:
            raise ArtifactError(
                f"the proof has {len(instances)} instances but the manifest's layout says "
                f"{m.layout.total}: rebuild the circuit with this version of zkml-oracle"
            )
        params = m.layout.params
        if m.params_commitment and tuple(instances[params.offset : params.end]) != (
            m.params_commitment
        ):
            raise ArtifactError(
                f"{build_dir}: the compiled circuit's weights are not the ones the manifest "
                "commits to (the oracle would refuse this proof): rebuild the circuit"
            )
        os.replace(proof_tmp, out)
    k = len(m.outputs)  # a requester-bound circuit's requester outputs come after all slots
    per_sample = [
        [
            [field.decode(field.felt_from_ezkl_hex(h), spec.scale) for h in tensor]
            for tensor, spec in zip(witness["outputs"][i * k : (i + 1) * k], m.outputs, strict=True)
        ]
        for i in range(len(samples))
    ]
    return ProofResult(out, per_sample[0], instances, timings, per_sample)


def verify(build_dir: Path, proof_path: Path) -> VerifyResult:
    """Check a proof against the circuit's verifying key (an invalid proof is a result)."""
    circuit = Circuit.open(build_dir, needs=("settings", "vk"))
    instances = instances_of(read_proof(Path(proof_path)))
    expected = circuit.manifest.layout.total
    if len(instances) != expected:
        return VerifyResult(
            False, f"the proof has {len(instances)} instances, this circuit {expected}"
        )
    import ezkl

    t = time.perf_counter()
    try:
        ok = _ezkl.call(
            ezkl.verify,
            str(proof_path),
            circuit.path("settings"),
            circuit.path("vk"),
            srs_path=str(circuit.srs_path),
            error=InvalidProofError,
        )
    except InvalidProofError as e:
        return VerifyResult(False, str(e), time.perf_counter() - t)
    return VerifyResult(bool(ok), None if ok else "rejected", time.perf_counter() - t)
