"""Build: an ONNX model becomes a Halo2 circuit with keys, and a manifest that describes it.

settings → calibration → compile → SRS → keys → fidelity check, all in a staging folder
that replaces ``out`` only when every step passed.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import json
import platform
import shutil
from pathlib import Path
from typing import Any

from .. import _ezkl, field
from .._fs import atomic_write_bytes, atomic_write_json, sha256_file, staged_dir
from .._progress import Reporter, Steps
from ..exceptions import FidelityError, InputError, ProvingError, UnsupportedModelError
from ..types import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    BuildResult,
    FidelityReport,
    InstanceLayout,
    Manifest,
    Segment,
    SrsInfo,
    TensorSpec,
    Visibility,
)
from . import batching, commitment, data, srs, support, verifier
from .model import OnnxModel, Runner
from .model import load as load_model
from .rewrite import rewrite

ARTIFACTS = {
    "model": "model.onnx",
    "calibration": "calibration.json",
    "settings": "settings.json",
    "compiled": "model.compiled",
    "pk": "pk.key",
    "vk": "vk.key",
}
#: A batch build's single-slot graph and its calibration, removed once calibrated.
SLOT_ARTIFACTS = {
    "model": ".slot-model.onnx",
    "calibration": ".slot-calibration.json",
    "settings": ".slot-settings.json",
}
CALIBRATION_TARGETS = ("resources", "accuracy")


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How to build. ``tolerance`` None means max(0.01, 2% of the largest reference output)."""

    visibility: Visibility = dataclasses.field(default_factory=Visibility)
    srs_file: Path | None = None
    dev_srs: bool = False
    tolerance: float | None = None
    calibration_target: str = "resources"
    lookup_safety_margin: int = 2
    max_logrows: int | None = None
    force: bool = False
    reusable: bool = False
    batch: int = 1  # inferences per proof (see zkml_oracle.circuit.batching)
    freivalds: bool | None = None  # ezkl's Freivalds matmul check; None: off
    solidity: bool = True  # generate and compile the Solidity verifier (off: local proofs only)
    #: Extend each input with a salt and the requester's address (see circuit.commitment).
    bind_requester: bool = False
    #: ezkl's ``num_inner_cols``: advice columns per region. Each column is a commitment the
    #: verifier checks, so 1 (ezkl's default is 2) is the cheapest verifier, for more rows.
    columns: int = 1
    #: ezkl's range-check decomposition ``(base, legs)``; None: chosen from the circuit's rows
    #: (:func:`decomposition`).
    decomposition: tuple[int, int] | None = None


def default_tolerance(reference_max_abs: float) -> float:
    return max(0.01, 0.02 * reference_max_abs)


def build(
    model_path: Path,
    calibration_path: Path,
    out: Path,
    options: BuildOptions = BuildOptions(),
    *,
    progress: Reporter | None = None,
) -> BuildResult:
    """Build the circuit for ``model_path`` into ``out`` and return its manifest."""
    if (options.srs_file is None) == (not options.dev_srs):
        raise InputError(
            "choose the SRS: --srs FILE (a ceremony SRS, for real deployments) or --dev-srs "
            "(generated here: test-only)"
        )
    if options.calibration_target not in CALIBRATION_TARGETS:
        raise InputError(f"calibration target must be one of {', '.join(CALIBRATION_TARGETS)}")
    if options.tolerance is not None and not options.tolerance >= 0:
        raise InputError("--tolerance must be a number >= 0")
    batching.check_batch(options.batch)
    if options.bind_requester and options.visibility.input != "hashed":
        raise InputError(
            "--bind-requester salts and binds an input commitment: use it with "
            "--input-visibility hashed"
        )
    steps = Steps(progress)
    with steps.step("check", "checking model and calibration data"):
        model = load_model(Path(model_path))
        placeholder = [TensorSpec(i.name, i.shape, 0) for i in model.inputs]
        raw = data.load(Path(calibration_path))
        samples = data.split_samples(raw, placeholder, Path(calibration_path))

    with staged_dir(Path(out), force=options.force) as stage:
        with steps.step("rewrite", "rewriting into forms ezkl proves, checking operators"):
            rewrites = rewrite(model.path, stage / ARTIFACTS["model"])
            warnings = support.check(stage / ARTIFACTS["model"])
        # The graph proven, and how many slots each graph holds: a batch build also keeps
        # one slot's graph, to calibrate it as one slot (see _circuit).
        graphs = {stage / ARTIFACTS["model"]: options.batch}
        if options.batch > 1:
            shutil.copyfile(stage / ARTIFACTS["model"], stage / SLOT_ARTIFACTS["model"])
            graphs[stage / SLOT_ARTIFACTS["model"]] = 1
            with steps.step("batch", f"laying out {options.batch} slots in one circuit"):
                batching.replicate(
                    stage / ARTIFACTS["model"], stage / ARTIFACTS["model"], options.batch
                )
        if options.bind_requester:
            with steps.step("bind", "binding each input commitment to a salt and requester"):
                for graph, slots in graphs.items():
                    commitment.bind(graph, graph, [i.shape for i in model.inputs], slots)
            samples_in = [commitment.extend(sample, None) for sample in samples]
        else:
            samples_in = samples
        # The circuit's calibration data: every sample once, ``batch`` to a row of slots.
        (stage / ARTIFACTS["calibration"]).write_text(
            json.dumps({"input_data": _in_slots(samples_in, options.batch)})
        )
        if options.batch > 1:
            (stage / SLOT_ARTIFACTS["calibration"]).write_text(
                json.dumps({"input_data": _in_slots(samples_in, 1)})
            )
        settings = _circuit(stage, model, options, steps, samples)
        srs_info = _srs(settings["run_args"]["logrows"], options, steps)
        p = {k: str(stage / v) for k, v in ARTIFACTS.items()}
        with steps.step("setup", "generating proving and verifying keys"):
            # In a child process: Ctrl-C stops it at once (a native call runs to its end).
            _ezkl.isolated(
                "setup",
                p["compiled"],
                p["vk"],
                p["pk"],
                srs_path=srs_info.path,
                error=lambda m: ProvingError(f"key generation failed: {m}"),
            )
        inputs = tuple(
            TensorSpec(i.name, i.shape, int(s))
            for i, s in zip(
                model.inputs, _slot0(settings["model_input_scales"], options.batch), strict=True
            )
        )
        with steps.step("fidelity", "comparing circuit outputs with onnxruntime"):
            outputs, report = _fidelity(stage, model, settings, samples, options)
        if not report.passed:
            raise FidelityError(
                "the circuit's outputs differ from onnxruntime's by up to "
                f"{report.max_abs_error:.4g} "
                f"(tolerance {report.tolerance:.4g}) on the calibration data, so its proofs would "
                "certify wrong results; if that error is acceptable, pass --tolerance"
            )
        with steps.step("layout", "reading the instance layout off a real proof"):
            layout, params_commitment = _read_layout(
                stage, samples[: options.batch], options, Path(srs_info.path)
            )
        verifier_info, verifier_artifacts = (
            verifier.generate(
                stage,
                settings=stage / ARTIFACTS["settings"],
                vk=stage / ARTIFACTS["vk"],
                srs=Path(srs_info.path),
                reusable=options.reusable,
                steps=steps,
            )
            if options.solidity
            else (None, {})
        )
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            model_sha256=model.sha256,
            settings_sha256=sha256_file(stage / ARTIFACTS["settings"]),
            vk_sha256=sha256_file(stage / ARTIFACTS["vk"]),
            visibility=options.visibility,
            inputs=inputs,
            outputs=outputs,
            param_scale=int(settings["run_args"]["param_scale"]),
            logrows=int(settings["run_args"]["logrows"]),
            layout=layout,
            srs=srs_info,
            fidelity=report,
            tools=_tool_versions(),
            artifacts={**ARTIFACTS, **verifier_artifacts, "srs": srs_info.path},
            created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            verifier=verifier_info,
            rewrites=tuple(rewrites),
            warnings=tuple(warnings),
            params_commitment=params_commitment,
            requester_bound=options.bind_requester,
        )
        atomic_write_json(stage / MANIFEST_NAME, manifest.model_dump(mode="json"))
    return BuildResult(Path(out), manifest, steps.timings)


def _circuit(
    stage: Path,
    model: OnnxModel,
    options: BuildOptions,
    steps: Steps,
    samples: list[data.Sample],
) -> dict[str, Any]:
    import ezkl

    p = {k: str(stage / v) for k, v in ARTIFACTS.items()}
    run_args = ezkl.PyRunArgs()
    for attr, value in options.visibility.ezkl().items():
        setattr(run_args, attr, value)
    if model.symbolic_dims:
        run_args.variables = [(name, 1) for name in model.symbolic_dims]  # type: ignore[attr-defined]
    # ezkl's Freivalds check turns on for a batched Gemm or a recurrent layer's matmuls:
    # measured here, it pushes the verifier past EIP-170's 24 KiB (an LSTM: 28,778 bytes
    # with it, 17,005 without) and costs ~326 k more gas per verification, for proving
    # 1.5x slower. Off unless asked for.
    run_args.disable_freivalds = not options.freivalds  # type: ignore[attr-defined]

    def unsupported(what: str) -> Any:
        return lambda m: UnsupportedModelError(f"ezkl cannot {what}: {support.explain(m)}")

    run_args.num_inner_cols = options.columns  # type: ignore[attr-defined]

    def gen_settings(files: dict[str, str]) -> dict[str, Any]:
        _ezkl.call(
            ezkl.gen_settings,
            files["model"],
            files["settings"],
            py_run_args=run_args,
            error=unsupported("generate settings for this model"),
        )
        found: dict[str, Any] = json.loads(Path(files["settings"]).read_text())
        return found

    def calibrate(files: dict[str, str], **grid: Any) -> None:
        _ezkl.call(
            ezkl.calibrate_settings,
            files["calibration"],
            files["model"],
            files["settings"],
            options.calibration_target,
            lookup_safety_margin=options.lookup_safety_margin,
            max_logrows=options.max_logrows,
            error=lambda m: UnsupportedModelError(_calibration_failure(m, model, samples)),
            **grid,
        )

    with steps.step("settings", "choosing the circuit's layout"):
        # The range-check table from the rows of the graph proven (every slot of a batch).
        rows = gen_settings(p)["num_rows"]
        chosen = options.decomposition or decomposition(rows)
        if chosen != (run_args.decomp_base, run_args.decomp_legs):  # type: ignore[attr-defined]
            run_args.decomp_base, run_args.decomp_legs = chosen  # type: ignore[attr-defined]
            gen_settings(p)  # the settings calibrated below
    label = f"calibrating scales ({options.calibration_target})"
    if options.batch == 1:
        with steps.step("calibrate", label):
            calibrate(p)
    else:
        # The slots are independent copies of one graph: the scales that fit one slot fit
        # every slot, and searching them on the batch graph costs ezkl's whole scale grid,
        # each point a layout of every slot and a forward pass per sample (45 min at N = 128
        # on a loaded machine). So: the search on one slot (the unbatched build's own), then
        # ezkl's calibration of the batch graph restricted to the scales found, which fits
        # the lookup range and logrows to every slot's rows and every sample (each once).
        # With equal input and param scales (ezkl's usual pick) that is one point, and each
        # slot computes exactly what the unbatched circuit computes.
        slot = {k: str(stage / v) for k, v in SLOT_ARTIFACTS.items()}
        with steps.step("calibrate", f"{label} on one slot"):
            gen_settings(slot)
            calibrate(slot)
            found = json.loads(Path(slot["settings"]).read_text())["run_args"]
            for path in slot.values():
                Path(path).unlink()
        with steps.step("fit", f"fitting lookups and rows to {options.batch} slots"):
            calibrate(
                p,
                scales=sorted({int(found["input_scale"]), int(found["param_scale"])}),
                scale_rebase_multiplier=[int(found["scale_rebase_multiplier"])],
            )
    _canonical_settings(stage / ARTIFACTS["settings"])
    with steps.step("compile", "compiling the circuit"):
        _ezkl.call(
            ezkl.compile_circuit,
            p["model"],
            p["compiled"],
            p["settings"],
            error=unsupported("compile this model"),
        )
    settings: dict[str, Any] = json.loads((stage / ARTIFACTS["settings"]).read_text())
    return settings


#: ezkl's decomposition, and one with a 16x smaller table over a range as wide (2^30 >= 2^28).
WIDE_TABLE = (16_384, 2)
SMALL_TABLE = (1_024, 3)


def decomposition(rows: int) -> tuple[int, int]:
    """The range-check decomposition for a circuit of ``rows`` rows (before calibration).

    The range checks look values up in a table of ``base`` rows, which alone sets the circuit
    at 2^15 rows with ezkl's base of 16,384. A circuit well under that takes the small table:
    3 legs of 1,024 (a third more rows for the extra leg) fit in 2^12-2^14 rows, which proves
    several times faster for the same verifier (the credit MLP batch of 8: 2^15 -> 2^12 rows,
    7.5 s -> 1.4 s; benchmarks/README.md). A circuit whose rows, with that third and some room
    for calibration's scales, would not fit under 2^14 keeps ezkl's."""
    return SMALL_TABLE if rows * 3 // 2 < WIDE_TABLE[0] else WIDE_TABLE


def _calibration_failure(message: str, model: OnnxModel, samples: list[data.Sample]) -> str:
    """ezkl's "could not find any suitable parameters" names neither a node nor a way out:
    name where the calibration data's largest value sits, and the ways out."""
    if "suitable parameters" not in message:
        return f"ezkl cannot calibrate this model: {support.explain(message)}"
    import numpy as np

    feeds = [
        {
            spec.name: np.asarray(values, dtype=np.float32).reshape(spec.shape)
            for spec, values in zip(model.inputs, sample, strict=True)
        }
        for sample in samples
    ]
    where = support.largest_value(model.path, feeds) if model.opset >= 7 else ""
    at = f"; the largest value on it is at {where}" if where else ""
    return (
        "ezkl found no fixed-point scale and lookup range that fit the calibration data in "
        f"the row budget{at}: bring the model's values (the inputs, and what that node "
        "computes) into a smaller range, e.g. by normalising the inputs, or allow more rows "
        "(--max-logrows)"
    )


def _canonical_settings(path: Path) -> None:
    """settings.json as a function of the model, calibration and options alone: ezkl stamps it
    with the time of calibration and writes its maps (the einsum equations' index sizes) and
    its table lists (lookups, range checks) in Rust's random hash order. Pinned and sorted
    here, before the compiled circuit embeds it, so a rebuild gives the same settings digest
    and model id. (The keys depend only on the circuit and the SRS; ``model.compiled`` still
    lists the maps in random order, and is in no digest.)"""
    settings = json.loads(path.read_text())
    settings["timestamp"] = 0
    for key in ("required_lookups", "required_range_checks"):
        # Filled from hash sets (the lookup and range-check tables): any order makes a valid
        # circuit, so the sorted one.
        if isinstance(settings.get(key), list):
            settings[key] = sorted(settings[key], key=lambda v: json.dumps(v, sort_keys=True))
    atomic_write_bytes(path, json.dumps(settings, separators=(",", ":"), sort_keys=True).encode())


def _srs(logrows: int, options: BuildOptions, steps: Steps) -> SrsInfo:
    if options.srs_file is not None:
        with steps.step("srs", "checking the SRS"):
            return srs.from_file(Path(options.srs_file), logrows)
    cached = (srs.cache_dir() / "srs" / f"dev-k{logrows}.srs").is_file()
    label = f"dev SRS k={logrows} (cached)" if cached else f"generating a dev SRS k={logrows}"
    with steps.step("srs", label):
        return srs.dev(logrows)


def _decode_tensors(tensors: list[list[str]], scales: list[int]) -> list[list[float]]:
    return [
        [field.decode(field.felt_from_ezkl_hex(h), scale) for h in tensor]
        for tensor, scale in zip(tensors, scales, strict=True)
    ]


def _in_slots(samples: list[data.Sample], batch: int) -> data.Sample:
    """``samples`` as ezkl's calibration reads them for a ``batch``-slot graph: one row of
    slots per ``batch`` samples (a last row padded as a proof pads it), rows back to back."""
    rows = [data.pack(samples[k : k + batch], batch) for k in range(0, len(samples), batch)]
    return [[v for row in rows for v in row[j]] for j in range(len(rows[0]))]


def _slot0(per_graph_input: list[Any], batch: int) -> list[Any]:
    """Slot 0's share of a per-graph-input (or per-graph-output) list of a batched circuit."""
    return per_graph_input[: len(per_graph_input) // batch]


def _input_data(samples: list[data.Sample], options: BuildOptions, placeholder: bool) -> str:
    """A batched circuit's input file for ``samples``; a requester-bound circuit's inputs get
    their salt and requester elements (placeholders that differ per slot, or zeros)."""
    if options.bind_requester:
        samples = samples + [samples[-1]] * (options.batch - len(samples))
        samples = [
            commitment.extend(
                s,
                commitment.Binding(7 + slot, _placeholder(slot)) if placeholder else None,
            )
            for slot, s in enumerate(samples)
        ]
    return data.dump(data.pack(samples, options.batch))


def _placeholder(slot: int) -> str:
    """The requester the layout proof binds slot ``slot`` to (distinct limbs per slot)."""
    return f"0x{0xB0B + slot:040x}"


def _felts(tensors: list[list[str]]) -> list[int]:
    return [field.felt_from_ezkl_hex(h) for t in tensors for h in t]


def _read_layout(
    stage: Path, samples: list[data.Sample], options: BuildOptions, srs_path: Path
) -> tuple[InstanceLayout, tuple[int, ...]]:
    """The instance layout as ezkl lays it out, read off a real proof rather than assumed:
    prove ``samples`` once, then find where each part (inputs or their commitments, params
    commitments, outputs) sits in the proof's instances. Returns the layout and the params
    commitments (hashed params)."""
    import ezkl

    from ..prover import instances_of

    p = {k: str(stage / v) for k, v in ARTIFACTS.items()}
    sample_path, witness_path, proof_path = (
        stage / ".layout-input.json",
        stage / ".layout-witness.json",
        stage / ".layout-proof.json",
    )
    sample_path.write_text(_input_data(samples, options, placeholder=True))
    error = lambda m: ProvingError(f"the circuit's first proof failed: {m}")  # noqa: E731
    _ezkl.call(ezkl.gen_witness, str(sample_path), p["compiled"], str(witness_path), error=error)
    _ezkl.isolated(
        "prove",
        str(witness_path),
        p["compiled"],
        p["pk"],
        str(proof_path),
        srs_path=str(srs_path),
        error=error,
    )
    witness = json.loads(witness_path.read_text())
    instances = instances_of(json.loads(proof_path.read_text()))
    for path in (sample_path, witness_path, proof_path):
        path.unlink()

    def hashes(part: str) -> list[int]:
        found = (witness.get(f"processed_{part}") or {}).get("poseidon_hash") or []
        return [field.felt_from_ezkl_hex(h) for h in found]

    vis = options.visibility
    blocks = {
        "inputs": _felts(witness["inputs"]) if vis.input == "public" else hashes("inputs"),
        "params": hashes("params") if vis.param == "hashed" else [],
        "outputs": _felts(witness["outputs"]),
    }
    placements = set()
    for order in itertools.permutations(name for name, felts in blocks.items() if felts):
        if [f for name in order for f in blocks[name]] == instances:
            offsets, at = {}, 0
            for name in order:
                offsets[name] = at
                at += len(blocks[name])
            placements.add(tuple(sorted(offsets.items())))
    if len(placements) == 2 and blocks["inputs"]:
        # The sample's outputs equal its inputs (Identity, a near-identity LRN, a Relu of
        # positive data), so it fits both ways round. ezkl builds its instance column with
        # the inputs before the outputs, for every circuit ("we want the inputs to come
        # before the outputs", GraphCircuit::prepare_public_inputs), as every layout whose
        # blocks differ shows: that order is the circuit's, on every input.
        first, second = (dict(p) for p in placements)
        if first == {**second, "inputs": second["outputs"], "outputs": second["inputs"]}:
            placements = {min(placements, key=lambda p: dict(p)["inputs"])}
    if len(placements) != 1:
        raise UnsupportedModelError(
            f"cannot tell where the inputs, params and outputs sit among the proof's "
            f"{len(instances)} instances ({len(placements)} placements fit): this ezkl lays "
            "them out in a way this toolkit does not know"
        )
    offsets = dict(placements.pop())
    # An empty part (fixed params, private inputs) sits, by convention, after the inputs.
    offsets.setdefault("inputs", 0)
    offsets.setdefault("params", offsets["inputs"] + len(blocks["inputs"]))
    batch = options.batch
    limbs = commitment.ADDRESS_LIMBS
    bound = batch * limbs if options.bind_requester else 0
    for part, total in (("inputs", len(blocks["inputs"])), ("outputs", len(blocks["outputs"]))):
        if (total - (bound if part == "outputs" else 0)) % batch:
            raise UnsupportedModelError(
                f"the circuit's {total} {part} instances do not split into {batch} slots"
            )
    per_slot_out = (len(blocks["outputs"]) - bound) // batch
    requester = None
    if options.bind_requester:
        requester = Segment(offsets["outputs"] + per_slot_out * batch, limbs)
        expected = [
            f for slot in range(batch) for f in commitment.limbs(int(_placeholder(slot), 16), limbs)
        ]
        if instances[requester.offset : requester.offset + limbs * batch] != expected:
            raise UnsupportedModelError(
                "the circuit does not expose the requester elements it was built to: "
                "build without --bind-requester"
            )
    layout = InstanceLayout(
        Segment(offsets["inputs"], len(blocks["inputs"]) // batch),
        Segment(offsets["params"], len(blocks["params"])),
        Segment(offsets["outputs"], per_slot_out),
        batch,
        requester,
    )
    return layout, tuple(blocks["params"])


def _fidelity(
    stage: Path,
    model: OnnxModel,
    settings: dict[str, Any],
    samples: list[data.Sample],
    options: BuildOptions,
) -> tuple[tuple[TensorSpec, ...], FidelityReport]:
    """Every sample through the circuit (``batch`` at a time, one per slot) and onnxruntime."""
    import ezkl

    runner = Runner(model)
    batch = options.batch
    # A requester-bound circuit's last outputs are its slots' requester limbs (one tensor each).
    model_outputs = len(settings["model_output_scales"]) - (batch if options.bind_requester else 0)
    scales = [int(s) for s in _slot0(settings["model_output_scales"][:model_outputs], batch)]
    worst = 0.0
    ref_max = 0.0
    shapes: list[tuple[int, ...]] = []
    for k in range(0, len(samples), batch):
        group = samples[k : k + batch]
        sample_path = stage / f".sample-{k}.json"
        witness_path = stage / f".witness-{k}.json"
        sample_path.write_text(_input_data(group, options, placeholder=False))
        _ezkl.call(
            ezkl.gen_witness,
            str(sample_path),
            str(stage / ARTIFACTS["compiled"]),
            str(witness_path),
            error=lambda m: UnsupportedModelError(
                f"ezkl cannot run the circuit on calibration data: {m}"
            ),
        )
        witness = json.loads(witness_path.read_text())
        sample_path.unlink()
        witness_path.unlink()
        per_slot = model_outputs // batch
        for slot, sample in enumerate(group):
            tensors = witness["outputs"][slot * per_slot : (slot + 1) * per_slot]
            circuit_out = _decode_tensors(tensors, scales)
            reference = runner.run(sample)
            if len(reference) != len(circuit_out):
                raise UnsupportedModelError(
                    f"the circuit has {len(circuit_out)} outputs but the model {len(reference)}"
                )
            for ref, got in zip(reference, circuit_out, strict=True):
                flat = ref.reshape(-1)
                if flat.size != len(got):
                    raise UnsupportedModelError(
                        f"an output has {len(got)} values in the circuit but {flat.size} in the "
                        "model"
                    )
                if flat.size:
                    ref_max = max(ref_max, float(abs(flat).max()))
                    worst = max(
                        worst, max(abs(float(r) - g) for r, g in zip(flat, got, strict=True))
                    )
            if not shapes:
                shapes = [tuple(r.shape) for r in reference]
    tol = options.tolerance if options.tolerance is not None else default_tolerance(ref_max)
    outputs = tuple(
        TensorSpec(name, shape, scale)
        for name, shape, scale in zip(model.output_names, shapes, scales, strict=True)
    )
    return outputs, FidelityReport(samples=len(samples), max_abs_error=worst, tolerance=tol)


def _tool_versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for dist in ("zkml-oracle", "ezkl", "onnx", "onnxruntime"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "unknown"
    return out
