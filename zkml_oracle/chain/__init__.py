"""Chains and what runs on them: the local Anvil and remote endpoints (:mod:`.node`), the
compiled contracts, deployments and their records, the oracle client, custom-error decoding,
the attestation registry and the judge.

The connection names are importable from here (``from zkml_oracle.chain import LocalNode``);
web3 and Ape load only when a chain is connected.
"""

from .node import DEFAULT_STATE_DIR as DEFAULT_STATE_DIR
from .node import DEV_CHAIN_IDS as DEV_CHAIN_IDS
from .node import Chain as Chain
from .node import ChainError as ChainError
from .node import ChainOptions as ChainOptions
from .node import LocalNode as LocalNode
from .node import NodeAccount as NodeAccount
from .node import connect as connect
from .node import connect_rpc as connect_rpc
from .node import free_port as free_port
from .node import keep_time as keep_time
from .node import local_chain_url as local_chain_url
from .node import node_record as node_record
from .node import redact as redact
from .node import rpc as rpc
from .node import run_node as run_node
from .node import sender as sender
