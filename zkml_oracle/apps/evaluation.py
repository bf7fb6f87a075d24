"""Verifiable evaluation: prove how many samples of a private, committed test set a model gets
right, and nothing else about the test set.

The evaluation circuit ("evaluator") is the model run on a whole chunk of ``chunk`` samples at
once, followed by a comparison with the labels and a sum. Its one graph input is the chunk as a
``[salt_rows + chunk, features + 2]`` tensor: ``salt_rows`` rows of random salt, then one row
per sample holding its features, its label and a weight (1 for a sample, 0 for padding). With
hashed input visibility ezkl exposes one Poseidon hash of that whole tensor, so the proof's
instances are ``[chunk hash, correct, samples]``: the test set stays private, the salt keeps a
small one from being guessed from its hash, and the sample count is proven, not claimed.

Metrics (how a sample counts as correct):

- ``argmax``: the index of the largest output equals the label (multi-output classifiers);
- ``threshold``: ``output > threshold`` equals ``label > 0.5`` (a single score);
- ``within``: ``|output - label| <= tolerance`` (regression).

A test set larger than one chunk is split into chunks, each committed and proven on its own;
the test set's id is ``keccak256`` of its chunk hashes in order, and the counts add up.
:mod:`zkml_oracle.chain.attestations` records the result on-chain.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .. import _ezkl
from .. import field as felts
from .._fs import atomic_write_json
from .._progress import Reporter
from ..circuit.builder import BuildOptions, build
from ..exceptions import (
    ArtifactError,
    FidelityError,
    InputError,
    UnsupportedModelError,
)
from ..types import Manifest, Visibility

Metric = Literal["argmax", "threshold", "within"]
METRICS: tuple[str, ...] = ("argmax", "threshold", "within")
#: The metric's number on-chain (IZkmlAttestations.Metric).
METRIC_CODES: dict[str, int] = {"argmax": 0, "threshold": 1, "within": 2}
#: A metric's parameter (threshold, tolerance) goes on-chain in millionths.
PARAM_UNIT = 1_000_000
EVALUATOR_NAME = "evaluator.json"
#: The evaluated model, as given (onnxruntime's count is computed on it).
EVALUATED_MODEL = "evaluated-model.onnx"
#: Bits of salt a chunk carries at least (after quantization at the circuit's input scale).
SALT_BITS = 128
#: Salt values are uniform in [-1, 1): inside the range the circuit is calibrated for.
SALT_ASSUMED_SCALE = 7
MAX_CHUNK = 1024
#: Instances of an evaluation proof: chunk hash, correct, samples.
INSTANCES = 3
_PREFIX = "zkml_eval_"


@dataclass(frozen=True)
class EvaluatorSpec:
    """What the evaluator proves, recorded next to its manifest (``evaluator.json``)."""

    metric: str
    parameter: float  # threshold (``threshold``) or tolerance (``within``); 0 for ``argmax``
    chunk: int
    features: int
    classes: int  # the model's output count
    salt_rows: int
    input_scale: int
    model_sha256: str  # the evaluated ONNX file, as the model's own build records it

    @property
    def columns(self) -> int:
        return self.features + 2

    @property
    def rows(self) -> int:
        return self.salt_rows + self.chunk

    @property
    def parameter_units(self) -> int:
        return round(self.parameter * PARAM_UNIT)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, evaluator_dir: Path) -> EvaluatorSpec:
        path = Path(evaluator_dir) / EVALUATOR_NAME
        if not path.is_file():
            raise ArtifactError(
                f"{evaluator_dir} is not an evaluator (no {EVALUATOR_NAME}): run "
                "`zkml-oracle build-evaluator MODEL.onnx CALIBRATION.json --out DIR` first"
            )
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as e:
            raise ArtifactError(f"{path} is corrupt ({e}): rebuild the evaluator") from None


@dataclass(frozen=True)
class TestSet:
    """A labelled test set: one feature row and one label per sample."""

    features: list[list[float]]
    labels: list[float]

    __test__ = False  # not a pytest class

    @classmethod
    def load(cls, path: Path) -> TestSet:
        """``{"features": [[x0, x1, ...], ...], "labels": [y, ...]}``."""
        try:
            raw: Any = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: no such test set file: check the path") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise InputError(f"{path} is not JSON ({e}): write {_TESTSET_FORMAT}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("features"), list):
            raise InputError(f"{path} has no features list: write {_TESTSET_FORMAT}")
        rows, labels = raw["features"], raw.get("labels")
        if not isinstance(labels, list) or len(labels) != len(rows) or not rows:
            raise InputError(
                f"{path} needs as many labels as feature rows (at least one): write "
                f"{_TESTSET_FORMAT}"
            )
        for i, row in enumerate(rows):
            if not isinstance(row, list) or not all(_finite(v) for v in row):
                raise InputError(f"{path}: features row {i} is not a list of finite numbers")
        for i, v in enumerate(labels):
            if not _finite(v):
                raise InputError(f"{path}: label {i} is {v!r}, not a finite number")
        return cls([[float(v) for v in r] for r in rows], [float(v) for v in labels])

    def save(self, path: Path) -> None:
        atomic_write_json(Path(path), {"features": self.features, "labels": self.labels})


_TESTSET_FORMAT = '{"features": [[x0, x1, ...], ...], "labels": [y0, ...]}'


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --- the evaluation graph ---------------------------------------------------------------


def evaluation_graph(
    model_path: Path, dst: Path, *, metric: str, parameter: float, chunk: int, salt_rows: int
) -> tuple[int, int]:
    """Write the evaluation graph of ``model_path`` to ``dst``; returns (features, outputs).

    The model must take one input ``[batch, d]`` and give one output ``[batch, c]`` whose batch
    dimension is 1 or symbolic: it is set to ``chunk`` (a model that spells out a batch of 1
    inside, e.g. in a ``Reshape``, is refused when the graph is checked)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(str(model_path))
    g = proto.graph
    weights = {t.name for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in weights]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedModelError(
            "evaluation takes a model with one input and one output "
            f"(this one has {len(inputs)} and {len(g.output)})"
        )
    x, y = inputs[0], g.output[0]
    x_dims, y_dims = _dims(x), _dims(y)
    if len(x_dims) != 2 or len(y_dims) != 2 or not isinstance(x_dims[1], int):
        raise UnsupportedModelError(
            "evaluation takes a model whose input is [batch, features] and output [batch, "
            f"outputs] (this one: {x_dims} → {y_dims})"
        )
    d, c = int(x_dims[1]), y_dims[1]
    if not isinstance(c, int):
        raise UnsupportedModelError("the model's output count must be fixed, not symbolic")
    if metric == "argmax" and c < 2:
        raise InputError("--metric argmax needs at least two outputs: use threshold or within")
    if metric in ("threshold", "within") and c != 1:
        raise InputError(f"--metric {metric} needs a single output; this model has {c}")
    for vi in (x, y):
        dim = vi.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = chunk
    del g.value_info[:]

    def name(n: str) -> str:
        return _PREFIX + n

    def ints(n: str, values: list[int]) -> Any:
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name(n))

    def scalar(n: str, value: float) -> Any:
        return numpy_helper.from_array(np.array([value], dtype=np.float32), name(n))

    consts = [
        ints("rows_from", [salt_rows]),
        ints("rows_to", [salt_rows + chunk]),
        ints("axis0", [0]),
        ints("axis1", [1]),
        ints("col0", [0]),
        ints("col_label", [d]),
        ints("col_weight", [d + 1]),
        ints("col_end", [d + 2]),
        scalar("half", 0.5),
    ]
    n = helper.make_node
    head = [
        n(
            "Slice",
            [name("testset"), name("rows_from"), name("rows_to"), name("axis0")],
            [name("rows")],
        ),
        n("Slice", [name("rows"), name("col0"), name("col_label"), name("axis1")], [x.name]),
        n(
            "Slice",
            [name("rows"), name("col_label"), name("col_weight"), name("axis1")],
            [name("label")],
        ),
        n(
            "Slice",
            [name("rows"), name("col_weight"), name("col_end"), name("axis1")],
            [name("weight")],
        ),
    ]
    if metric == "argmax" and c == 2:
        # argmax of two, ties to class 0 as ArgMax does: one comparison, where ezkl's ArgMax
        # costs dynamic lookups and shuffles (a larger verifier, more gas per attestation)
        consts.append(ints("two", [2]))
        compare = [
            n("Slice", [y.name, name("col0"), name("axis1"), name("axis1")], [name("score0")]),
            n("Slice", [y.name, name("axis1"), name("two"), name("axis1")], [name("score1")]),
            n("Greater", [name("score1"), name("score0")], [name("pred_b")]),
            n("Cast", [name("pred_b")], [name("pred")], to=TensorProto.FLOAT),
            n("Equal", [name("pred"), name("label")], [name("right")]),
        ]
    elif metric == "argmax":
        compare = [
            n("ArgMax", [y.name], [name("pred_index")], axis=1, keepdims=1),
            n("Cast", [name("pred_index")], [name("pred")], to=TensorProto.FLOAT),
            n("Equal", [name("pred"), name("label")], [name("right")]),
        ]
    elif metric == "threshold":
        consts.append(scalar("threshold", parameter))
        compare = [
            n("Greater", [y.name, name("threshold")], [name("pred_b")]),
            n("Greater", [name("label"), name("half")], [name("label_b")]),
            n("Cast", [name("pred_b")], [name("pred")], to=TensorProto.FLOAT),
            n("Cast", [name("label_b")], [name("truth")], to=TensorProto.FLOAT),
            n("Equal", [name("pred"), name("truth")], [name("right")]),
        ]
    else:
        consts.append(scalar("tolerance", parameter))
        compare = [
            n("Sub", [y.name, name("label")], [name("error")]),
            n("Abs", [name("error")], [name("abs_error")]),
            n("Greater", [name("abs_error"), name("tolerance")], [name("wrong")]),
            n("Not", [name("wrong")], [name("right")]),
        ]
    tail = [
        n("Greater", [name("weight"), name("half")], [name("valid_b")]),
        n("And", [name("right"), name("valid_b")], [name("hit_b")]),
        n("Cast", [name("hit_b")], [name("hit")], to=TensorProto.FLOAT),
        n("Cast", [name("valid_b")], [name("valid")], to=TensorProto.FLOAT),
        n("ReduceSum", [name("hit")], [name("correct")], keepdims=0),
        n("ReduceSum", [name("valid")], [name("samples")], keepdims=0),
    ]
    graph = helper.make_graph(
        head + list(g.node) + compare + tail,
        f"{g.name or 'model'}_evaluation",
        [
            helper.make_tensor_value_info(
                name("testset"), TensorProto.FLOAT, [salt_rows + chunk, d + 2]
            )
        ],
        [
            helper.make_tensor_value_info(name("correct"), TensorProto.FLOAT, []),
            helper.make_tensor_value_info(name("samples"), TensorProto.FLOAT, []),
        ],
        list(g.initializer) + consts,
    )
    opset = max([o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] + [13])
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    out.ir_version = proto.ir_version
    try:
        onnx.checker.check_model(out, full_check=True)
    except Exception as e:
        raise UnsupportedModelError(
            f"the model does not run on a chunk of {chunk} samples ({str(e).splitlines()[0]}): "
            "export it with a symbolic batch dimension"
        ) from None
    onnx.save(out, str(dst))
    return d, c


def _dims(vi: Any) -> list[int | str]:
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in vi.type.tensor_type.shape.dim
    ]


# --- building the evaluator -------------------------------------------------------------


@dataclass(frozen=True)
class EvaluatorOptions:
    metric: str = "argmax"
    parameter: float = 0.0
    chunk: int = 256
    dev_srs: bool = False
    srs_file: Path | None = None
    force: bool = False
    calibration_chunks: int = 2

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"--metric must be one of {', '.join(METRICS)}, not {self.metric!r}")
        if not 1 <= self.chunk <= MAX_CHUNK:
            raise InputError(f"--chunk must be between 1 and {MAX_CHUNK}, not {self.chunk}")
        if self.metric == "within" and not self.parameter > 0:
            raise InputError("--metric within needs --tolerance > 0 (the allowed absolute error)")
        if not math.isfinite(self.parameter):
            raise InputError("the metric's parameter must be a finite number")


@dataclass(frozen=True)
class Evaluator:
    build_dir: Path
    manifest: Manifest
    spec: EvaluatorSpec

    @classmethod
    def open(cls, build_dir: Path) -> Evaluator:
        build_dir = Path(build_dir)
        return cls(build_dir, Manifest.load(build_dir), EvaluatorSpec.load(build_dir))


def build_evaluator(
    model_path: Path,
    calibration_path: Path,
    out: Path,
    options: EvaluatorOptions = EvaluatorOptions(),
    *,
    progress: Reporter | None = None,
) -> Evaluator:
    """Build the evaluation circuit of ``model_path`` (calibrated on the model's calibration
    samples, with labels drawn at random) into ``out``.

    The build's own fidelity check runs the evaluation graph on the calibration chunks through
    the circuit and through onnxruntime and refuses any difference in the counts."""
    import numpy as np

    from .._fs import sha256_file
    from ..circuit import data
    from ..circuit.model import load as load_model

    model = load_model(Path(model_path))
    if len(model.inputs) != 1:
        raise UnsupportedModelError("evaluation takes a model with one input")
    d = model.inputs[0].shape[-1] if model.inputs[0].shape else 0
    if not isinstance(d, int) or d < 1:
        raise UnsupportedModelError("the model's input must be [batch, features]")
    salt_rows = math.ceil(SALT_BITS / ((d + 2) * (SALT_ASSUMED_SCALE + 1)))
    rows = data.load(Path(calibration_path))
    if len(rows) != 1 or len(rows[0]) % d:
        raise InputError(
            f"{calibration_path} must hold one input list of back-to-back samples of {d} features"
        )
    samples = np.array(rows[0], dtype=np.float64).reshape(-1, d)
    rng = np.random.default_rng(0)
    staging = Path(out).with_name(Path(out).name + ".evaluation-graph")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        graph_path = staging / "evaluation.onnx"
        features, classes = evaluation_graph(
            model.path,
            graph_path,
            metric=options.metric,
            parameter=options.parameter,
            chunk=options.chunk,
            salt_rows=salt_rows,
        )
        reference = _reference_outputs(model.path, samples)
        tensors = []
        for _ in range(options.calibration_chunks):
            pick = rng.integers(0, len(samples), size=options.chunk)
            labels = _random_labels(options, reference[pick], rng)
            weight = (rng.random(options.chunk) < 0.9).astype(np.float64)
            body = np.column_stack([samples[pick], labels, weight])
            salt = rng.uniform(-1, 1, size=(salt_rows, d + 2))
            tensors.append(np.concatenate([salt, body]).reshape(-1).tolist())
        calibration = staging / "calibration.json"
        calibration.write_text(json.dumps({"input_data": [[v for t in tensors for v in t]]}))
        result = _build_counting(
            graph_path,
            calibration,
            Path(out),
            BuildOptions(
                visibility=Visibility("hashed", "fixed", "public"),
                dev_srs=options.dev_srs,
                srs_file=options.srs_file,
                tolerance=0.0,  # counts are integers: any difference is a wrong count
                freivalds=False,  # a matmul over a chunk would turn it on: past EIP-170
                force=options.force,
            ),
            progress=progress,
        )
    finally:
        for p in staging.iterdir():
            p.unlink()
        staging.rmdir()
    manifest = result.manifest
    scale = manifest.inputs[0].scale
    problem = None
    if manifest.layout.total != INSTANCES:
        problem = f"the evaluation circuit has {manifest.layout.total} instances, not {INSTANCES}"
    elif any(t.scale != 0 for t in manifest.outputs):
        problem = "the evaluation circuit's counts are not integers (output scale 0)"
    elif salt_rows * (d + 2) * (scale + 1) < SALT_BITS:
        problem = f"the circuit's input scale {scale} leaves the salt under {SALT_BITS} bits"
    if problem:
        shutil.rmtree(out)  # no half-made evaluator is left behind
        raise UnsupportedModelError(problem)
    spec = EvaluatorSpec(
        metric=options.metric,
        parameter=options.parameter,
        chunk=options.chunk,
        features=features,
        classes=classes,
        salt_rows=salt_rows,
        input_scale=scale,
        model_sha256=sha256_file(Path(model_path)),
    )
    shutil.copyfile(model_path, Path(out) / EVALUATED_MODEL)
    atomic_write_json(Path(out) / EVALUATOR_NAME, spec.to_dict())
    return Evaluator(Path(out), manifest, spec)


def _build_counting(
    graph: Path, calibration: Path, out: Path, options: BuildOptions, *, progress: Reporter | None
) -> Any:
    try:
        return build(graph, calibration, out, options, progress=progress)
    except FidelityError as e:
        if "differ from onnxruntime" not in str(e):
            raise
        raise FidelityError(
            "the evaluation circuit counts differently from onnxruntime on the calibration "
            "samples (the circuit's fixed point decides some of them otherwise), so its proofs "
            "would certify a wrong accuracy; calibrate with data further from the decision "
            "boundary or export the model at a larger scale"
        ) from None


def _reference_outputs(model_path: Path, samples: Any) -> Any:
    """The model's outputs on ``samples`` (one row each), by onnxruntime, one row per sample."""
    import numpy as np

    from ..circuit.model import Runner
    from ..circuit.model import load as load_model

    runner = Runner(load_model(model_path))
    return np.array([np.asarray(runner.run([list(row)])[0]).reshape(-1) for row in samples])


def _random_labels(options: EvaluatorOptions, outputs: Any, rng: Any) -> Any:
    """Labels for calibration: right about 3 times in 4, so every comparison path is exercised."""
    import numpy as np

    keep = rng.random(len(outputs)) < 0.75
    if options.metric == "argmax":
        right = outputs.argmax(axis=1)
        other = rng.integers(0, outputs.shape[1], size=len(outputs))
        return np.where(keep, right, other).astype(np.float64)
    score = outputs[:, 0]
    if options.metric == "threshold":
        right = (score > options.parameter).astype(np.float64)
        return np.where(keep, right, 1 - right)
    off = options.parameter * np.where(keep, 0.5, 2.0) * np.sign(rng.random(len(score)) - 0.5)
    return score + off


# --- onnxruntime's count ------------------------------------------------------------------


def reference_count(model_path: Path, spec: EvaluatorSpec, test_set: TestSet) -> int:
    """How many samples onnxruntime's outputs of the model get right, in float (the number
    the proof must reproduce)."""
    import numpy as np

    outputs = _reference_outputs(model_path, np.array(test_set.features, dtype=np.float64))
    labels = np.array(test_set.labels, dtype=np.float64)
    if spec.metric == "argmax":
        right = outputs.argmax(axis=1) == labels
    elif spec.metric == "threshold":
        right = (outputs[:, 0] > spec.parameter) == (labels > 0.5)
    else:
        right = ~(
            np.abs(outputs[:, 0].astype(np.float32) - labels.astype(np.float32))
            > np.float32(spec.parameter)
        )
    return int(right.sum())


# --- committing to a test set ----------------------------------------------------------


@dataclass(frozen=True)
class ChunkOpening:
    """One chunk as the circuit reads it (salt rows first) and its Poseidon hash."""

    tensor: list[float]
    samples: int
    hash: int


@dataclass(frozen=True)
class Commitment:
    """What is published about a test set: its id, chunk hashes and size. Public."""

    test_set_id: str
    chunk_hashes: tuple[int, ...]
    samples: int
    chunk: int
    input_scale: int
    metric: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["chunk_hashes"] = [felts.felt_to_hex(h) for h in self.chunk_hashes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Commitment:
        return cls(
            test_set_id=str(d["test_set_id"]),
            chunk_hashes=tuple(int(h, 16) for h in d["chunk_hashes"]),
            samples=int(d["samples"]),
            chunk=int(d["chunk"]),
            input_scale=int(d["input_scale"]),
            metric=str(d["metric"]),
        )


@dataclass(frozen=True)
class Opening:
    """The salted, chunked test set behind a commitment. PRIVATE: keep it with the data."""

    commitment: Commitment
    chunks: tuple[ChunkOpening, ...]
    test_set: TestSet

    def to_dict(self) -> dict[str, Any]:
        return {
            "commitment": self.commitment.to_dict(),
            "chunks": [
                {"tensor": c.tensor, "samples": c.samples, "hash": felts.felt_to_hex(c.hash)}
                for c in self.chunks
            ],
            "test_set": {"features": self.test_set.features, "labels": self.test_set.labels},
        }

    @classmethod
    def load(cls, path: Path) -> Opening:
        try:
            d = json.loads(Path(path).read_text())
            return cls(
                Commitment.from_dict(d["commitment"]),
                tuple(
                    ChunkOpening(
                        [float(v) for v in c["tensor"]], int(c["samples"]), int(c["hash"], 16)
                    )
                    for c in d["chunks"]
                ),
                TestSet(d["test_set"]["features"], d["test_set"]["labels"]),
            )
        except FileNotFoundError:
            raise InputError(f"{path}: no such opening file: check the path") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(
                f"{path} is not a test set opening ({e.__class__.__name__}): pass the file "
                "`zkml-oracle commit-testset` wrote"
            ) from None


def test_set_id(chunk_hashes: tuple[int, ...] | list[int]) -> str:
    """keccak256(abi.encodePacked(bytes32[] chunkHashes)), as the registry computes it."""
    from eth_utils.crypto import keccak

    return "0x" + keccak(b"".join(h.to_bytes(32, "big") for h in chunk_hashes)).hex()


def commit_testset(
    evaluator_dir: Path, test_set_path: Path, *, salt_seed: int | None = None
) -> Opening:
    """Split the test set into the evaluator's chunks, salt each one and hash it as the
    circuit does. ``salt_seed`` (tests only) makes the salt reproducible."""
    import numpy as np

    ev = Evaluator.open(Path(evaluator_dir))
    spec = ev.spec
    test_set = TestSet.load(Path(test_set_path))
    for i, row in enumerate(test_set.features):
        if len(row) != spec.features:
            raise InputError(
                f"{test_set_path}: features row {i} has {len(row)} values but the model takes "
                f"{spec.features}: fix the test set"
            )
    if spec.metric == "argmax":
        bad = [v for v in test_set.labels if v != int(v) or not 0 <= v < spec.classes]
        if bad:
            raise InputError(
                f"{test_set_path}: label {bad[0]} is not a class index in 0..{spec.classes - 1}"
            )
    if spec.metric == "threshold" and any(v not in (0.0, 1.0) for v in test_set.labels):
        raise InputError(f"{test_set_path}: threshold labels must be 0 or 1")
    rng = np.random.default_rng(salt_seed)
    step = 2.0**-spec.input_scale
    chunks = []
    for start in range(0, len(test_set.labels), spec.chunk):
        feats = test_set.features[start : start + spec.chunk]
        labels = test_set.labels[start : start + spec.chunk]
        rows = [[*f, y, 1.0] for f, y in zip(feats, labels, strict=True)]
        rows += [[*rows[-1][:-1], 0.0]] * (spec.chunk - len(rows))  # padding: weight 0
        span = 1 << spec.input_scale
        if salt_seed is None:
            salt = [
                (secrets.randbelow(2 * span) - span) * step
                for _ in range(spec.salt_rows * spec.columns)
            ]
        else:
            salt = [
                float(v) * step for v in rng.integers(-span, span, spec.salt_rows * spec.columns)
            ]
        tensor = salt + [v for row in rows for v in row]
        chunks.append(ChunkOpening(tensor, len(feats), _poseidon(tensor, spec.input_scale)))
    hashes = tuple(c.hash for c in chunks)
    commitment = Commitment(
        test_set_id=test_set_id(hashes),
        chunk_hashes=hashes,
        samples=len(test_set.labels),
        chunk=spec.chunk,
        input_scale=spec.input_scale,
        metric=spec.metric,
    )
    return Opening(commitment, tuple(chunks), test_set)


def _poseidon(tensor: list[float], scale: int) -> int:
    try:
        encoded = [felts.encode(v, scale) for v in tensor]
    except felts.FieldError as e:
        raise InputError(f"a test set value cannot be encoded: {e}") from None
    out = _ezkl.poseidon(encoded, what="the chunk")
    if len(out) != 1:
        raise ArtifactError(f"ezkl returned {len(out)} hashes for one chunk")
    return out[0]


def write_opening(opening: Opening, out: Path) -> Path:
    """The opening, readable by its owner only (it holds the test set and the salt)."""
    import os

    atomic_write_json(Path(out), opening.to_dict())
    os.chmod(out, 0o600)
    return Path(out)


# --- proving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkProof:
    index: int
    proof_path: Path
    hash: int
    correct: int
    samples: int
    prove_seconds: float


@dataclass(frozen=True)
class Evaluation:
    """Every chunk's proof of one evaluation, and what they add up to."""

    evaluator_dir: Path
    commitment: Commitment
    chunks: tuple[ChunkProof, ...]
    reference_correct: int  # onnxruntime's count (equal to ``correct``, or evaluate refuses)
    metric: str
    parameter: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def correct(self) -> int:
        return sum(c.correct for c in self.chunks)

    @property
    def samples(self) -> int:
        return sum(c.samples for c in self.chunks)

    @property
    def accuracy_bps(self) -> int:
        return self.correct * 10_000 // self.samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluator_dir": str(self.evaluator_dir),
            "commitment": self.commitment.to_dict(),
            "metric": self.metric,
            "parameter": self.parameter,
            "correct": self.correct,
            "samples": self.samples,
            "accuracy_bps": self.accuracy_bps,
            "reference_correct": self.reference_correct,
            "chunks": [
                {
                    "index": c.index,
                    "proof": str(c.proof_path),
                    "hash": felts.felt_to_hex(c.hash),
                    "correct": c.correct,
                    "samples": c.samples,
                    "prove_seconds": round(c.prove_seconds, 3),
                }
                for c in self.chunks
            ],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    @classmethod
    def load(cls, path: Path) -> Evaluation:
        try:
            d = json.loads(Path(path).read_text())
            return cls(
                evaluator_dir=Path(d["evaluator_dir"]),
                commitment=Commitment.from_dict(d["commitment"]),
                chunks=tuple(
                    ChunkProof(
                        int(c["index"]),
                        Path(c["proof"]),
                        int(c["hash"], 16),
                        int(c["correct"]),
                        int(c["samples"]),
                        float(c["prove_seconds"]),
                    )
                    for c in d["chunks"]
                ),
                reference_correct=int(d["reference_correct"]),
                metric=str(d["metric"]),
                parameter=float(d["parameter"]),
                timings=dict(d.get("timings", {})),
            )
        except FileNotFoundError:
            raise InputError(
                f"{path}: no such evaluation file: run `zkml-oracle evaluate`"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(
                f"{path} is not an evaluation ({e.__class__.__name__}): pass the "
                "evaluation.json `zkml-oracle evaluate` wrote"
            ) from None


EVALUATION_NAME = "evaluation.json"


def evaluate(evaluator_dir: Path, opening_path: Path, out: Path) -> Evaluation:
    """Prove every chunk of the opened test set; ``out`` gets ``chunk-<i>.proof.json`` and
    ``evaluation.json``. Refuses (FidelityError) when the circuit's count differs from
    onnxruntime's on the same samples."""
    import time

    from ..prover import prove

    ev = Evaluator.open(Path(evaluator_dir))
    spec = ev.spec
    opening = Opening.load(Path(opening_path))
    c = opening.commitment
    if c.chunk != spec.chunk or c.input_scale != spec.input_scale or c.metric != spec.metric:
        raise InputError(
            f"{opening_path} was committed for another evaluator (chunk {c.chunk}, scale "
            f"{c.input_scale}, metric {c.metric}): commit the test set with this one"
        )
    for chunk in opening.chunks:
        if len(chunk.tensor) != spec.rows * spec.columns:
            raise InputError(f"{opening_path} holds a chunk of the wrong size: commit it again")
        if _poseidon(chunk.tensor, spec.input_scale) != chunk.hash:
            raise InputError(f"{opening_path} does not match its own commitment: commit it again")
    model = ev.build_dir / EVALUATED_MODEL
    t = time.perf_counter()
    reference = reference_count(model, spec, opening.test_set)
    timings = {"reference": time.perf_counter() - t}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    proofs = []
    for i, chunk in enumerate(opening.chunks):
        inputs = out / f".chunk-{i}.input.json"
        inputs.write_text(json.dumps({"input_data": [chunk.tensor]}))
        try:
            result = prove(ev.build_dir, inputs, out / f"chunk-{i}.proof.json")
        finally:
            inputs.unlink()
        hash_, correct, samples = result.instances
        if hash_ != chunk.hash:
            raise ArtifactError(f"chunk {i}'s proof commits to another hash than its opening")
        proofs.append(
            ChunkProof(i, result.proof_path, hash_, correct, samples, result.timings["prove"])
        )
    timings["prove"] = sum(p.prove_seconds for p in proofs)
    evaluation = Evaluation(
        ev.build_dir, c, tuple(proofs), reference, spec.metric, spec.parameter, timings
    )
    if evaluation.samples != c.samples:
        raise FidelityError(
            f"the circuit counted {evaluation.samples} samples but the test set has {c.samples}"
        )
    if evaluation.correct != reference:
        for p in proofs:
            p.proof_path.unlink(missing_ok=True)
        raise FidelityError(
            f"the circuit counts {evaluation.correct} correct but onnxruntime {reference} on "
            "this test set, so its proof would certify a wrong accuracy; rebuild the evaluator "
            "with calibration data that covers the test set"
        )
    atomic_write_json(out / EVALUATION_NAME, evaluation.to_dict())
    return evaluation
