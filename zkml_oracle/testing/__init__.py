"""The pytest plugin (:mod:`.plugin`): ``pytest_plugins = ["zkml_oracle.testing"]`` enables it,
and its harness classes import from here. :mod:`.faults` is the JSON-RPC fault proxy."""

from .plugin import HOUR as HOUR
from .plugin import AttestationHarness as AttestationHarness
from .plugin import BatchResult as BatchResult
from .plugin import FulfilResult as FulfilResult
from .plugin import InferenceRequest as InferenceRequest
from .plugin import ModelFactory as ModelFactory
from .plugin import OracleDeployer as OracleDeployer
from .plugin import OracleHarness as OracleHarness
from .plugin import Proof as Proof
from .plugin import SubmitResult as SubmitResult
from .plugin import TransactionReverted as TransactionReverted
from .plugin import chain_snapshot as chain_snapshot
from .plugin import committed as committed
from .plugin import terms as terms

# The fixtures and hooks live in the plugin module; pytest registers it from here.
pytest_plugins = ["zkml_oracle.testing.plugin"]
