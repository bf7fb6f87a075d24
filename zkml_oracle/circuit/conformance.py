"""Conformance against a suite no one here wrote: the onnx package's PyTorch-converted models.

``onnx/backend/test/data/pytorch-converted/<case>/`` holds ``model.onnx`` and one reference
pair, ``test_data_set_0/{input,output}_<i>.pb``. For each case the reference input is both
the calibration data and the input to prove; the proven outputs are compared with the
reference outputs. Each case runs in its own child process with a time limit, so a model
that sends ezkl into a long search (or a native crash) costs one bounded case, not the run.

Verdicts:

``accurate``    built, proven, verified, outputs within tolerance of the reference.
``inaccurate``  proven and verified but off: the build's fidelity check should have refused it.
``refused``     a :class:`ZkmlOracleError` (preflight, ezkl, fidelity), one-line reason.
``timeout``     ran past the time limit and was killed: reported as an ``unsupported:`` line.
``error``       anything else (an unexpected exception, a crashed child, an invalid proof): a bug.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ZkmlOracleError
from .builder import BuildOptions, default_tolerance

if TYPE_CHECKING:
    import numpy as np

Verdict = Literal["accurate", "inaccurate", "refused", "timeout", "error"]
VERDICTS: tuple[Verdict, ...] = ("accurate", "inaccurate", "refused", "timeout", "error")

DEFAULT_TIMEOUT = 180.0
#: The same options for every case: a test SRS, circuits capped at 2^20 rows.
BUILD_OPTIONS = BuildOptions(
    dev_srs=True,
    max_logrows=20,
    lookup_safety_margin=2,
    calibration_target="resources",
    force=True,
    solidity=False,  # the verdict needs a proof and its local verification, not a contract
)
#: Generating a dev SRS is a one-time cost per logrows (~2.5 min for k=20 on 2 cores), cached
#: for every later build. It does not count against a case's time limit, or verdicts would
#: depend on the cache's state; this caps how long it may take on top of the limit.
SRS_ALLOWANCE = 900.0
#: Matches the label circuit.build reports while it generates a dev SRS (see _srs there).
_SRS_STEP_LABEL = "generating a dev SRS"
_SUITE = Path("backend") / "test" / "data" / "pytorch-converted"
#: The suites :func:`discover` knows: the PyTorch-converted module tests and the per-operator
#: node tests (onnx's wheel ships their generators, not their data: :func:`node_suite_dir`).
SUITES = ("pytorch-converted", "node")


@dataclass(frozen=True)
class Case:
    """One conformance case: a model and its reference input/output tensors."""

    name: str
    directory: Path

    @property
    def model(self) -> Path:
        return self.directory / "model.onnx"

    def inputs(self) -> list[np.ndarray[Any, Any]]:
        return _tensors(self.directory, "input")

    def outputs(self) -> list[np.ndarray[Any, Any]]:
        return _tensors(self.directory, "output")


@dataclass(frozen=True)
class CaseResult:
    """What happened to one case. ``logrows`` and ``max_abs_error`` are None when unknown.

    ``seconds`` is the case's wall time (in :func:`run_case`, including its process start-up)
    without any one-time dev SRS generation.
    """

    model: str
    logrows: int | None
    seconds: float
    max_abs_error: float | None
    verdict: Verdict
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Summary:
    """Counts per verdict and the median wall time of a run."""

    counts: dict[Verdict, int]
    total: int
    median_seconds: float
    median_seconds_accurate: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def suite_dir() -> Path:
    """The PyTorch-converted suite inside the installed onnx package."""
    import onnx

    return Path(onnx.__file__).resolve().parent / _SUITE


def node_suite_dir(cache: Path | None = None) -> Path:
    """The onnx package's per-operator node tests, written out once from its generators.

    onnx's wheel carries ``onnx/backend/test/case/node/*.py`` (each operator's cases with
    reference outputs from its reference implementation) but not the generated data; this
    writes the cases whose inputs and outputs are all float32 tensors, in the same layout as
    the PyTorch-converted suite, under ``cache`` (default: the toolkit's cache, per onnx
    version). Other element types (integers, strings, bools) have no circuit encoding.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from .srs import cache_dir

    shipped = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data" / "node"
    if shipped.is_dir():
        return shipped
    root = Path(cache) if cache is not None else cache_dir() / f"onnx-node-{onnx.__version__}"
    if (root / ".complete").is_file():
        return root
    import warnings

    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generators divide by zero on purpose, etc.
        collected = node_cases.collect_testcases(None)
    for tc in collected:
        if tc.model is None or not tc.data_sets:
            continue
        inputs, outputs = tc.data_sets[0]
        tensors = [*inputs, *outputs]
        if not tensors or not all(
            isinstance(t, np.ndarray) and t.dtype == np.float32 for t in tensors
        ):
            continue
        folder = root / tc.name / "test_data_set_0"
        folder.mkdir(parents=True, exist_ok=True)
        (root / tc.name / "model.onnx").write_bytes(tc.model.SerializeToString())
        for kind, arrays in (("input", inputs), ("output", outputs)):
            for j, array in enumerate(arrays):
                proto = numpy_helper.from_array(np.asarray(array), f"{kind}_{j}")
                (folder / f"{kind}_{j}.pb").write_bytes(proto.SerializeToString())
    (root / ".complete").write_text("")
    return root


def operator(case: Case) -> str:
    """The operator a node test exercises: its single node's op type, or for a test of an
    operator's function body (``..._expanded``, several nodes) that operator's name, found by
    the longest prefix of the test's name that spells an ONNX operator, plus " (expanded)".
    """
    import onnx
    from onnx import defs

    graph = onnx.load(str(case.model), load_external_data=False).graph
    kinds: list[str] = list(dict.fromkeys(str(n.op_type) for n in graph.node))
    if len(graph.node) == 1:
        return kinds[0]
    known = {schema.name.lower(): schema.name for schema in defs.get_all_schemas()}
    words = case.name.removeprefix("test_").split("_")
    for n in range(len(words), 0, -1):
        found = known.get("".join(words[:n]).lower())
        if found is not None:
            return f"{found} (expanded)" if "expanded" in case.name else found
    return "+".join(kinds) or "(none)"


#: Inputs of these operators that set their shape or form rather than carry data. The node
#: tests feed them as graph inputs; an exported model holds them as constants.
PARAMETER_INPUTS: dict[str, tuple[int, ...]] = {
    "Resize": (1, 2, 3),
    "Upsample": (1,),
    "Pow": (1,),
    "DFT": (1, 2),
    "GridSample": (1,),
    "DeformConv": (1, 2, 3, 4),
}


CONSTANT_PARAMETERS = "_constant_parameters"


def with_constant_parameters(case: Case, root: Path) -> Case | None:
    """A copy of ``case`` under ``root`` (its name + :data:`CONSTANT_PARAMETERS`) in which the
    graph inputs that feed an operator's parameters (:data:`PARAMETER_INPUTS`: Resize scales,
    Pow exponents...) are initializers holding their reference values, as in an exported
    model; None if it has none."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(case.model))
    graph = model.graph
    names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    params = {
        node.input[slot]
        for node in graph.node
        for slot in PARAMETER_INPUTS.get(node.op_type, ())
        if slot < len(node.input) and node.input[slot] in names
    }
    if not params:
        return None
    values = dict(zip(names, case.inputs(), strict=True))
    for name in sorted(params):
        graph.initializer.append(numpy_helper.from_array(values[name], name))
    kept = [i for i in graph.input if i.name not in params]
    del graph.input[:]
    graph.input.extend(kept)
    copy = Case(f"{case.name}{CONSTANT_PARAMETERS}", root / f"{case.name}{CONSTANT_PARAMETERS}")
    folder = copy.directory / "test_data_set_0"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(copy.model))
    feeds = [values[name] for name in names if name not in params]
    for kind, arrays in (("input", feeds), ("output", case.outputs())):
        for j, array in enumerate(arrays):
            proto = numpy_helper.from_array(array, f"{kind}_{j}")
            (folder / f"{kind}_{j}.pb").write_bytes(proto.SerializeToString())
    return copy


def circuit_key(case: Case, scratch: Path) -> str | None:
    """A digest of the circuit a case builds and the data it proves: its graph after this
    toolkit's rewrites, with value and node names left out (they name things, they build
    nothing), and its reference inputs and outputs. Two cases with one key build the same
    circuit from the same data and prove the same instances (an operator's node test and its
    ``_expanded`` twin, once the operator is rewritten into its function body), so one run
    decides both, provided onnxruntime, which the fidelity check runs on the original model,
    agrees on the two originals (on the node suite's 76 Attention and LinearAttention twins:
    within 2.4e-7). None where the model cannot be rewritten or read, or holds subgraphs,
    model-local functions or sparse initializers: such a case is run on its own. ``scratch``
    holds the rewritten model while it is read."""
    import hashlib

    import onnx

    from .rewrite import rewrite

    target = Path(scratch) / f"{case.name}.key.onnx"
    try:
        rewrite(case.model, target)
        model = onnx.load(str(target))
    except Exception:  # the case's own run says what is wrong with it
        return None
    finally:
        target.unlink(missing_ok=True)
    subgraphs = any(a.g.ByteSize() or a.graphs for n in model.graph.node for a in n.attribute)
    if model.functions or model.graph.sparse_initializer or subgraphs:
        return None  # names inside these reach the outer graph: not read apart here
    graph = model.graph
    names: dict[str, str] = {}

    def value(name: str) -> str:
        return names.setdefault(name, f"v{len(names)}") if name else ""

    constants = {t.name: t for t in graph.initializer}
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        digest.update(repr(parts).encode())

    add(sorted((o.domain, o.version) for o in model.opset_import))
    for i in graph.input:
        add("input", value(i.name), i.type.SerializeToString())
    for node in graph.node:
        operands = []
        for name in node.input:
            if name in constants:
                tensor = onnx.TensorProto()
                tensor.CopyFrom(constants[name])
                tensor.name = ""
                operands.append(hashlib.sha256(tensor.SerializeToString()).hexdigest())
            else:
                operands.append(value(name))
        attributes = sorted((a.name, a.SerializeToString()) for a in node.attribute)
        add(node.domain, node.op_type, operands, [value(o) for o in node.output], attributes)
    for o in graph.output:
        add("output", value(o.name), o.type.SerializeToString())
    for kind, arrays in (("inputs", case.inputs()), ("outputs", case.outputs())):
        for a in arrays:
            add(kind, a.dtype.str, a.shape, a.tobytes())
    return digest.hexdigest()


def discover(
    root: Path | None = None, only: Sequence[str] = (), suite: str = "pytorch-converted"
) -> list[Case]:
    """The cases under ``root`` (default: the ``suite``'s directory), sorted by name.

    ``only`` keeps the cases whose name contains any of the given strings (case-insensitive).
    """
    if root is None:
        root = node_suite_dir() if suite == "node" else suite_dir()
    root = Path(root)
    wanted = [s.lower() for s in only]
    cases = [
        Case(d.name, d)
        for d in sorted(root.iterdir())
        if (d / "model.onnx").is_file() and (d / "test_data_set_0").is_dir()
    ]
    if wanted:
        cases = [c for c in cases if any(w in c.name.lower() for w in wanted)]
    return cases


def run_case(
    case: Case,
    workdir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    keep_artifacts: bool = False,
) -> CaseResult:
    """Run one case in a fresh child process and kill it (and its group) past ``timeout``."""
    ctx = multiprocessing.get_context("spawn")  # no inherited ezkl/onnxruntime thread state
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child_main,
        args=(case, Path(workdir), keep_artifacts, sender),
        name=f"conformance-{case.name}",
        daemon=True,
    )
    start = time.monotonic()
    child.start()
    sender.close()  # so the parent sees EOF if the child dies without a result
    outcome: CaseResult | None = None
    died = False
    try:
        deadline = start + timeout
        hard_deadline = deadline + SRS_ALLOWANCE
        srs_since: float | None = None
        srs_seconds = 0.0
        while True:
            now = time.monotonic()
            limit = hard_deadline if srs_since is not None else deadline
            if now >= limit:
                break
            if not receiver.poll(min(limit - now, 1.0)):
                continue
            try:
                kind, payload = receiver.recv()
            except EOFError:
                died = True
                break
            if kind == "result":
                outcome = payload
                break
            if kind == "srs" and payload == "start":
                srs_since = time.monotonic()
            elif kind == "srs" and payload == "end" and srs_since is not None:
                srs_seconds += time.monotonic() - srs_since
                deadline += time.monotonic() - srs_since  # the one-time SRS is not the case's time
                srs_since = None
    finally:
        if outcome is None and not died:
            _kill(child)
        child.join(timeout=30)
        receiver.close()
    # Wall time including the child's start-up, so it is comparable with the time limit.
    seconds = time.monotonic() - start - srs_seconds
    if outcome is not None:
        return dataclasses.replace(outcome, seconds=seconds)
    if not keep_artifacts:
        _remove_builds(Path(workdir) / case.name)
    if died:
        code = child.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        reason = f"the case's process died without a result ({how})"
        return CaseResult(case.name, None, seconds, None, "error", reason)
    return CaseResult(
        case.name,
        None,
        seconds,
        None,
        "timeout",
        f"unsupported: building and proving this model ran past {timeout:g} s (killed)",
    )


def run_suite(
    cases: Iterable[Case],
    workdir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    keep_artifacts: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run cases one after the other (one build at a time), each in ``workdir / case.name``."""
    results = []
    for case in cases:
        result = run_case(case, workdir, timeout=timeout, keep_artifacts=keep_artifacts)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def summarize(results: Sequence[CaseResult]) -> Summary:
    counts: dict[Verdict, int] = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    accurate = [r.seconds for r in results if r.verdict == "accurate"]
    return Summary(
        counts=counts,
        total=len(results),
        median_seconds=statistics.median(r.seconds for r in results) if results else 0.0,
        median_seconds_accurate=statistics.median(accurate) if accurate else None,
    )


def evaluate(
    case: Case,
    workdir: Path,
    *,
    keep_artifacts: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CaseResult:
    """Run one case in this process, with no time limit: build, prove, verify, compare.

    Only :class:`ZkmlOracleError` becomes a verdict (``refused``); anything else propagates.
    """
    from ..prover import prove, verify
    from .builder import build

    start = time.monotonic()
    clock = _SrsClock(progress)
    work = Path(workdir) / case.name
    work.mkdir(parents=True, exist_ok=True)
    reference_in, reference_out = case.inputs(), case.outputs()
    data_path = work / "input.json"
    data_path.write_text(json.dumps({"input_data": [a.reshape(-1).tolist() for a in reference_in]}))
    build_dir = work / "build"
    logrows: int | None = None
    try:
        built = build(case.model, data_path, build_dir, BUILD_OPTIONS, progress=clock.report)
        logrows = built.manifest.logrows
        proof = prove(build_dir, data_path, work / "proof.json")
        checked = verify(build_dir, proof.proof_path)
    except ZkmlOracleError as e:
        seconds = time.monotonic() - start - clock.seconds
        return CaseResult(case.name, logrows, seconds, None, "refused", _one_line(e))
    finally:
        if not keep_artifacts:
            _remove_builds(work)
    seconds = time.monotonic() - start - clock.seconds
    if not checked.valid:
        reason = f"its own proof did not verify: {checked.reason}"
        return CaseResult(case.name, logrows, seconds, None, "error", reason)
    worst, tolerance, mismatch = _compare(proof.outputs, reference_out)
    if mismatch is not None:
        return CaseResult(case.name, logrows, seconds, None, "inaccurate", mismatch)
    if worst > tolerance:
        reason = f"proven outputs are off the reference by {worst:.4g} (tolerance {tolerance:.4g})"
        return CaseResult(case.name, logrows, seconds, worst, "inaccurate", reason)
    return CaseResult(case.name, logrows, seconds, worst, "accurate")


def _compare(
    proven: list[list[float]], reference: list[np.ndarray[Any, Any]]
) -> tuple[float, float, str | None]:
    """(max abs error, tolerance, shape mismatch or None) of proven against reference outputs."""
    import numpy as np

    if len(proven) != len(reference):
        return 0.0, 0.0, f"the proof has {len(proven)} outputs, the reference {len(reference)}"
    worst = 0.0
    ref_max = 0.0
    for k, (got, ref) in enumerate(zip(proven, reference, strict=True)):
        flat = np.asarray(ref, dtype=np.float64).reshape(-1)
        if flat.size != len(got):
            return 0.0, 0.0, f"output {k}: {len(got)} values proven, {flat.size} in the reference"
        if flat.size:
            ref_max = max(ref_max, float(np.abs(flat).max()))
            worst = max(worst, float(np.abs(flat - np.asarray(got, dtype=np.float64)).max()))
    return worst, default_tolerance(ref_max), None


def _tensors(directory: Path, kind: str) -> list[np.ndarray[Any, Any]]:
    """``test_data_set_0/<kind>_<i>.pb`` in index order (``input_10`` after ``input_9``)."""
    import onnx
    from onnx import numpy_helper

    files = sorted(
        (directory / "test_data_set_0").glob(f"{kind}_*.pb"),
        key=lambda p: int(p.stem.rsplit("_", 1)[1]),
    )
    return [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in files]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


class _SrsClock:
    """Watches build progress for dev SRS generation: times it and passes the lines on."""

    def __init__(self, forward: Callable[[str], None] | None) -> None:
        self.seconds = 0.0
        self._since: float | None = None
        self._forward = forward

    def report(self, line: str) -> None:
        event = _srs_event(line)
        if event == "start":
            self._since = time.monotonic()
        elif event == "end" and self._since is not None:
            self.seconds += time.monotonic() - self._since
            self._since = None
        if self._forward is not None:
            self._forward(line)


def _srs_event(line: str) -> Literal["start", "end"] | None:
    """Whether a build progress line starts or ends dev SRS generation.

    Steps reports ``· <label> …`` when a step starts and ``  ✓ <label> (… s)`` when it ends.
    """
    if _SRS_STEP_LABEL not in line:
        return None
    return "end" if "✓" in line else "start"


def _remove_builds(work: Path) -> None:
    """The build directory and any staging left by an interrupted build (keys are large)."""
    for path in [work / "build", *work.glob(".build.*")]:
        shutil.rmtree(path, ignore_errors=True)


def _child_main(case: Case, workdir: Path, keep_artifacts: bool, conn: Connection) -> None:
    """The child process: its own process group (so the parent can kill all of it), one case."""
    os.setsid()

    def progress(line: str) -> None:
        event = _srs_event(line)
        if event is not None:  # lets the parent stop the case's clock meanwhile
            conn.send(("srs", event))

    start = time.monotonic()
    try:
        result = evaluate(case, workdir, keep_artifacts=keep_artifacts, progress=progress)
    except Exception as e:  # a bug, not a verdict: say where it happened
        frame = traceback.extract_tb(e.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        reason = f"{e.__class__.__name__}: {_one_line(e)} ({where})"
        result = CaseResult(case.name, None, time.monotonic() - start, None, "error", reason)
    conn.send(("result", result))
    conn.close()


def _kill(child: multiprocessing.process.BaseProcess) -> None:
    """SIGKILL the child's process group, or just the child if it has no group of its own yet."""
    pid = child.pid
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:  # _child_main called setsid: the group is ours alone
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
