"""The exceptions zkml-oracle raises, all of them here (``tests/test_layout.py`` checks it).

Every error is a :class:`ZkmlOracleError`, and its message names the problem and the fix in
one line, so the CLI can print it as is. ``exit_code`` is what the CLI exits with. The
modules that raise them re-export their own (``from zkml_oracle.chain import ChainError``
still works).
"""

from __future__ import annotations

from typing import Any


class ZkmlOracleError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 2


# --- tools, input, build and prove ---


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


class VerifierError(ZkmlOracleError):
    """Generating or compiling the verifier failed."""


class ContractsError(ZkmlOracleError):
    """The project's contracts cannot be found or do not compile."""


class PrivateInputError(ZkmlOracleError):
    """A sealed input cannot be used; the message never holds the plaintext."""


# --- chain ---


class ChainError(ZkmlOracleError):
    """The chain cannot be reached, is the wrong one, or refused a transaction."""


class DevSrsError(ZkmlOracleError):
    """Artifacts made with a test-only SRS were about to reach a non-dev chain."""


class OracleRefused(ZkmlOracleError):
    """The oracle contract refused a transaction; the message names its custom error."""


class VerifierMismatch(ZkmlOracleError):
    """A model's registered verifier is not ezkl's verifier for the build's verifying key."""

    exit_code = 1


class TransactionReverted(ZkmlOracleError, AssertionError):
    """A transaction (or call) reverted in a test (the pytest plugin's harness); ``error`` and
    ``args`` are its decoded custom error. An AssertionError too, so pytest reports it as a
    failed check."""

    def __init__(self, error: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"reverted with {error}{args!r}")
        self.error = error
        self.args_ = args

    @property
    def decoded(self) -> tuple[str, tuple[Any, ...]]:
        return self.error, self.args_


# --- relayer ---


class RelayerError(ZkmlOracleError):
    """The relayer cannot start: a model it should serve is not registered, or similar."""


class JournalError(ZkmlOracleError):
    """The journal file is unusable, held by another relayer, or belongs to another oracle."""


class IllegalTransition(JournalError):
    """A journal write would move a request between states the relayer never moves it between
    (a bug in the relayer, never the user's input)."""


class Rejected(InputError, ValueError):
    """The request can never be proven as it stands; the message is the recorded reason."""


class Revert(ZkmlOracleError):
    """The oracle would refuse (or refused) the transaction; ``name`` is its custom error,
    ``values`` its decoded arguments."""

    def __init__(self, name: str, detail: str, values: tuple[Any, ...] = ()) -> None:
        super().__init__(detail)
        self.name = name
        self.values = values


class RelayerFault(ZkmlOracleError):
    """The node refused a transaction for a reason about the relayer itself (no funds, a fee
    or nonce problem), not about the request: the relayer pauses sending and retries later,
    without spending the request's attempts."""
