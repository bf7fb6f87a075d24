"""A relayer's settings: what ``zkml-oracle relay`` was asked to do, one typed record for the
command line, the assembly (:mod:`.app`) and the loop (:mod:`.service`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .signer import KeySource


class RelayerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # --- what to serve, where to keep the journal, who signs ---
    build_dirs: tuple[Path, ...] = ()
    db: Path = Path("relayer.db")
    key: KeySource = Field(default_factory=KeySource)
    #: The relayer's encryption key file (created when missing): serves requester-bound
    #: models, whose requests carry their input sealed to its public key.
    encryption_key: Path | None = None
    # --- the loop ---
    once: bool = False
    #: Blocks a fulfilment waits for; None: 0 on a local dev chain, 3 elsewhere (app.relay).
    confirmations: int | None = Field(default=None, ge=0)
    workers: int = Field(default=1, ge=1)
    batch_size: int = 1  # requests per proof; > 1: settled with one fulfillBatch
    max_wait: float = 0.0  # seconds the oldest waits for its batch to fill (not with ``once``)
    #: Wait for a batch to fill only while the observed arrival rate can fill it in time
    #: (relayer/policy.py); False: always wait up to ``max_wait``.
    adaptive_batches: bool = False
    poll_interval: float = 0.5
    #: The block the journal's scan starts from (the oracle's deployment block).
    start_block: int = 0
    receipt_timeout: float = 120.0
    drain_timeout: float = 10.0
    max_attempts: int = 3
    backoff_cap: float = 5.0
    #: The least fee (wei) a request must escrow to be proven (``relay --min-fee``).
    min_fee: int = 0
    #: Gas a fulfilment needs besides its callbacks (verification, calldata, bookkeeping):
    #: a request whose callback gas plus this cannot fit a block is rejected before proving.
    fulfil_gas_reserve: int = 2_000_000
    #: Blocks back from the head in which final fulfilments are re-checked against reorgs.
    recheck_window: int = 64
    #: The longest pause (seconds) after a node refusal about the relayer itself.
    pause_cap: float = 60.0
    #: ``relay --retry-failed``: failed requests are proven again.
    retry_failed: bool = False
    # --- proving and serving ---
    backend: str = "local"  # "local" (worker processes here) or "ray"
    ray_address: str | None = None  # an existing Ray cluster; None: a local Ray of its own
    metrics_port: int | None = None
    status_port: int | None = None  # the operator's status page (HTML and JSON)
