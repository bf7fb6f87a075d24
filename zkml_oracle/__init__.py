"""zkml-oracle: prove that an ONNX model produced an output (ezkl), and act on it on-chain.

The public API is loaded lazily, so ``import zkml_oracle`` and ``zkml-oracle prove`` do not pay
for the chain stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "build": "circuit",
    "BuildOptions": "circuit",
    "prove": "prover",
    "verify": "prover",
    "Circuit": "prover",
    "doctor": "toolchain",
    "Manifest": "types",
    "Visibility": "types",
    "InstanceLayout": "types",
    "BuildResult": "types",
    "ProofResult": "types",
    "VerifyResult": "types",
    "ZkmlOracleError": "exceptions",
}

__all__ = [
    "BuildOptions",
    "BuildResult",
    "Circuit",
    "InstanceLayout",
    "Manifest",
    "ProofResult",
    "VerifyResult",
    "Visibility",
    "ZkmlOracleError",
    "__version__",
    "build",
    "doctor",
    "prove",
    "verify",
]

if TYPE_CHECKING:
    from .circuit.builder import BuildOptions, build
    from .exceptions import ZkmlOracleError
    from .prover import Circuit, prove, verify
    from .toolchain import doctor
    from .types import BuildResult, InstanceLayout, Manifest, ProofResult, VerifyResult, Visibility


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zkml_oracle' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
