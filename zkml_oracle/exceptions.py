"""The exceptions zkml-oracle raises.

Every error is a :class:`ZkmlOracleError`, and its message names the problem and the fix in
one line, so the CLI can print it as is. ``exit_code`` is what the CLI exits with.
"""

from __future__ import annotations


class ZkmlOracleError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 2


class ToolchainError(ZkmlOracleError):
    """A tool (node, solc, anvil, ezkl) is missing or unusable."""


class InputError(ZkmlOracleError):
    """A file or value the user gave is missing, malformed or does not fit the model."""


class FieldError(InputError, ValueError):
    """A value cannot be represented as (or is not) a field element (also a ValueError, as it
    was when it lived in :mod:`zkml_oracle.field`, which still exports it)."""


class UnsupportedModelError(ZkmlOracleError):
    """The model cannot be turned into a faithful circuit. Messages start with ``unsupported:``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason if reason.startswith("unsupported:") else f"unsupported: {reason}")


class FidelityError(UnsupportedModelError):
    """The circuit computes something other than the model (beyond the tolerance)."""


class SrsError(ZkmlOracleError):
    """The SRS is missing, too small, or not the one the keys were made with."""


class ArtifactError(ZkmlOracleError):
    """A build directory or proof file is missing, incomplete or from another circuit."""


class ProvingError(ZkmlOracleError):
    """ezkl failed to make a witness or a proof for valid-looking input."""


class InvalidProofError(ZkmlOracleError):
    """A proof did not verify."""

    exit_code = 1
