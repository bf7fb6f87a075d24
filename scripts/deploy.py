"""`ape run deploy BUILD_DIR [--network CHOICE] [--account ALIAS]`: deploy a circuit's verifier.

The same code as `zkml-oracle deploy` (zkml_oracle.chain.deploy.deploy_verifier); Ape connects
to the network it is given, and records land in ./deployments like the CLI's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from ape.cli import ConnectedProviderCommand

from zkml_oracle.chain import Chain, sender
from zkml_oracle.chain.deploy import check_dev_srs, deploy_verifier
from zkml_oracle.exceptions import ZkmlOracleError
from zkml_oracle.types import Manifest


@click.command(cls=ConnectedProviderCommand)
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option("--account", "alias", help="Ape account alias [default on a dev chain: dev #0]")
@click.option("--allow-dev-srs", is_flag=True, help="See `zkml-oracle deploy --help`.")
def cli(provider: Any, build_dir: Path, alias: str | None, allow_dev_srs: bool) -> None:
    """Deploy the verifier of the circuit in BUILD_DIR."""
    chain = Chain.from_provider(provider)
    try:
        check_dev_srs(Manifest.load(build_dir), chain, allow_dev_srs)
        deployed = deploy_verifier(
            chain, build_dir, sender(chain, alias), allow_dev_srs=allow_dev_srs
        )
    except ZkmlOracleError as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(deployed.model_dump(), indent=2))
