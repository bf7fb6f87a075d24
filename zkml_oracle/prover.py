"""Prove and verify with a built circuit, off-chain.

Kept light on purpose: ``zkml-oracle prove`` imports only ezkl and the standard library, so
the whole process costs little more than ezkl's own witness + proof.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _ezkl, field
from ._fs import check_output_file, sha256_file, temp_path_beside
from .circuit import commitment, data, srs
from .circuit.commitment import Binding
from .circuit.data import Sample
from .exceptions import ArtifactError, InputError, InvalidProofError, ProvingError
from .types import Manifest, ProofResult, VerifyResult

#: The digests a manifest records for its files (what a model id commits to).
_DIGESTS = {"settings": "settings_sha256", "vk": "vk_sha256"}


def check_manifest(manifest: Manifest, build_dir: Path) -> None:
    """Refuse a build whose files are not the ones its manifest describes (a replaced
    ``vk.key``, a hand-edited digest) or that another ezkl version made: its proofs would
    fail as "invalid", or its model id would name other files."""
    from importlib.metadata import PackageNotFoundError, version

    for name, field_name in _DIGESTS.items():
        if name not in manifest.artifacts:
            continue
        path = manifest.artifact(name, build_dir)
        if path.is_file() and sha256_file(path) != getattr(manifest, field_name):
            raise ArtifactError(
                f"{path} does not match the manifest's {field_name} (the file or the manifest "
                "was changed after the build): rebuild with `zkml-oracle build`, or restore "
                "the original file"
            )
    recorded = manifest.tools.get("ezkl")
    try:
        installed = version("ezkl")
    except PackageNotFoundError:
        installed = "none"
    if recorded and recorded != "unknown" and recorded != installed:
        raise ArtifactError(
            f"{build_dir} was built with ezkl {recorded} but ezkl {installed} is installed "
            f"(keys and proofs are not compatible across versions): rebuild it, or "
            f"`pip install ezkl=={recorded}`"
        )


def checked_manifest(build_dir: Path) -> Manifest:
    """The manifest of ``build_dir``, checked against its files (:func:`check_manifest`)."""
    manifest = Manifest.load(Path(build_dir))
    check_manifest(manifest, Path(build_dir))
    return manifest


@dataclass(frozen=True)
class Circuit:
    """A build directory, checked against its manifest and ready to prove with."""

    build_dir: Path
    manifest: Manifest
    srs_path: Path
    #: The range the circuit's lookup tables cover (settings' ``run_args.lookup_range``).
    lookup_range: tuple[int, int] | None = None

    @classmethod
    def open(
        cls, build_dir: Path, needs: tuple[str, ...] = ("compiled", "settings", "pk", "vk")
    ) -> Circuit:
        """``needs``: the artifacts to check for (verifying needs only settings and vk, which
        a published public part holds; see :mod:`zkml_oracle.circuit.publish`)."""
        build_dir = Path(build_dir)
        manifest = Manifest.load(build_dir)
        for name in needs:
            if (
                name not in manifest.artifacts
            ):  # a published public part (zkml_oracle.circuit.publish)
                raise ArtifactError(
                    f"{build_dir} is incomplete: it holds no {name} artifact (a published public "
                    "part verifies but cannot prove): prove in the build directory"
                )
            if not manifest.artifact(name, build_dir).is_file():
                raise ArtifactError(
                    f"{build_dir} is incomplete: {manifest.artifacts[name]} is missing: rebuild it"
                )
        check_manifest(manifest, build_dir)
        lookup_range = None
        if "settings" in needs:
            settings = json.loads(manifest.artifact("settings", build_dir).read_text())
            if settings.get("required_lookups"):  # no lookup table, no range to leave
                low, high = settings["run_args"]["lookup_range"]
                lookup_range = (int(low), int(high))
        return cls(build_dir, manifest, srs.check(manifest.srs), lookup_range)

    def check_witness(self, witness: dict[str, Any]) -> None:
        """Refuse a witness the circuit cannot prove: lookup inputs outside the calibrated
        range. (ezkl 23.0.5's ``prove`` deadlocks on such a witness instead of failing.) The
        refusal names the circuit's range only: the witness's own extremes come from the input,
        which may be private (the relayer journals this reason for sealed requests)."""
        if self.lookup_range is None:
            return
        low, high = self.lookup_range
        least = int(witness.get("min_lookup_inputs", low))
        most = int(witness.get("max_lookup_inputs", high))
        if least < low or most > high:
            raise InputError(
                "the circuit cannot run on this input: its lookups leave the range the "
                f"circuit covers, [{low}, {high}] (the range it was calibrated for), so no "
                "proof of it can be made: rebuild with calibration data that covers such "
                "inputs, or with a wider `build --lookup-margin`"
            )

    def witness(self, samples: Sequence[Sample], folder: Path) -> dict[str, Any]:
        """The witness of ``samples`` (packed into the circuit's slots), checked against the
        circuit's ranges; written to ``folder/witness.json``."""
        import ezkl

        (folder / "input.json").write_text(data.dump(data.pack(list(samples), self.manifest.batch)))
        _ezkl.call(
            ezkl.gen_witness,
            str(folder / "input.json"),
            self.path("compiled"),
            str(folder / "witness.json"),
            error=lambda msg: InputError(
                f"the circuit cannot run on this input ({msg}): values outside the range it "
                "was calibrated for do this; rebuild with calibration data that covers them"
            ),
        )
        witness: dict[str, Any] = json.loads((folder / "witness.json").read_text())
        self.check_witness(witness)
        return witness

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
    the last sample (see :func:`zkml_oracle.circuit.data.pack`). A requester-bound circuit takes one
    binding (salt and requester) per sample: ``bindings``, or else the input file's
    ``"binding"`` (one sample) or ``"bindings"`` list."""
    out = Path(out)
    check_output_file(out)
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
        packed_samples = [commitment.extend(s, b) for s, b in padded]
    elif bindings:
        raise InputError(f"{build_dir}: this circuit's inputs are not requester-bound")
    else:
        packed_samples = samples
    timings: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix=".zkml-prove-", dir=out.parent) as tmp,
        temp_path_beside(out, ".proof.json") as proof_tmp,
    ):
        t = time.perf_counter()
        witness = circuit.witness(packed_samples, Path(tmp))
        timings["witness"] = time.perf_counter() - t
        t = time.perf_counter()
        prove_witness(circuit, Path(tmp) / "witness.json", proof_tmp)
        timings["prove"] = time.perf_counter() - t
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


def prove_witness(
    circuit: Circuit, witness_path: Path, proof_path: Path, *, stall_seconds: float | None = None
) -> None:
    """ezkl's prove in a child process under a watchdog (:func:`zkml_oracle._ezkl.isolated`):
    a native hang becomes an error, and Ctrl-C stops it at once."""
    _ezkl.isolated(
        "prove",
        str(witness_path),
        circuit.path("compiled"),
        circuit.path("pk"),
        str(proof_path),
        srs_path=str(circuit.srs_path),
        stall_seconds=stall_seconds,
        error=lambda msg: ProvingError(f"proving failed: {msg}"),
    )


def check_request_input(build_dir: Path, sample: Sample) -> None:
    """Refuse an input no one could prove with the circuit in ``build_dir`` (outside its
    calibrated range), before anything is spent on it: what ``request`` asks before escrowing
    a fee. A folder without the compiled circuit (a published public part) is not checked."""
    manifest = Manifest.load(Path(build_dir))
    if "compiled" not in manifest.artifacts:
        return
    circuit = Circuit.open(Path(build_dir), needs=("compiled", "settings"))
    if manifest.requester_bound:  # the salt and requester do not reach the lookups
        sample = commitment.extend(sample, None)
    with tempfile.TemporaryDirectory(prefix="zkml-check-") as tmp:
        circuit.witness([sample], Path(tmp))


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
