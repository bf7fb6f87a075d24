"""ONNX models: load and check them, read their inputs, run them with onnxruntime.

The circuit fixes every symbolic dimension (a batch dimension, say) to 1, as ezkl does, and
so does everything here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._fs import sha256_file
from ..exceptions import InputError, UnsupportedModelError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ModelInput:
    name: str
    shape: tuple[int, ...]
    elem_type: int  # onnx.TensorProto data type


@dataclass(frozen=True)
class OnnxModel:
    path: Path
    sha256: str
    inputs: tuple[ModelInput, ...]
    output_names: tuple[str, ...]
    symbolic_dims: tuple[str, ...]  # names ezkl must be told to fix to 1
    opset: int


def load(path: Path) -> OnnxModel:
    """Load and check an ONNX model; a missing, corrupt or invalid file is an InputError."""
    import onnx

    if not path.is_file():
        raise InputError(f"{path}: no such model file: check the path")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as e:  # onnx raises DecodeError, ValidationError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise InputError(
            f"{path} is not a valid ONNX model ({first}): "
            "re-export it (torch.onnx.export, skl2onnx)"
        ) from None
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs: list[ModelInput] = []
    symbolic: list[str] = []
    for vi in graph.input:
        if vi.name in initializers:
            continue  # old exporters list weights as inputs
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
            raise UnsupportedModelError(f"input {vi.name!r} is not a tensor of known rank")
        dims: list[int] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif d.dim_param:
                dims.append(1)
                if d.dim_param not in symbolic:
                    symbolic.append(d.dim_param)
            else:  # unnamed dynamic dimension (skl2onnx's batch): ezkl fixes it to 1 too
                dims.append(1)
        inputs.append(ModelInput(vi.name, tuple(dims), tt.elem_type))
    if not inputs:
        raise UnsupportedModelError("the model has no inputs: a circuit needs at least one")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxModel(
        path=path.resolve(),
        sha256=sha256_file(path),
        inputs=tuple(inputs),
        output_names=tuple(o.name for o in graph.output),
        symbolic_dims=tuple(symbolic),
        opset=opset,
    )


class Runner:
    """onnxruntime on one model, fed flat samples."""

    def __init__(self, model: OnnxModel) -> None:
        import onnxruntime as ort
        from onnx import helper

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        self._model = model
        self._dtypes = [helper.tensor_dtype_to_np_dtype(i.elem_type) for i in model.inputs]
        providers = ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(
                str(model.path), sess_options=opts, providers=providers
            )
        except Exception as e:
            if model.opset >= 7:
                raise UnsupportedModelError(f"onnxruntime cannot run the model: {e}") from None
            # onnxruntime 1.32 has no kernels for ops of opsets < 7 (Add-6, Mul-6, Gemm-6,
            # PRelu-6, BatchNormalization-6, AveragePool-1, ...) that old PyTorch exports use
            # and ezkl reads fine: run the same graph upgraded to opset 7 by onnx's converter.
            import onnx
            from onnx import version_converter

            try:
                upgraded = version_converter.convert_version(onnx.load(str(model.path)), 7)
                from .rewrite import channel_slopes

                channel_slopes(upgraded)
                self._session = ort.InferenceSession(
                    upgraded.SerializeToString(), sess_options=opts, providers=providers
                )
            except Exception:
                raise UnsupportedModelError(f"onnxruntime cannot run the model: {e}") from None

    def run(self, sample: list[list[float]]) -> list[np.ndarray[Any, Any]]:
        import numpy as np

        feed = {
            spec.name: np.asarray(values, dtype=dtype).reshape(spec.shape)
            for spec, values, dtype in zip(self._model.inputs, sample, self._dtypes, strict=True)
        }
        try:
            outs = self._session.run(None, feed)
        except Exception as e:
            raise UnsupportedModelError(
                f"onnxruntime failed on a calibration sample: {e}"
            ) from None
        return [np.asarray(o, dtype=np.float64) for o in outs]
