"""Circuits: an ONNX model becomes a Halo2 circuit (:mod:`.builder`), with the pieces a build
uses: the model and its rewrites, batching, the SRS, input data and commitments, the Solidity
verifier, conformance.

``build`` and ``BuildOptions`` load lazily, so importing one piece (``types`` needs
:mod:`.verifier`) does not load the whole build.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["BuildOptions", "build", "default_tolerance"]

if TYPE_CHECKING:
    from .builder import BuildOptions, build, default_tolerance


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(".builder", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
