"""The toolkit's settings from the environment: one source, every variable ``ZKML_``-prefixed.

=============================  ============================================================
``ZKML_RPC_URL``               default ``--rpc-url`` of chain commands (any JSON-RPC endpoint)
``ZKML_NETWORK``               default ``--network`` (an Ape network choice)
``ZKML_ACCOUNT``               default ``--account`` (an Ape account alias)
``ZKML_CHAIN_ID``              default ``--chain-id`` (refuse any other chain)
``ZKML_DEPLOYMENTS``           deployment records folder (``./deployments``)
``ZKML_CACHE``                 dev SRS cache (``$XDG_CACHE_HOME/zkml-oracle``)
``ZKML_PROGRESS_AFTER``        seconds a step runs before it is announced on stderr (10)
``ZKML_STALL_SECONDS``         seconds of almost no CPU after which an ezkl call is stopped (60)
``ZKML_DEBUG``                 ``1``: let ezkl's native output through
=============================  ============================================================

The names these had before (``ZKML_ORACLE_CACHE``, ``ZKML_ORACLE_DEPLOYMENTS``,
``ZKML_ORACLE_STALL_SECONDS``, ``ZKML_ORACLE_DEBUG``) are still read. A flag given on the
command line wins over the environment. Secrets (``ZKML_RELAYER_PASSPHRASE``) are read where
they are used and never held here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


def _env(name: str, *older: str) -> AliasChoices:
    return AliasChoices(f"ZKML_{name}", *older)


class Settings(BaseModel):
    """Read from the environment by :func:`settings`, each time; frozen. A plain model, not
    pydantic-settings': that import alone cost every command (and every proof) 0.14 s."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    rpc_url: str | None = Field(default=None, validation_alias=_env("RPC_URL"))
    network: str | None = Field(default=None, validation_alias=_env("NETWORK"))
    account: str | None = Field(default=None, validation_alias=_env("ACCOUNT"))
    chain_id: int | None = Field(default=None, validation_alias=_env("CHAIN_ID"))
    deployments: Path = Field(
        default=Path("deployments"), validation_alias=_env("DEPLOYMENTS", "ZKML_ORACLE_DEPLOYMENTS")
    )
    cache: Path | None = Field(default=None, validation_alias=_env("CACHE", "ZKML_ORACLE_CACHE"))
    progress_after: float = Field(default=10.0, ge=0, validation_alias=_env("PROGRESS_AFTER"))
    stall_seconds: float = Field(
        default=60.0, gt=0, validation_alias=_env("STALL_SECONDS", "ZKML_ORACLE_STALL_SECONDS")
    )
    debug: bool = Field(default=False, validation_alias=_env("DEBUG", "ZKML_ORACLE_DEBUG"))


def settings() -> Settings:
    """The settings now; a malformed variable is one line naming it and the fix."""
    from pydantic import ValidationError

    from .exceptions import InputError

    # Names are matched case-insensitively, as pydantic-settings did.
    env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith("ZKML_")}
    try:
        return Settings.model_validate(env)
    except ValidationError as e:
        first = e.errors()[0]
        raise InputError(
            f"${first['loc'][0]}={first.get('input')!r}: {first['msg']}: fix or unset it"
        ) from None
