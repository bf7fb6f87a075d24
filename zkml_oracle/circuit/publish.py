"""Publish a model without revealing it: a build splits into a public and a private part.

- public (``zkml-oracle publish BUILD --out PUBLIC``): ``manifest.json`` (with the params
  commitment), ``settings.json``, the verifying key and the Solidity verifier. Enough to
  verify proofs, deploy the verifier and register the model (its id covers the commitment).
- private (stays in the build directory): the model and its weights (``model.onnx``), the
  compiled circuit and the proving key: what proving needs.

With ``--param-visibility hashed`` the weights are private and the oracle binds them through
their commitment; ``fixed`` params are baked into the verifying key instead, so publishing
such a model says no more than its verifying key does. Either way :func:`check_public`
refuses a public part that holds any weight, as raw float32 bytes or as a quantized felt.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import field
from .._fs import atomic_write_json, staged_dir
from ..exceptions import ArtifactError
from ..types import MANIFEST_NAME, Manifest

#: What the public part holds (manifest artifact names); everything else stays private.
PUBLIC = ("settings", "vk", "verifier", "verifier_source", "vka")
PRIVATE = ("model", "calibration", "compiled", "pk")


def publish(build_dir: Path, out: Path, *, force: bool = False) -> Path:
    """Write ``build_dir``'s public part to ``out`` (replaced only when complete and checked)."""
    build_dir = Path(build_dir)
    manifest = Manifest.load(build_dir)
    with staged_dir(Path(out), force=force) as stage:
        artifacts = {}
        for name in PUBLIC:
            if name not in manifest.artifacts:
                continue
            rel = manifest.artifacts[name]
            src = manifest.artifact(name, build_dir)
            if not src.is_file():
                raise ArtifactError(f"{build_dir} is incomplete: {rel} is missing: rebuild it")
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, stage / rel)
            artifacts[name] = rel
        # The SRS is public too; its path stays as recorded (where the verifier finds it).
        artifacts["srs"] = manifest.artifacts["srs"]
        d = manifest.model_dump(mode="json")
        d["artifacts"] = artifacts
        atomic_write_json(stage / MANIFEST_NAME, d)
        check_public(stage, manifest.artifact("model", build_dir), manifest.param_scale)
    return Path(out)


def check_public(folder: Path, model_path: Path, param_scale: int) -> None:
    """Refuse a folder in which any file holds a weight of ``model_path``: the raw bytes of
    any weight tensor (4 values or more, 16-byte windows) or, in a JSON file, the ezkl felt of
    any quantized weight of magnitude > 255 (small values are too common to tell)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model_path))
    needles: list[bytes] = []
    felts: set[str] = set()
    for tensor in proto.graph.initializer:
        array = numpy_helper.to_array(tensor)
        if not np.issubdtype(array.dtype, np.floating):
            continue
        raw = array.astype(np.float32).tobytes()
        needles.extend(raw[i : i + 16] for i in range(0, len(raw) - 15, 16))
        for value in array.reshape(-1):
            q = field.quantize(float(value), param_scale)
            if abs(q) > 255:
                felts.add(field.felt_to_ezkl_hex(field.int_to_felt(q)))
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        blob = path.read_bytes()
        if any(n in blob for n in needles) or (
            path.suffix == ".json" and any(f.encode() in blob for f in felts)
        ):
            raise ArtifactError(
                f"{path.name} holds the model's weights: it cannot be part of the public "
                "release; publish from a build made with this version of zkml-oracle"
            )
